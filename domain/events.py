"""Domain events: immutable facts, past tense, each with a stable TOPIC.

Every event says who did it (actor id and role), when it was recorded (system time) and
the effective date of what it records. A correction is an event naming what it corrects.
Schema evolution follows msgspec's rules: new fields get defaults; no array_like.

Stored events are permissive when read back (docs/adr/0013): no length, pattern or range
constraints and no `forbid_unknown_fields` here, so an older reader decodes a newer
event and a rule tightened later never makes history unreadable. What a write may say is
validated by its command (`domain.commands`), before any event is decided.

Personal data is declared, not guessed: `PERSONAL` names the fields holding names or free
text about people, and `SUBJECT` the field naming whose data they are (a portfolio event's
subject is the portfolio's learner). The service seals those fields with the subject's key
when storing; assessment facts (criteria, dates, methods, who decided, outcomes) stay clear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

import msgspec

from domain.spec import Method

CriterionId = str
"""A criterion's id as an event records it (the spec and the commands check its form)."""

Upcast = Callable[[dict[str, Any]], dict[str, Any]]
"""A pure function from an event's stored form at one version to the next version's."""

ERASED = "[erased]"
"""What a personal field reads as once its subject's key is destroyed (crypto-shredding)."""


class Role(StrEnum):
    ADMIN = "admin"
    CENTRE_ADMIN = "centre_admin"
    ASSESSOR = "assessor"
    IQA = "iqa"
    EV = "ev"
    LEARNER = "learner"
    INTEGRATOR = "integrator"
    SYSTEM = "system"  # the service itself, e.g. issuing a scheduled checkpoint


class Qualification(StrEnum):
    QUALIFIED = "qualified"
    TRAINEE = "trainee"


class Environment(StrEnum):
    """Where evidence was produced; each unit says which count as performance evidence."""

    WORKPLACE = "workplace"  # real work, paid or voluntary, with real customers
    WORK_PLACEMENT = "work_placement"  # real work on a placement away from the learner's job
    REALISTIC_WORKING_ENVIRONMENT = "rwe"  # a realistic working environment (approved or not)
    SIMULATION = "simulation"


class Outcome(StrEnum):
    MET = "met"
    NOT_YET = "not_yet"


class SampleOutcome(StrEnum):
    AGREED = "agreed"
    REFERRED = "referred"


class SampleStage(StrEnum):
    INTERIM = "interim"
    SUMMATIVE = "summative"


class SummativeRule(StrEnum):
    """Which portfolios need an agreed IQA summative sample before they are certified."""

    NONE = "none"
    TRAINEE_ASSESSED = "trainee_assessed"  # any decision on it made by a trainee assessor
    EVERY_PORTFOLIO = "every_portfolio"


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    sha256: str
    media_type: str
    size: int


class HoldReason(StrEnum):
    APPEAL = "appeal"
    MALPRACTICE = "malpractice"
    OTHER = "other"  # e.g. a complaint or a regulator's enquiry


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """What every event carries."""

    TOPIC: ClassVar[str]
    class_version: ClassVar[int] = 1
    """Bumped only when a stored form needs changing to read as this class (docs/adr/0014)."""
    UPCASTS: ClassVar[tuple[Upcast, ...]] = ()
    """`UPCASTS[n]` takes the stored form of version n + 1 to version n + 2; there are
    `class_version - 1`. They see personal fields sealed and never change their names."""
    PERSONAL: ClassVar[frozenset[str]] = frozenset()
    """Fields holding personal data: sealed with the data subject's key when stored."""
    SUBJECT: ClassVar[str | None] = None
    """The field naming the data subject; None on portfolio events (the portfolio's learner)."""

    event_id: UUID
    actor_id: UUID
    actor_role: Role
    recorded_at: datetime
    effective_on: date


# ---- centre stream ---------------------------------------------------------------


class CentreEvent(Event, frozen=True, kw_only=True):
    centre_id: UUID


class CentreRegistered(CentreEvent, frozen=True, kw_only=True):
    TOPIC = "eportfolio.centre.registered"
    name: str


class StaffRegistered(CentreEvent, frozen=True, kw_only=True):
    TOPIC = "eportfolio.centre.staff_registered"
    PERSONAL = frozenset({"name"})
    SUBJECT = "staff_id"
    staff_id: UUID
    name: str
    role: Role
    qualification: Qualification


class StaffQualificationChanged(CentreEvent, frozen=True, kw_only=True):
    """E.g. a trainee assessor achieves the assessor award (effective on that date)."""

    TOPIC = "eportfolio.centre.staff_qualification_changed"
    staff_id: UUID
    role: Role
    qualification: Qualification


class LearnerRegistered(CentreEvent, frozen=True, kw_only=True):
    TOPIC = "eportfolio.centre.learner_registered"
    PERSONAL = frozenset({"name"})
    SUBJECT = "learner_id"
    learner_id: UUID
    name: str


class WitnessAdded(CentreEvent, frozen=True, kw_only=True):
    """A witness on the centre's witness status list."""

    TOPIC = "eportfolio.centre.witness_added"
    PERSONAL = frozenset({"name", "position"})
    SUBJECT = "witness_id"
    witness_id: UUID
    name: str
    position: str = ""


class EvAllocated(CentreEvent, frozen=True, kw_only=True):
    """The awarding body allocates an external verifier to this centre."""

    TOPIC = "eportfolio.centre.ev_allocated"
    PERSONAL = frozenset({"name"})
    SUBJECT = "ev_id"
    ev_id: UUID
    name: str


class ObservedCriteriaSet(CentreEvent, frozen=True, kw_only=True):
    """The centre circles the criteria that must be observed, where a unit leaves it to them."""

    TOPIC = "eportfolio.centre.observed_criteria_set"
    unit_code: str
    criteria: tuple[CriterionId, ...]


class RealisticEnvironmentApproved(CentreEvent, frozen=True, kw_only=True):
    """A realistic working environment approved for performance evidence, on the record.

    Units that accept only an *approved* RWE (seeds 000 and 003) count RWE evidence only
    when it names an approval like this one.
    """

    TOPIC = "eportfolio.centre.realistic_environment_approved"
    approval_id: UUID
    location: str
    unit_codes: tuple[str, ...] = ()  # empty: every unit
    approval_ref: str = ""


class SufficiencyThresholds(msgspec.Struct, frozen=True, kw_only=True):
    """What "over a period of time, with different customers, on different occasions" means here.

    No national numbers exist: a centre decides them at standardisation.
    """

    min_occasions: int = 2
    min_distinct_dates: int = 2
    min_distinct_customers: int = 2
    min_span_days: int = 14


class UnitThresholds(msgspec.Struct, frozen=True, kw_only=True):
    unit_code: str
    thresholds: SufficiencyThresholds
    per_criterion: dict[CriterionId, SufficiencyThresholds] = {}


class SufficiencyPolicySet(CentreEvent, frozen=True, kw_only=True):
    """A standardisation decision: the centre's sufficiency thresholds, versioned."""

    TOPIC = "eportfolio.centre.sufficiency_policy_set"
    policy_version: int
    default: SufficiencyThresholds = SufficiencyThresholds()
    per_unit: tuple[UnitThresholds, ...] = ()
    late_recording_days: int = 28
    decision_ref: str = ""


class SamplingPlanSet(CentreEvent, frozen=True, kw_only=True):
    """The IQA sampling plan (CAMERA), versioned; rates are fractions of decisions."""

    TOPIC = "eportfolio.centre.sampling_plan_set"
    plan_version: int
    min_candidate_rate: float = 0.2
    min_assessor_rate: float = 0.2
    trainee_assessor_rate: float = 1.0
    every_method: bool = True
    every_unit: bool = True
    every_location: bool = True
    decision_ref: str = ""
    #: Portfolios that need an agreed IQA summative sample before certification.
    summative_before_certification: SummativeRule = SummativeRule.TRAINEE_ASSESSED


class RetentionPolicySet(CentreEvent, frozen=True, kw_only=True):
    """How long the centre keeps assessment records, versioned like its other policies.

    Awarding bodies require at least 3 years after certification; the clock starts at a
    portfolio's certification or withdrawal. Evidence artefacts (attachments) may go
    sooner, once an EV has sampled the portfolio, if `evidence_after_ev_sample`.
    """

    TOPIC = "eportfolio.centre.retention_policy_set"
    policy_version: int
    records_years: int = 3
    evidence_after_ev_sample: bool = True
    decision_ref: str = ""


class LegalHoldPlaced(CentreEvent, frozen=True, kw_only=True):
    """An appeal or malpractice case: the learner's records stay until it is lifted."""

    TOPIC = "eportfolio.centre.legal_hold_placed"
    PERSONAL = frozenset({"note"})
    SUBJECT = "learner_id"
    hold_id: UUID
    learner_id: UUID
    reason: HoldReason
    note: str = ""


class LegalHoldLifted(CentreEvent, frozen=True, kw_only=True):
    TOPIC = "eportfolio.centre.legal_hold_lifted"
    PERSONAL = frozenset({"note"})
    SUBJECT = "learner_id"
    hold_id: UUID
    learner_id: UUID
    note: str = ""


class SubjectErased(CentreEvent, frozen=True, kw_only=True):
    """A person's key was destroyed: their personal fields now read as ERASED everywhere.

    The reason stays in clear, so it must not itself be personal ("Art. 17 request").
    """

    TOPIC = "eportfolio.centre.subject_erased"
    subject_id: UUID
    subject_role: Role
    reason: str


# ---- portfolio stream ------------------------------------------------------------


class PortfolioEvent(Event, frozen=True, kw_only=True):
    portfolio_id: UUID


class LearnerEnrolled(PortfolioEvent, frozen=True, kw_only=True):
    TOPIC = "eportfolio.portfolio.learner_enrolled"
    SUBJECT = "learner_id"
    centre_id: UUID
    learner_id: UUID
    unit_code: str
    spec_version: int
    spec_hash: str
    assessor_id: UUID
    iqa_id: UUID


class EvidenceSubmitted(PortfolioEvent, frozen=True, kw_only=True):
    """A piece of evidence from the learner (or the assessor on their behalf)."""

    TOPIC = "eportfolio.portfolio.evidence_submitted"
    PERSONAL = frozenset({"title", "description", "other_reason"})
    evidence_id: UUID
    method: Method
    title: str
    description: str = ""
    occasion: str = ""
    customer_ref: str | None = None
    environment: Environment
    requirement_tags: tuple[CriterionId, ...] = ()
    location: str = ""
    attachments: tuple[Attachment, ...] = ()
    authenticity_declared: bool
    #: A work product that is the learner's written answers to knowledge questions.
    written_answers: bool = False
    #: For method "Oth": what the evidence is and why it shows what it is mapped to.
    other_reason: str = ""
    #: The centre's approval of the realistic working environment it comes from.
    rwe_approval_id: UUID | None = None


class EvidenceMapped(PortfolioEvent, frozen=True, kw_only=True):
    """One evidence item mapped to one or more criteria."""

    TOPIC = "eportfolio.portfolio.evidence_mapped"
    evidence_id: UUID
    criteria: tuple[CriterionId, ...]


class ObservationRecorded(PortfolioEvent, frozen=True, kw_only=True):
    """The assessor's own direct observation of the learner at work; itself evidence."""

    TOPIC = "eportfolio.portfolio.observation_recorded"
    PERSONAL = frozenset({"notes"})
    evidence_id: UUID
    occasion: str = ""
    customer_ref: str | None = None
    environment: Environment
    criteria: tuple[CriterionId, ...]
    requirement_tags: tuple[CriterionId, ...] = ()
    location: str = ""
    notes: str = ""
    rwe_approval_id: UUID | None = None


class WitnessTestimonyRecorded(PortfolioEvent, frozen=True, kw_only=True):
    """What a listed witness saw; the witness does not make the assessment decision."""

    TOPIC = "eportfolio.portfolio.witness_testimony_recorded"
    PERSONAL = frozenset({"statement"})
    evidence_id: UUID
    witness_id: UUID
    occasion: str = ""
    customer_ref: str | None = None
    environment: Environment
    criteria: tuple[CriterionId, ...]
    statement: str
    rwe_approval_id: UUID | None = None


class QuestioningRecorded(PortfolioEvent, frozen=True, kw_only=True):
    """Questioning (Q) or professional discussion (PD) by the assessor."""

    TOPIC = "eportfolio.portfolio.questioning_recorded"
    PERSONAL = frozenset({"summary"})
    evidence_id: UUID
    method: Method
    criteria: tuple[CriterionId, ...]
    summary: str = ""


class DecisionRecorded(PortfolioEvent, frozen=True, kw_only=True):
    """An assessment decision; a trainee's is pending until countersigned."""

    TOPIC = "eportfolio.portfolio.decision_recorded"
    PERSONAL = frozenset({"feedback", "observation_not_possible"})
    decision_id: UUID
    outcome: Outcome
    criteria: tuple[CriterionId, ...]
    evidence_ids: tuple[UUID, ...]
    assessor_qualification: Qualification
    feedback: str = ""
    #: Why criteria to be observed "unless observation is not possible" were assessed by
    #: other methods; needed where the decision cites no observation of them.
    observation_not_possible: str = ""


class DecisionCountersigned(PortfolioEvent, frozen=True, kw_only=True):
    TOPIC = "eportfolio.portfolio.decision_countersigned"
    PERSONAL = frozenset({"comment"})
    decision_id: UUID
    comment: str = ""


class IqaSampleRecorded(PortfolioEvent, frozen=True, kw_only=True):
    """An IQA's sample; a trainee IQA's counts only once a qualified IQA countersigns it."""

    TOPIC = "eportfolio.portfolio.iqa_sample_recorded"
    PERSONAL = frozenset({"feedback"})
    sample_id: UUID
    stage: SampleStage
    decision_ids: tuple[UUID, ...]
    outcome: SampleOutcome
    location: str = ""
    feedback: str = ""
    iqa_qualification: Qualification = Qualification.QUALIFIED


class IqaSampleCountersigned(PortfolioEvent, frozen=True, kw_only=True):
    """A qualified IQA countersigns a trainee IQA's sample: from now on it counts."""

    TOPIC = "eportfolio.portfolio.iqa_sample_countersigned"
    PERSONAL = frozenset({"comment"})
    sample_id: UUID
    comment: str = ""


class EvSampleRecorded(PortfolioEvent, frozen=True, kw_only=True):
    TOPIC = "eportfolio.portfolio.ev_sample_recorded"
    PERSONAL = frozenset({"feedback", "actions"})
    sample_id: UUID
    decision_ids: tuple[UUID, ...]
    outcome: SampleOutcome
    actions: tuple[str, ...] = ()
    feedback: str = ""


class SampleResponded(PortfolioEvent, frozen=True, kw_only=True):
    """The assessor's response to a sample that referred decisions or set actions."""

    TOPIC = "eportfolio.portfolio.sample_responded"
    PERSONAL = frozenset({"response"})
    sample_id: UUID
    response: str


class SampleResponseAccepted(PortfolioEvent, frozen=True, kw_only=True):
    """The sampler's side (an EV for an EV sample, an IQA for an IQA sample) accepts the
    assessor's response: the referral and the sample's actions are closed."""

    TOPIC = "eportfolio.portfolio.sample_response_accepted"
    PERSONAL = frozenset({"comment"})
    sample_id: UUID
    comment: str = ""


class EvidenceWithdrawn(PortfolioEvent, frozen=True, kw_only=True):
    """Corrects an earlier evidence event: it no longer counts, but stays on record."""

    TOPIC = "eportfolio.portfolio.evidence_withdrawn"
    PERSONAL = frozenset({"reason"})
    evidence_id: UUID
    corrects_event_id: UUID
    reason: str


class DecisionRevoked(PortfolioEvent, frozen=True, kw_only=True):
    """Corrects an earlier decision: it no longer stands, but stays on record."""

    TOPIC = "eportfolio.portfolio.decision_revoked"
    PERSONAL = frozenset({"reason"})
    decision_id: UUID
    corrects_event_id: UUID
    reason: str


class UnitCompletionSignedOff(PortfolioEvent, frozen=True, kw_only=True):
    """The assessor signs off the unit as complete, with feedback to the learner."""

    TOPIC = "eportfolio.portfolio.unit_completion_signed"
    PERSONAL = frozenset({"feedback"})
    feedback: str


class UnitCertified(PortfolioEvent, frozen=True, kw_only=True):
    """The awarding body certified the unit (effective on the certificate's date).

    `sufficiency_policy_version` is the centre's policy the portfolio was judged by (0: the
    built-in default); the portfolio keeps being judged by it.
    """

    TOPIC = "eportfolio.portfolio.unit_certified"
    certificate_ref: str = ""
    sufficiency_policy_version: int = 0


class LearnerWithdrawn(PortfolioEvent, frozen=True, kw_only=True):
    """The learner left the unit before certification; the retention clock starts."""

    TOPIC = "eportfolio.portfolio.learner_withdrawn"
    PERSONAL = frozenset({"reason"})
    reason: str = ""


class AppealOpened(PortfolioEvent, frozen=True, kw_only=True):
    """The centre opens an appeal: a certified or withdrawn portfolio is open again."""

    TOPIC = "eportfolio.portfolio.appeal_opened"
    PERSONAL = frozenset({"reason"})
    appeal_id: UUID
    reason: str


# ---- audit stream -----------------------------------------------------------------


class CheckpointIssued(Event, frozen=True, kw_only=True):
    """A signed checkpoint of the Merkle log (C2SP signed note), itself kept in the log."""

    TOPIC = "eportfolio.audit.checkpoint_issued"
    origin: str
    tree_size: int
    root_hash: str
    signed_note: str
    key_id: str
    reason: str  # "scheduled", "on_demand" or "ev_sample"


CENTRE_EVENTS: tuple[type[CentreEvent], ...] = (
    CentreRegistered,
    StaffRegistered,
    StaffQualificationChanged,
    LearnerRegistered,
    WitnessAdded,
    EvAllocated,
    ObservedCriteriaSet,
    SufficiencyPolicySet,
    SamplingPlanSet,
    RetentionPolicySet,
    LegalHoldPlaced,
    LegalHoldLifted,
    SubjectErased,
    RealisticEnvironmentApproved,
)
PORTFOLIO_EVENTS: tuple[type[PortfolioEvent], ...] = (
    LearnerEnrolled,
    EvidenceSubmitted,
    EvidenceMapped,
    ObservationRecorded,
    WitnessTestimonyRecorded,
    QuestioningRecorded,
    DecisionRecorded,
    DecisionCountersigned,
    IqaSampleRecorded,
    EvSampleRecorded,
    EvidenceWithdrawn,
    DecisionRevoked,
    UnitCertified,
    LearnerWithdrawn,
    IqaSampleCountersigned,
    SampleResponded,
    SampleResponseAccepted,
    UnitCompletionSignedOff,
    AppealOpened,
)
AUDIT_EVENTS: tuple[type[Event], ...] = (CheckpointIssued,)
EVENT_TYPES: dict[str, type[Event]] = {
    cls.TOPIC: cls for cls in (*CENTRE_EVENTS, *PORTFOLIO_EVENTS, *AUDIT_EVENTS)
}


def upcast(state: dict[str, Any], version: int, upcasts: Sequence[Upcast]) -> dict[str, Any]:
    """A stored form of `version` brought to the current version by the chain of upcasts.

    A form newer than this code (an older verifier reading a newer bundle) is left as it
    is: decoding ignores the fields it does not know.
    """
    for step in upcasts[version - 1 :]:
        state = step(state)
    return state
