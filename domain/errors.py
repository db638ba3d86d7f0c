"""Named domain errors: each is one rule of the assessment regime, refused.

The `rule` name travels to the HTTP problem document, so integrators can branch on it.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A command broke a rule; nothing was recorded."""

    rule: ClassVar[str] = "domain_rule"

    def __init__(
        self, message: str, *, field: str | None = None, reasons: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.reasons = reasons  # every reason, where a refusal has several (certification)


class NotFound(DomainError):
    rule = "not_found"


class AlreadyExists(DomainError):
    rule = "already_exists"


class NotPermitted(DomainError):
    """The actor's role or relationship does not allow this action."""

    rule = "not_permitted"


class NotPortfolioAssessor(NotPermitted):
    rule = "only_portfolio_assessor"


class CountersignerNotQualified(NotPermitted):
    rule = "countersigner_must_be_qualified_assessor"


class IqaCountersignerNotQualified(NotPermitted):
    rule = "countersigner_must_be_qualified_iqa"


class OwnDecision(NotPermitted):
    """Nobody countersigns or samples their own decision."""

    rule = "not_own_decision"


class EvNotAllocated(NotPermitted):
    rule = "ev_not_allocated_to_centre"


class NotCentreStaff(NotPermitted):
    rule = "not_centre_staff"


class NotOwnEvidence(NotPermitted):
    """A learner maps and withdraws only the evidence they recorded themselves."""

    rule = "not_own_evidence"


class ConflictOfInterest(NotPermitted):
    """The learner is never their own assessor, IQA, countersigner or witness; an EV is
    never staff of a centre allocated to them."""

    rule = "conflict_of_interest"


class SimulationNotAllowed(DomainError):
    rule = "simulation_not_allowed_for_performance"


class EnvironmentNotAllowed(DomainError):
    rule = "environment_not_allowed"


class MethodCannotShow(DomainError):
    """The evidence's method cannot show that criterion (e.g. witness testimony of knowledge)."""

    rule = "method_cannot_show_criterion"


class KnowledgeNotInferable(MethodCannotShow):
    """Observation or a product of work, for knowledge that may not be inferred from them."""

    rule = "knowledge_not_inferable"


class OtherNeedsReason(DomainError):
    rule = "other_evidence_needs_reason"


class DecisionUnsupported(DomainError):
    """A "met" decision names a criterion that no cited, live evidence can show."""

    rule = "decision_not_supported_by_evidence"


class ObservationRequired(DecisionUnsupported):
    """A must-observe criterion decided met without a cited observation of it."""

    rule = "must_observe_needs_cited_observation"


class DecisionBeforeEvidence(DomainError):
    rule = "decision_dated_before_evidence"


class CountersignatureBeforeDecision(DomainError):
    rule = "countersignature_dated_before_decision"


class SampleBeforeDecision(DomainError):
    rule = "sample_dated_before_decision"


class NoOpenReferral(DomainError):
    """A response to a sample that referred nothing and set no actions, or already closed."""

    rule = "no_open_referral"


class UnitNotComplete(DomainError):
    """The assessor signs off only a unit whose coverage is complete and sufficient."""

    rule = "unit_not_complete"


class CertificationRefused(DomainError):
    """Not ready for certification; `reasons` lists every reason."""

    rule = "certification_refused"


class PortfolioNotClosed(DomainError):
    """An appeal reopens a certified or withdrawn portfolio; this one is open."""

    rule = "portfolio_not_closed"


class WitnessNotListed(DomainError):
    rule = "witness_not_on_list"


class EffectiveDateInFuture(DomainError):
    rule = "effective_date_after_recorded_time"


class WithdrawnEvidence(DomainError):
    rule = "withdrawn_evidence_cannot_be_relied_on"


class UnknownCriterion(DomainError):
    rule = "unknown_criterion"


class MethodNotAllowed(DomainError):
    rule = "method_not_allowed"


class AuthenticityNotDeclared(DomainError):
    rule = "authenticity_declaration_required"


class CountersignatureNotRequired(DomainError):
    rule = "countersignature_not_required"


class AlreadyCorrected(DomainError):
    """Withdrawn evidence and revoked decisions stay as they are."""

    rule = "already_corrected"


class SpecMismatch(DomainError):
    rule = "unit_spec_mismatch"


class ErasureRefused(DomainError):
    """Personal data that must still be kept: erasure is a conflict with a legal duty (409)."""

    rule = "erasure_refused"


class LegalHoldApplies(ErasureRefused):
    rule = "legal_hold_applies"


class RetentionApplies(ErasureRefused):
    """Records kept under the centre's retention policy, or a portfolio still open."""

    rule = "retention_period_applies"


class AlreadyErased(AlreadyExists):
    rule = "already_erased"


class LearnerErased(DomainError):
    """Nothing more is recorded about an erased learner: their key is gone."""

    rule = "learner_erased"


class PortfolioClosed(DomainError):
    """A certified or withdrawn portfolio takes no more assessment writes (an appeal
    reopens it); quality assurance (IQA and EV samples, responses) goes on."""

    rule = "portfolio_closed"
