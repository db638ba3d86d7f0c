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
MediaType = Annotated[str, msgspec.Meta(pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=200)]


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
    min_occasions: Annotated[int, msgspec.Meta(ge=1)] = 2
    min_distinct_dates: Annotated[int, msgspec.Meta(ge=1)] = 2
    min_distinct_customers: Annotated[int, msgspec.Meta(ge=1)] = 2
    min_span_days: Annotated[int, msgspec.Meta(ge=0)] = 14


class UnitThresholds(Part, frozen=True, kw_only=True):
    EVENT_FORM = e.UnitThresholds
    unit_code: str
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


class Command(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    OPENS: ClassVar[str | None] = None
    """The field naming the stream this command opens; None: it acts on an existing one."""

    effective_on: date | None = None

    def __post_init__(self) -> None:
        """No text may hold a NUL character: it is no part of any name, reason or note.

        (Stored events stay as they were recorded; only what is asked for now is refused.)
        """
        for name in self.__struct_fields__:
            if _holds_nul(getattr(self, name)):
                msg = f"{name}: text may not contain NUL characters"
                raise ValueError(msg)

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


class RegisterCentre(Command, frozen=True, kw_only=True):
    OPENS = "centre_id"
    centre_id: UUID
    name: Name


class RegisterStaff(Command, frozen=True, kw_only=True):
    staff_id: UUID
    name: Name
    role: Role
    qualification: Qualification


class ChangeQualification(Command, frozen=True, kw_only=True):
    staff_id: UUID
    role: Role
    qualification: Qualification


class RegisterLearner(Command, frozen=True, kw_only=True):
    learner_id: UUID
    name: Name


class AddWitness(Command, frozen=True, kw_only=True):
    witness_id: UUID
    name: Name
    position: Short = ""


class AllocateEv(Command, frozen=True, kw_only=True):
    ev_id: UUID
    name: Name


class SetObservedCriteria(Command, frozen=True, kw_only=True):
    unit_code: str
    criteria: tuple[CriterionId, ...]


class SetSufficiencyPolicy(Command, frozen=True, kw_only=True):
    default: SufficiencyThresholds = SufficiencyThresholds()
    per_unit: tuple[UnitThresholds, ...] = ()
    late_recording_days: Annotated[int, msgspec.Meta(ge=0)] = 28
    decision_ref: Short = ""


class SetSamplingPlan(Command, frozen=True, kw_only=True):
    min_candidate_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    min_assessor_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    trainee_assessor_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    every_method: bool = True
    every_unit: bool = True
    every_location: bool = True
    decision_ref: Short = ""
    summative_before_certification: SummativeRule = SummativeRule.TRAINEE_ASSESSED


class ApproveRealisticEnvironment(Command, frozen=True, kw_only=True):
    approval_id: UUID
    location: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    unit_codes: Annotated[tuple[str, ...], msgspec.Meta(max_length=50)] = ()
    approval_ref: Short = ""


class SetRetentionPolicy(Command, frozen=True, kw_only=True):
    records_years: Annotated[int, msgspec.Meta(ge=0, le=100)] = 3
    evidence_after_ev_sample: bool = True
    decision_ref: Short = ""


class PlaceLegalHold(Command, frozen=True, kw_only=True):
    hold_id: UUID
    learner_id: UUID
    reason: HoldReason
    note: Text = ""


class LiftLegalHold(Command, frozen=True, kw_only=True):
    hold_id: UUID
    note: Text = ""


class EraseLearner(Command, frozen=True, kw_only=True):
    learner_id: UUID
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


# ---- portfolio -----------------------------------------------------------------------


class Enrol(Command, frozen=True, kw_only=True):
    OPENS = "portfolio_id"
    portfolio_id: UUID
    centre_id: UUID
    learner_id: UUID
    unit_code: str
    assessor_id: UUID
    iqa_id: UUID


class SubmitEvidence(Command, frozen=True, kw_only=True):
    evidence_id: UUID
    method: Method
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    description: Text = ""
    occasion: Annotated[str, msgspec.Meta(max_length=100)] = ""
    customer_ref: CustomerRef | None = None
    environment: Environment
    requirement_tags: tuple[CriterionId, ...] = ()
    location: Short = ""
    attachments: tuple[Attachment, ...] = ()
    authenticity_declared: bool
    written_answers: bool = False
    other_reason: Text = ""
    rwe_approval_id: UUID | None = None


class MapEvidence(Command, frozen=True, kw_only=True):
    evidence_id: UUID
    criteria: Annotated[tuple[CriterionId, ...], msgspec.Meta(min_length=1)]


class RecordObservation(Command, frozen=True, kw_only=True):
    evidence_id: UUID
    occasion: Annotated[str, msgspec.Meta(max_length=100)] = ""
    customer_ref: CustomerRef | None = None
    environment: Environment
    criteria: Annotated[tuple[CriterionId, ...], msgspec.Meta(min_length=1)]
    requirement_tags: tuple[CriterionId, ...] = ()
    location: Short = ""
    notes: Text = ""
    rwe_approval_id: UUID | None = None


class RecordWitnessTestimony(Command, frozen=True, kw_only=True):
    evidence_id: UUID
    witness_id: UUID
    occasion: Annotated[str, msgspec.Meta(max_length=100)] = ""
    customer_ref: CustomerRef | None = None
    environment: Environment
    criteria: Annotated[tuple[CriterionId, ...], msgspec.Meta(min_length=1)]
    statement: Text
    rwe_approval_id: UUID | None = None


class RecordQuestioning(Command, frozen=True, kw_only=True):
    evidence_id: UUID
    method: Method
    criteria: Annotated[tuple[CriterionId, ...], msgspec.Meta(min_length=1)]
    summary: Text = ""


class RecordDecision(Command, frozen=True, kw_only=True):
    decision_id: UUID
    outcome: Outcome
    criteria: Annotated[tuple[CriterionId, ...], msgspec.Meta(min_length=1)]
    evidence_ids: Annotated[tuple[UUID, ...], msgspec.Meta(min_length=1)]
    feedback: Text = ""
    observation_not_possible: Text = ""


class Countersign(Command, frozen=True, kw_only=True):
    decision_id: UUID
    comment: Text = ""


class RecordIqaSample(Command, frozen=True, kw_only=True):
    sample_id: UUID
    stage: SampleStage
    decision_ids: Annotated[tuple[UUID, ...], msgspec.Meta(min_length=1)]
    outcome: SampleOutcome
    location: Short = ""
    feedback: Text = ""


class RecordEvSample(Command, frozen=True, kw_only=True):
    sample_id: UUID
    decision_ids: Annotated[tuple[UUID, ...], msgspec.Meta(min_length=1)]
    outcome: SampleOutcome
    actions: tuple[Annotated[str, msgspec.Meta(max_length=2_000)], ...] = ()
    feedback: Text = ""


class CountersignIqaSample(Command, frozen=True, kw_only=True):
    sample_id: UUID
    comment: Text = ""


class RespondToSample(Command, frozen=True, kw_only=True):
    sample_id: UUID
    response: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


class AcceptSampleResponse(Command, frozen=True, kw_only=True):
    sample_id: UUID
    comment: Text = ""


class WithdrawEvidence(Command, frozen=True, kw_only=True):
    evidence_id: UUID
    reason: Reason


class RevokeDecision(Command, frozen=True, kw_only=True):
    decision_id: UUID
    reason: Reason


class SignOffUnit(Command, frozen=True, kw_only=True):
    feedback: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


class CertifyUnit(Command, frozen=True, kw_only=True):
    certificate_ref: Annotated[str, msgspec.Meta(max_length=100)] = ""


class WithdrawLearner(Command, frozen=True, kw_only=True):
    reason: Text = ""


class OpenAppeal(Command, frozen=True, kw_only=True):
    appeal_id: UUID
    reason: Reason
