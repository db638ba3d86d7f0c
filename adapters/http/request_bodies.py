"""Request bodies: the API's own msgspec Structs, apart from the domain's commands and events.

Field names follow the commands they become, so `to_command` is a plain conversion; ids of
new things are optional (the server makes one, derived from the Idempotency-Key when there
is one, so a retried request names the same thing). Unknown fields are refused.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import msgspec

from domain.commands import Command, CustomerRef, Name, Reason, Sha256Hex, Short, Text
from domain.events import (
    Environment,
    Outcome,
    Qualification,
    SampleOutcome,
    SampleStage,
    SummativeRule,
)
from domain.spec import CriterionId, Method

C = TypeVar("C", bound=Command)
UnitCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,32}$")]
Occasion = Annotated[str, msgspec.Meta(max_length=100)]
Criteria = Annotated[tuple[CriterionId, ...], msgspec.Meta(min_length=1, max_length=200)]
Tags = Annotated[tuple[CriterionId, ...], msgspec.Meta(max_length=200)]
Ids = Annotated[tuple[UUID, ...], msgspec.Meta(min_length=1, max_length=500)]
Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]
StaffRole = Literal["centre_admin", "assessor", "iqa"]
TokenRole = Literal["centre_admin", "assessor", "iqa", "ev", "learner", "integrator"]


class Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Dated(Body, frozen=True, kw_only=True):
    #: The day what is recorded happened (default: today); never after today.
    effective_on: date | None = None


def to_command(body: Body, command: type[C], **extra: Any) -> C:
    """The command a body asks for; `extra` adds what the path or the server supplies."""
    fields = {**msgspec.structs.asdict(body), **extra}
    return msgspec.convert(fields, command, from_attributes=True)


# ---- centres ------------------------------------------------------------------------


class NewCentre(Dated, frozen=True, kw_only=True):
    centre_id: UUID | None = None
    name: Name


class NewStaff(Dated, frozen=True, kw_only=True):
    staff_id: UUID | None = None
    name: Name
    role: StaffRole
    qualification: Qualification = Qualification.QUALIFIED


class QualificationChange(Dated, frozen=True, kw_only=True):
    """A trainee assessor qualifies (or a qualified one is restricted), from `effective_on`."""

    role: StaffRole
    qualification: Qualification


class NewLearner(Dated, frozen=True, kw_only=True):
    learner_id: UUID | None = None
    name: Name


class NewWitness(Dated, frozen=True, kw_only=True):
    witness_id: UUID | None = None
    name: Name
    position: Short = ""


class EvAllocation(Dated, frozen=True, kw_only=True):
    #: An EV already known (allocated elsewhere); omit it to make a new EV, with a token.
    ev_id: UUID | None = None
    name: Name


class Thresholds(Body, frozen=True, kw_only=True):
    min_occasions: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 2
    min_distinct_dates: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 2
    min_distinct_customers: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 2
    min_span_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 14


class UnitPolicy(Body, frozen=True, kw_only=True):
    unit_code: UnitCode
    thresholds: Thresholds
    per_criterion: dict[CriterionId, Thresholds] = {}


class SufficiencyPolicy(Dated, frozen=True, kw_only=True):
    default: Thresholds = Thresholds()
    per_unit: Annotated[tuple[UnitPolicy, ...], msgspec.Meta(max_length=100)] = ()
    late_recording_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 28
    decision_ref: Short = ""


class SamplingPlan(Dated, frozen=True, kw_only=True):
    min_candidate_rate: Rate = 0.2
    min_assessor_rate: Rate = 0.2
    trainee_assessor_rate: Rate = 1.0
    every_method: bool = True
    every_unit: bool = True
    every_location: bool = True
    decision_ref: Short = ""
    #: Which portfolios need an agreed IQA summative sample before certification.
    summative_before_certification: SummativeRule = SummativeRule.TRAINEE_ASSESSED


class RweApproval(Dated, frozen=True, kw_only=True):
    """The awarding body approves a realistic working environment for performance evidence."""

    approval_id: UUID | None = None
    location: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    #: The units it is approved for; empty: every unit.
    unit_codes: Annotated[tuple[UnitCode, ...], msgspec.Meta(max_length=50)] = ()
    approval_ref: Short = ""


class ObservedCriteria(Dated, frozen=True, kw_only=True):
    criteria: Tags


# ---- portfolios -----------------------------------------------------------------------


class Enrolment(Dated, frozen=True, kw_only=True):
    portfolio_id: UUID | None = None
    centre_id: UUID
    learner_id: UUID
    unit_code: UnitCode
    assessor_id: UUID
    iqa_id: UUID


class AttachmentRef(Body, frozen=True, kw_only=True):
    """An uploaded blob (PUT /blobs/{sha256} first)."""

    sha256: Sha256Hex
    media_type: Annotated[str, msgspec.Meta(pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=200)]
    size: Annotated[int, msgspec.Meta(ge=0)]


class NewEvidence(Dated, frozen=True, kw_only=True):
    evidence_id: UUID | None = None
    method: Method
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    description: Text = ""
    occasion: Occasion = ""
    customer_ref: CustomerRef | None = None
    environment: Environment
    requirement_tags: Tags = ()
    location: Short = ""
    attachments: Annotated[tuple[AttachmentRef, ...], msgspec.Meta(max_length=50)] = ()
    authenticity_declared: bool
    #: A work product that is the learner's written answers to knowledge questions.
    written_answers: bool = False
    #: Required for method "Oth": what the evidence is and why it counts.
    other_reason: Text = ""
    #: The approval of the realistic working environment it comes from, where needed.
    rwe_approval_id: UUID | None = None


class EvidenceMapping(Dated, frozen=True, kw_only=True):
    criteria: Criteria


class EvidenceWithdrawal(Dated, frozen=True, kw_only=True):
    reason: Reason


class NewObservation(Dated, frozen=True, kw_only=True):
    evidence_id: UUID | None = None
    occasion: Occasion = ""
    customer_ref: CustomerRef | None = None
    environment: Environment
    criteria: Criteria
    requirement_tags: Tags = ()
    location: Short = ""
    notes: Text = ""
    rwe_approval_id: UUID | None = None


class NewTestimony(Dated, frozen=True, kw_only=True):
    evidence_id: UUID | None = None
    witness_id: UUID
    occasion: Occasion = ""
    customer_ref: CustomerRef | None = None
    environment: Environment
    criteria: Criteria
    statement: Text
    rwe_approval_id: UUID | None = None


class NewQuestioning(Dated, frozen=True, kw_only=True):
    evidence_id: UUID | None = None
    method: Method
    criteria: Criteria
    summary: Text = ""


class NewDecision(Dated, frozen=True, kw_only=True):
    decision_id: UUID | None = None
    outcome: Outcome
    criteria: Criteria
    evidence_ids: Ids
    feedback: Text = ""
    #: Why criteria observed "unless observation is not possible" were assessed otherwise.
    observation_not_possible: Text = ""


class Countersignature(Dated, frozen=True, kw_only=True):
    comment: Text = ""


class DecisionRevocation(Dated, frozen=True, kw_only=True):
    reason: Reason


class SampleCountersignature(Dated, frozen=True, kw_only=True):
    comment: Text = ""


class SampleResponse(Dated, frozen=True, kw_only=True):
    """The assessor acts on a referral, or on the actions an EV set."""

    response: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


class ResponseAcceptance(Dated, frozen=True, kw_only=True):
    comment: Text = ""


class SignOff(Dated, frozen=True, kw_only=True):
    """The assessor's "feedback on completion of the unit"."""

    feedback: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


class Appeal(Dated, frozen=True, kw_only=True):
    appeal_id: UUID | None = None
    reason: Reason


class NewIqaSample(Dated, frozen=True, kw_only=True):
    sample_id: UUID | None = None
    stage: SampleStage
    decision_ids: Ids
    outcome: SampleOutcome
    location: Short = ""
    feedback: Text = ""


class NewEvSample(Dated, frozen=True, kw_only=True):
    sample_id: UUID | None = None
    decision_ids: Ids
    outcome: SampleOutcome
    actions: Annotated[
        tuple[Annotated[str, msgspec.Meta(max_length=2_000)], ...], msgspec.Meta(max_length=100)
    ] = ()
    feedback: Text = ""


# ---- tokens -------------------------------------------------------------------------------


class TokenRequest(Body, frozen=True, kw_only=True):
    """A token for someone: an integrator (new unless subject_id), an EV, or centre people."""

    role: TokenRole
    subject_id: UUID | None = None
    #: Required for every role but EV (whose reach is the centres they are allocated to).
    centre_id: UUID | None = None
    label: Short = ""
    #: The token stops working this many days after it is issued.
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 90
