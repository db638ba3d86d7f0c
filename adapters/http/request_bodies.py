"""Request bodies: each write's body is its command, so a constraint is written once.

A body subclasses the command it becomes, with the id of a new thing optional (the server
makes one, derived from the Idempotency-Key when there is one, so a retried request names
the same thing). Where the path names what is acted on (`/evidence/{id}/mappings`), the
body holds the rest of the command, with the command's own field types. Unknown fields are
refused, as by the commands; the events they become stay permissive when read back.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import msgspec

from domain import commands as c
from domain.commands import Asked, Command, Short
from domain.events import Qualification

C = TypeVar("C", bound=Command)
StaffRole = Literal["centre_admin", "assessor", "iqa"]
TokenRole = Literal["centre_admin", "assessor", "iqa", "ev", "learner", "integrator"]


class Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Dated(Body, frozen=True, kw_only=True):
    #: The day what is recorded happened (default: today); never after today.
    effective_on: date | None = None


def to_command(body: Asked | Body, command: type[C], **extra: Any) -> C:
    """The command a body asks for; `extra` adds what the path or the server supplies."""
    fields = {**msgspec.structs.asdict(body), **extra}
    return msgspec.convert(fields, command, from_attributes=True)


# ---- centres ------------------------------------------------------------------------


class NewCentre(c.RegisterCentreFields, frozen=True, kw_only=True):
    centre_id: UUID | None = None


class NewStaff(Dated, frozen=True, kw_only=True):
    """Staff of the centre (the command takes any role; a body only these three)."""

    staff_id: UUID | None = None
    name: c.Name
    role: StaffRole
    qualification: Qualification = Qualification.QUALIFIED


class QualificationChange(Dated, frozen=True, kw_only=True):
    """A trainee assessor qualifies (or a qualified one is restricted), from `effective_on`."""

    role: StaffRole
    qualification: Qualification


class NewLearner(c.RegisterLearnerFields, frozen=True, kw_only=True):
    learner_id: UUID | None = None


class NewWitness(c.AddWitnessFields, frozen=True, kw_only=True):
    witness_id: UUID | None = None


class EvAllocation(c.AllocateEvFields, frozen=True, kw_only=True):
    #: An EV already known (allocated elsewhere); omit it to make a new EV, with a token.
    ev_id: UUID | None = None


class SufficiencyPolicy(c.SetSufficiencyPolicy, frozen=True, kw_only=True):
    """What "over a period of time, with different customers, on different occasions" means."""


class SamplingPlan(c.SetSamplingPlan, frozen=True, kw_only=True):
    """The IQA's sampling rates; which portfolios need a summative sample to certify."""


class RweApproval(c.ApproveRealisticEnvironmentFields, frozen=True, kw_only=True):
    """The awarding body approves a realistic working environment for performance evidence."""

    approval_id: UUID | None = None


class ObservedCriteria(c.SetObservedCriteriaFields, frozen=True, kw_only=True):
    """The criteria of the unit (named in the path) that must be observed."""


# ---- portfolios -----------------------------------------------------------------------


class Enrolment(c.EnrolFields, frozen=True, kw_only=True):
    portfolio_id: UUID | None = None


class NewEvidence(c.SubmitEvidenceFields, frozen=True, kw_only=True):
    """Evidence; attachments uploaded first (PUT /blobs/{sha256})."""

    evidence_id: UUID | None = None


class EvidenceMapping(c.MapEvidenceFields, frozen=True, kw_only=True):
    """The criteria the evidence (named in the path) shows."""


class EvidenceWithdrawal(c.WithdrawEvidenceFields, frozen=True, kw_only=True):
    """Why the evidence stops counting; it stays on record."""


class NewObservation(c.RecordObservationFields, frozen=True, kw_only=True):
    evidence_id: UUID | None = None


class NewTestimony(c.RecordWitnessTestimonyFields, frozen=True, kw_only=True):
    evidence_id: UUID | None = None


class NewQuestioning(c.RecordQuestioningFields, frozen=True, kw_only=True):
    evidence_id: UUID | None = None


class NewDecision(c.RecordDecisionFields, frozen=True, kw_only=True):
    decision_id: UUID | None = None


class Countersignature(c.CountersignFields, frozen=True, kw_only=True):
    """A qualified assessor countersigns a trainee's decision."""


class DecisionRevocation(c.RevokeDecisionFields, frozen=True, kw_only=True):
    """Why the decision no longer stands; it stays on record."""


class SampleCountersignature(c.CountersignIqaSampleFields, frozen=True, kw_only=True):
    """A qualified IQA countersigns a trainee IQA's sample."""


class SampleResponse(c.RespondToSampleFields, frozen=True, kw_only=True):
    """The assessor acts on a referral, or on the actions an EV set."""


class ResponseAcceptance(c.AcceptSampleResponseFields, frozen=True, kw_only=True):
    """The sampler accepts the assessor's response."""


class SignOff(c.SignOffUnit, frozen=True, kw_only=True):
    """The assessor's "feedback on completion of the unit"."""


class Appeal(c.OpenAppealFields, frozen=True, kw_only=True):
    appeal_id: UUID | None = None


class NewIqaSample(c.RecordIqaSampleFields, frozen=True, kw_only=True):
    sample_id: UUID | None = None


class NewEvSample(c.RecordEvSampleFields, frozen=True, kw_only=True):
    sample_id: UUID | None = None


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
