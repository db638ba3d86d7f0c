"""Commands: imperative requests that the rules accept (as an event) or refuse.

Field names match the events they become, so a command maps onto its event without
renaming. `effective_on` left out means "the day it is recorded".

Commands are where a write is validated: lengths, patterns, ranges and unknown fields are
refused here, once, while the events they become stay permissive (docs/adr/0013). A value
nested in a command (`Part`) has a permissive twin in `domain.events` that its event holds.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

import msgspec

from domain import events as e
from domain.errors import EffectiveDateInFuture
from domain.events import (
    Environment,
    HoldReason,
    Outcome,
    Qualification,
    Role,
    SampleOutcome,
    SampleStage,
    SummativeRule,
)
from domain.spec import CriterionId, Method

Sha256Hex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
CustomerRef = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Text = Annotated[str, msgspec.Meta(max_length=20_000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Short = Annotated[str, msgspec.Meta(max_length=200)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=2_000)]
LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
"""Required prose: a sign-off's feedback, a response to a sample."""
ErasureReason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
"""Why a learner is erased, in words that are not themselves personal (they stay in clear)."""
MediaType = Annotated[str, msgspec.Meta(pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=200)]
UnitCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,32}$")]
Occasion = Annotated[str, msgspec.Meta(max_length=100)]
Criteria = Annotated[tuple[CriterionId, ...], msgspec.Meta(min_length=1, max_length=200)]
"""The criteria a write is about: at least one (a unit has well under 200)."""
Tags = Annotated[tuple[CriterionId, ...], msgspec.Meta(max_length=200)]
Ids = Annotated[tuple[UUID, ...], msgspec.Meta(min_length=1, max_length=500)]
Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]
Count = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Days = Annotated[int, msgspec.Meta(ge=0, le=3650)]


class Part(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A value nested in a command, validated like it; its event holds `EVENT_FORM`."""

    EVENT_FORM: ClassVar[type[msgspec.Struct]]

    def event_form(self) -> msgspec.Struct:
        return msgspec.convert(msgspec.to_builtins(self), self.EVENT_FORM)


class Attachment(Part, frozen=True, kw_only=True):
    EVENT_FORM = e.Attachment
    sha256: Sha256Hex
    media_type: MediaType
    size: Annotated[int, msgspec.Meta(ge=0)]


class SufficiencyThresholds(Part, frozen=True, kw_only=True):
    """What "over a period of time, with different customers, on different occasions" means."""

    EVENT_FORM = e.SufficiencyThresholds
    min_occasions: Count = 2
    min_distinct_dates: Count = 2
    min_distinct_customers: Count = 2
    min_span_days: Days = 14


class UnitThresholds(Part, frozen=True, kw_only=True):
    EVENT_FORM = e.UnitThresholds
    unit_code: UnitCode
    thresholds: SufficiencyThresholds
    per_criterion: dict[CriterionId, SufficiencyThresholds] = {}


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    role: Role


class Stamp(msgspec.Struct, frozen=True, kw_only=True):
    """Who acts, when it is recorded, and the id the resulting event will carry."""

    event_id: UUID
    actor: Actor
    recorded_at: datetime

    def fields(self, effective_on: date | None) -> dict[str, Any]:
        """The common event fields; refuses an effective date after the recorded time."""
        today = self.recorded_at.date()
        day = today if effective_on is None else effective_on
        if day > today:
            raise EffectiveDateInFuture(
                f"effective date {day} is after the time it is recorded ({self.recorded_at})",
                field="effective_on",
            )
        return {
            "event_id": self.event_id,
            "actor_id": self.actor.id,
            "actor_role": self.actor.role,
            "recorded_at": self.recorded_at,
            "effective_on": day,
        }


class Asked(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a command asks, validated: a command is this plus the ids of what it acts on.

    A request body is an `Asked` too (the `…Fields` class of its command), so every
    constraint is written once, here.
    """

    effective_on: date | None = None

    def __post_init__(self) -> None:
        """No text may hold a NUL character: it is no part of any name, reason or note.

        (Stored events stay as they were recorded; only what is asked for now is refused.)
        """
        for name in self.__struct_fields__:
            if _holds_nul(getattr(self, name)):
                msg = f"{name}: text may not contain NUL characters"
                raise ValueError(msg)


class Command(Asked, frozen=True, kw_only=True):
    OPENS: ClassVar[str | None] = None
    """The field naming the stream this command opens; None: it acts on an existing one."""

    def event_fields(self, stamp: Stamp) -> dict[str, Any]:
        """The command's own fields plus the stamp: what its event records."""
        values: dict[str, Any] = {
            k: _event_form(v) for k, v in msgspec.structs.asdict(self).items()
        }
        values.update(stamp.fields(values.pop("effective_on")))
        return values


def _event_form(value: object) -> object:
    if isinstance(value, Part):
        return value.event_form()
    if isinstance(value, tuple):
        return tuple(_event_form(item) for item in value)
    return value


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, tuple):
        return any(_holds_nul(item) for item in value)
    if isinstance(value, msgspec.Struct):
        return any(_holds_nul(getattr(value, f)) for f in value.__struct_fields__)
    return False


# ---- centre --------------------------------------------------------------------------


class RegisterCentreFields(Asked, frozen=True, kw_only=True):
    """RegisterCentre, its `centre_id` apart: what a request body asks."""

    name: Name


class RegisterCentre(RegisterCentreFields, Command, frozen=True, kw_only=True):
    OPENS = "centre_id"
    centre_id: UUID


class RegisterStaff(Command, frozen=True, kw_only=True):
    staff_id: UUID
    name: Name
    role: Role
    qualification: Qualification


class ChangeQualification(Command, frozen=True, kw_only=True):
    staff_id: UUID
    role: Role
    qualification: Qualification


class RegisterLearnerFields(Asked, frozen=True, kw_only=True):
    """RegisterLearner, its `learner_id` apart: what a request body asks."""

    name: Name


class RegisterLearner(RegisterLearnerFields, Command, frozen=True, kw_only=True):
    learner_id: UUID


class AddWitnessFields(Asked, frozen=True, kw_only=True):
    """AddWitness, its `witness_id` apart: what a request body asks."""

    name: Name
    position: Short = ""


class AddWitness(AddWitnessFields, Command, frozen=True, kw_only=True):
    witness_id: UUID


class AllocateEvFields(Asked, frozen=True, kw_only=True):
    """AllocateEv, its `ev_id` apart: what a request body asks."""

    name: Name


class AllocateEv(AllocateEvFields, Command, frozen=True, kw_only=True):
    ev_id: UUID


class SetObservedCriteriaFields(Asked, frozen=True, kw_only=True):
    """SetObservedCriteria, its `unit_code` apart: what a request body asks."""

    criteria: Tags


class SetObservedCriteria(SetObservedCriteriaFields, Command, frozen=True, kw_only=True):
    unit_code: UnitCode


class SetSufficiencyPolicy(Command, frozen=True, kw_only=True):
    default: SufficiencyThresholds = SufficiencyThresholds()
    per_unit: Annotated[tuple[UnitThresholds, ...], msgspec.Meta(max_length=100)] = ()
    late_recording_days: Days = 28
    decision_ref: Short = ""


class SetSamplingPlan(Command, frozen=True, kw_only=True):
    min_candidate_rate: Rate = 0.2
    min_assessor_rate: Rate = 0.2
    trainee_assessor_rate: Rate = 1.0
    every_method: bool = True
    every_unit: bool = True
    every_location: bool = True
    decision_ref: Short = ""
    summative_before_certification: SummativeRule = SummativeRule.TRAINEE_ASSESSED


class ApproveRealisticEnvironmentFields(Asked, frozen=True, kw_only=True):
    """ApproveRealisticEnvironment, its `approval_id` apart: what a request body asks."""

    location: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    unit_codes: Annotated[tuple[UnitCode, ...], msgspec.Meta(max_length=50)] = ()
    approval_ref: Short = ""


class ApproveRealisticEnvironment(
    ApproveRealisticEnvironmentFields, Command, frozen=True, kw_only=True
):
    approval_id: UUID


class SetRetentionPolicy(Command, frozen=True, kw_only=True):
    records_years: Annotated[int, msgspec.Meta(ge=0, le=100)] = 3
    evidence_after_ev_sample: bool = True
    decision_ref: Short = ""


class PlaceLegalHoldFields(Asked, frozen=True, kw_only=True):
    """PlaceLegalHold, its `hold_id` apart: what a request body asks."""

    learner_id: UUID
    reason: HoldReason
    note: Text = ""


class PlaceLegalHold(PlaceLegalHoldFields, Command, frozen=True, kw_only=True):
    hold_id: UUID


class LiftLegalHoldFields(Asked, frozen=True, kw_only=True):
    """LiftLegalHold, its `hold_id` apart: what a request body asks."""

    note: Text = ""


class LiftLegalHold(LiftLegalHoldFields, Command, frozen=True, kw_only=True):
    hold_id: UUID


class EraseLearnerFields(Asked, frozen=True, kw_only=True):
    """EraseLearner, its `learner_id` apart: what a request body asks."""

    reason: ErasureReason


class EraseLearner(EraseLearnerFields, Command, frozen=True, kw_only=True):
    learner_id: UUID


# ---- portfolio -----------------------------------------------------------------------


class EnrolFields(Asked, frozen=True, kw_only=True):
    """Enrol, its `portfolio_id` apart: what a request body asks."""

    centre_id: UUID
    learner_id: UUID
    unit_code: UnitCode
    assessor_id: UUID
    iqa_id: UUID


class Enrol(EnrolFields, Command, frozen=True, kw_only=True):
    OPENS = "portfolio_id"
    portfolio_id: UUID


class SubmitEvidenceFields(Asked, frozen=True, kw_only=True):
    """SubmitEvidence, its `evidence_id` apart: what a request body asks."""

    method: Method
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    description: Text = ""
    occasion: Occasion = ""
    customer_ref: CustomerRef | None = None
    environment: Environment
    requirement_tags: Tags = ()
    location: Short = ""
    attachments: Annotated[tuple[Attachment, ...], msgspec.Meta(max_length=50)] = ()
    authenticity_declared: bool
    written_answers: bool = False
    other_reason: Text = ""
    rwe_approval_id: UUID | None = None


class SubmitEvidence(SubmitEvidenceFields, Command, frozen=True, kw_only=True):
    evidence_id: UUID


class MapEvidenceFields(Asked, frozen=True, kw_only=True):
    """MapEvidence, its `evidence_id` apart: what a request body asks."""

    criteria: Criteria


class MapEvidence(MapEvidenceFields, Command, frozen=True, kw_only=True):
    evidence_id: UUID


class RecordObservationFields(Asked, frozen=True, kw_only=True):
    """RecordObservation, its `evidence_id` apart: what a request body asks."""

    occasion: Occasion = ""
    customer_ref: CustomerRef | None = None
    environment: Environment
    criteria: Criteria
    requirement_tags: Tags = ()
    location: Short = ""
    notes: Text = ""
    rwe_approval_id: UUID | None = None


class RecordObservation(RecordObservationFields, Command, frozen=True, kw_only=True):
    evidence_id: UUID


class RecordWitnessTestimonyFields(Asked, frozen=True, kw_only=True):
    """RecordWitnessTestimony, its `evidence_id` apart: what a request body asks."""

    witness_id: UUID
    occasion: Occasion = ""
    customer_ref: CustomerRef | None = None
    environment: Environment
    criteria: Criteria
    statement: Text
    rwe_approval_id: UUID | None = None


class RecordWitnessTestimony(RecordWitnessTestimonyFields, Command, frozen=True, kw_only=True):
    evidence_id: UUID


class RecordQuestioningFields(Asked, frozen=True, kw_only=True):
    """RecordQuestioning, its `evidence_id` apart: what a request body asks."""

    method: Method
    criteria: Criteria
    summary: Text = ""


class RecordQuestioning(RecordQuestioningFields, Command, frozen=True, kw_only=True):
    evidence_id: UUID


class RecordDecisionFields(Asked, frozen=True, kw_only=True):
    """RecordDecision, its `decision_id` apart: what a request body asks."""

    outcome: Outcome
    criteria: Criteria
    evidence_ids: Ids
    feedback: Text = ""
    observation_not_possible: Text = ""


class RecordDecision(RecordDecisionFields, Command, frozen=True, kw_only=True):
    decision_id: UUID


class CountersignFields(Asked, frozen=True, kw_only=True):
    """Countersign, its `decision_id` apart: what a request body asks."""

    comment: Text = ""


class Countersign(CountersignFields, Command, frozen=True, kw_only=True):
    decision_id: UUID


class RecordIqaSampleFields(Asked, frozen=True, kw_only=True):
    """RecordIqaSample, its `sample_id` apart: what a request body asks."""

    stage: SampleStage
    decision_ids: Ids
    outcome: SampleOutcome
    location: Short = ""
    feedback: Text = ""


class RecordIqaSample(RecordIqaSampleFields, Command, frozen=True, kw_only=True):
    sample_id: UUID


class RecordEvSampleFields(Asked, frozen=True, kw_only=True):
    """RecordEvSample, its `sample_id` apart: what a request body asks."""

    decision_ids: Ids
    outcome: SampleOutcome
    actions: Annotated[
        tuple[Annotated[str, msgspec.Meta(max_length=2_000)], ...], msgspec.Meta(max_length=100)
    ] = ()
    feedback: Text = ""


class RecordEvSample(RecordEvSampleFields, Command, frozen=True, kw_only=True):
    sample_id: UUID


class CountersignIqaSampleFields(Asked, frozen=True, kw_only=True):
    """CountersignIqaSample, its `sample_id` apart: what a request body asks."""

    comment: Text = ""


class CountersignIqaSample(CountersignIqaSampleFields, Command, frozen=True, kw_only=True):
    sample_id: UUID


class RespondToSampleFields(Asked, frozen=True, kw_only=True):
    """RespondToSample, its `sample_id` apart: what a request body asks."""

    response: LongText


class RespondToSample(RespondToSampleFields, Command, frozen=True, kw_only=True):
    sample_id: UUID


class AcceptSampleResponseFields(Asked, frozen=True, kw_only=True):
    """AcceptSampleResponse, its `sample_id` apart: what a request body asks."""

    comment: Text = ""


class AcceptSampleResponse(AcceptSampleResponseFields, Command, frozen=True, kw_only=True):
    sample_id: UUID


class WithdrawEvidenceFields(Asked, frozen=True, kw_only=True):
    """WithdrawEvidence, its `evidence_id` apart: what a request body asks."""

    reason: Reason


class WithdrawEvidence(WithdrawEvidenceFields, Command, frozen=True, kw_only=True):
    evidence_id: UUID


class RevokeDecisionFields(Asked, frozen=True, kw_only=True):
    """RevokeDecision, its `decision_id` apart: what a request body asks."""

    reason: Reason


class RevokeDecision(RevokeDecisionFields, Command, frozen=True, kw_only=True):
    decision_id: UUID


class SignOffUnit(Command, frozen=True, kw_only=True):
    feedback: LongText


class CertifyUnit(Command, frozen=True, kw_only=True):
    certificate_ref: Annotated[str, msgspec.Meta(max_length=100)] = ""


class WithdrawLearner(Command, frozen=True, kw_only=True):
    reason: Text = ""


class OpenAppealFields(Asked, frozen=True, kw_only=True):
    """OpenAppeal, its `appeal_id` apart: what a request body asks."""

    reason: Reason


class OpenAppeal(OpenAppealFields, Command, frozen=True, kw_only=True):
    appeal_id: UUID
