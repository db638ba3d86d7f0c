"""Named domain errors: each is one rule of the assessment regime, refused.

The `rule` name travels to the HTTP problem document, so integrators can branch on it.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A command broke a rule; nothing was recorded."""

    rule: ClassVar[str] = "domain_rule"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


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


class OwnDecision(NotPermitted):
    """Nobody countersigns or samples their own decision."""

    rule = "not_own_decision"


class EvNotAllocated(NotPermitted):
    rule = "ev_not_allocated_to_centre"


class NotCentreStaff(NotPermitted):
    rule = "not_centre_staff"


class SimulationNotAllowed(DomainError):
    rule = "simulation_not_allowed_for_performance"


class EnvironmentNotAllowed(DomainError):
    rule = "environment_not_allowed"


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
    """A certified or withdrawn portfolio is not certified or withdrawn again."""

    rule = "portfolio_closed"
