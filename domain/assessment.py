"""The rules of assessment: each function accepts a command as an event or refuses it.

They read the portfolio, its centre (roles and qualification status at the time of
signing) and the unit spec the portfolio was enrolled on; they never write anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from domain import commands as c
from domain import events as e
from domain.centre import CentreState
from domain.errors import (
    AlreadyCorrected,
    AlreadyExists,
    AuthenticityNotDeclared,
    CountersignatureNotRequired,
    CountersignerNotQualified,
    EnvironmentNotAllowed,
    EvNotAllocated,
    LearnerErased,
    MethodNotAllowed,
    NotCentreStaff,
    NotFound,
    NotPermitted,
    NotPortfolioAssessor,
    OwnDecision,
    SimulationNotAllowed,
    SpecMismatch,
    UnknownCriterion,
    WithdrawnEvidence,
    WitnessNotListed,
)
from domain.portfolio import Decision, EvidenceItem, PortfolioState
from domain.spec import CriterionKind, Method, UnitSpec

EVIDENCE_METHODS = (Method.WORK_PRODUCT, Method.OTHER, Method.PROFESSIONAL_DISCUSSION)
QUESTIONING_METHODS = (Method.QUESTIONING, Method.PROFESSIONAL_DISCUSSION)


class Context:
    """What a portfolio rule reads: the portfolio, its centre and its unit spec."""

    def __init__(self, portfolio: PortfolioState, centre: CentreState, spec: UnitSpec) -> None:
        if spec.content_hash != portfolio.spec_hash:
            raise SpecMismatch(
                f"portfolio was enrolled on {spec.code} v{portfolio.spec_version} with hash "
                f"{portfolio.spec_hash}, not {spec.content_hash}"
            )
        if portfolio.learner_id in centre.erased:
            raise LearnerErased("the learner's personal data was erased: nothing more is recorded")
        self.portfolio = portfolio
        self.centre = centre
        self.spec = spec

    # ---- who may act ---------------------------------------------------------------

    def require_assessor(self, actor: c.Actor) -> None:
        if actor.role is not e.Role.ASSESSOR or actor.id != self.portfolio.assessor_id:
            raise NotPortfolioAssessor("only the portfolio's assessor may do this")

    def require_learner_or_assessor(self, actor: c.Actor) -> None:
        if actor.role is e.Role.LEARNER and actor.id == self.portfolio.learner_id:
            return
        if actor.role is e.Role.ASSESSOR and actor.id == self.portfolio.assessor_id:
            return
        raise NotPermitted("only the portfolio's learner or its assessor may do this")

    # ---- what evidence may support ---------------------------------------------------

    def check_criteria(self, ids: Iterable[str], field: str = "criteria") -> None:
        known = self.spec.all_ids()
        unknown = sorted(set(ids) - known)
        if unknown:
            raise UnknownCriterion(
                f"{', '.join(unknown)} not in unit {self.spec.code}", field=field
            )

    def check_environment(
        self, environment: e.Environment, criteria: Iterable[str], field: str = "criteria"
    ) -> None:
        """Simulation never supports performance; RWE only where the unit allows it."""
        performance = [
            cid
            for cid in criteria
            if (crit := self.spec.criterion(cid)) and crit.kind is CriterionKind.PERFORMANCE
        ]
        if not performance:
            return
        rule = self.spec.environment
        if environment is e.Environment.SIMULATION and not rule.simulation_allowed_for_performance:
            raise SimulationNotAllowed(
                f"simulated evidence cannot support performance criteria {performance}",
                field=field,
            )
        rwe = e.Environment.REALISTIC_WORKING_ENVIRONMENT
        if environment is rwe and not rule.realistic_working_environment_allowed:
            raise EnvironmentNotAllowed(
                f"unit {self.spec.code} does not accept evidence from a realistic working "
                "environment for performance criteria",
                field=field,
            )

    def check_method(self, method: Method) -> None:
        if method not in self.spec.methods:
            raise MethodNotAllowed(f"unit {self.spec.code} does not allow {method}", field="method")

    def new_evidence_id(self, evidence_id: UUID) -> None:
        if evidence_id in self.portfolio.evidence:
            raise AlreadyExists(f"evidence {evidence_id} already exists", field="evidence_id")

    def usable_evidence(self, evidence_id: UUID, field: str = "evidence_id") -> EvidenceItem:
        item = self.portfolio.evidence.get(evidence_id)
        if item is None:
            raise NotFound(f"no evidence {evidence_id} in this portfolio", field=field)
        if item.withdrawn:
            raise WithdrawnEvidence(f"evidence {evidence_id} was withdrawn", field=field)
        return item

    def decision(self, decision_id: UUID, field: str = "decision_id") -> Decision:
        decision = self.portfolio.decisions.get(decision_id)
        if decision is None:
            raise NotFound(f"no decision {decision_id} in this portfolio", field=field)
        return decision


def enrol(centre: CentreState, spec: UnitSpec, cmd: c.Enrol, stamp: c.Stamp) -> e.LearnerEnrolled:
    actor = stamp.actor
    if (
        actor.role is not e.Role.ADMIN
        and centre.staff_with_role(actor.id, e.Role.CENTRE_ADMIN) is None
    ):
        raise NotPermitted("only the centre's administrators enrol learners")
    if cmd.learner_id not in centre.learners:
        raise NotFound(f"no learner {cmd.learner_id} at this centre", field="learner_id")
    if cmd.learner_id in centre.erased:
        raise LearnerErased(f"learner {cmd.learner_id} was erased", field="learner_id")
    if centre.staff_with_role(cmd.assessor_id, e.Role.ASSESSOR) is None:
        raise NotCentreStaff(f"{cmd.assessor_id} is not an assessor here", field="assessor_id")
    if centre.staff_with_role(cmd.iqa_id, e.Role.IQA) is None:
        raise NotCentreStaff(f"{cmd.iqa_id} is not an IQA here", field="iqa_id")
    return e.LearnerEnrolled(
        **cmd.event_fields(stamp), spec_version=spec.version, spec_hash=spec.content_hash
    )


def submit_evidence(ctx: Context, cmd: c.SubmitEvidence, stamp: c.Stamp) -> e.EvidenceSubmitted:
    ctx.require_learner_or_assessor(stamp.actor)
    ctx.new_evidence_id(cmd.evidence_id)
    if cmd.method not in EVIDENCE_METHODS:
        raise MethodNotAllowed(
            f"{cmd.method} evidence is recorded by the assessor with its own command",
            field="method",
        )
    ctx.check_method(cmd.method)
    ctx.check_criteria(cmd.requirement_tags, field="requirement_tags")
    if stamp.actor.role is e.Role.LEARNER and not cmd.authenticity_declared:
        raise AuthenticityNotDeclared(
            "the learner must declare the evidence is their own work",
            field="authenticity_declared",
        )
    return e.EvidenceSubmitted(**cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id)


def map_evidence(ctx: Context, cmd: c.MapEvidence, stamp: c.Stamp) -> e.EvidenceMapped:
    ctx.require_learner_or_assessor(stamp.actor)
    item = ctx.usable_evidence(cmd.evidence_id)
    ctx.check_criteria(cmd.criteria)
    ctx.check_environment(item.environment, cmd.criteria)
    return e.EvidenceMapped(**cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id)


def record_observation(
    ctx: Context, cmd: c.RecordObservation, stamp: c.Stamp
) -> e.ObservationRecorded:
    ctx.require_assessor(stamp.actor)
    ctx.new_evidence_id(cmd.evidence_id)
    ctx.check_method(Method.OBSERVATION)
    ctx.check_criteria(cmd.criteria)
    ctx.check_criteria(cmd.requirement_tags, field="requirement_tags")
    ctx.check_environment(cmd.environment, cmd.criteria)
    return e.ObservationRecorded(**cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id)


def record_witness_testimony(
    ctx: Context, cmd: c.RecordWitnessTestimony, stamp: c.Stamp
) -> e.WitnessTestimonyRecorded:
    ctx.require_learner_or_assessor(stamp.actor)
    ctx.new_evidence_id(cmd.evidence_id)
    if cmd.witness_id not in ctx.centre.witnesses:
        raise WitnessNotListed(
            f"{cmd.witness_id} is not on the centre's witness status list", field="witness_id"
        )
    ctx.check_method(Method.WITNESS_TESTIMONY)
    ctx.check_criteria(cmd.criteria)
    ctx.check_environment(cmd.environment, cmd.criteria)
    return e.WitnessTestimonyRecorded(
        **cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id
    )


def record_questioning(
    ctx: Context, cmd: c.RecordQuestioning, stamp: c.Stamp
) -> e.QuestioningRecorded:
    ctx.require_assessor(stamp.actor)
    ctx.new_evidence_id(cmd.evidence_id)
    if cmd.method not in QUESTIONING_METHODS:
        raise MethodNotAllowed("questioning is Q or PD", field="method")
    ctx.check_method(cmd.method)
    ctx.check_criteria(cmd.criteria)
    return e.QuestioningRecorded(**cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id)


def record_decision(ctx: Context, cmd: c.RecordDecision, stamp: c.Stamp) -> e.DecisionRecorded:
    ctx.require_assessor(stamp.actor)
    if cmd.decision_id in ctx.portfolio.decisions:
        raise AlreadyExists(f"decision {cmd.decision_id} already exists", field="decision_id")
    ctx.check_criteria(cmd.criteria)
    fields = cmd.event_fields(stamp)
    for evidence_id in cmd.evidence_ids:
        item = ctx.usable_evidence(evidence_id, field="evidence_ids")
        if cmd.outcome is e.Outcome.MET:
            ctx.check_environment(item.environment, cmd.criteria, field="evidence_ids")
    assessor = ctx.centre.staff_with_role(stamp.actor.id, e.Role.ASSESSOR)
    qualification = assessor.qualification_on(fields["effective_on"]) if assessor else None
    if qualification is None:
        raise NotCentreStaff("the assessor is not registered at this centre on that date")
    return e.DecisionRecorded(
        **fields,
        portfolio_id=ctx.portfolio.portfolio_id,
        assessor_qualification=qualification,
    )


def countersign(ctx: Context, cmd: c.Countersign, stamp: c.Stamp) -> e.DecisionCountersigned:
    decision = ctx.decision(cmd.decision_id)
    if not decision.needs_countersignature:
        raise CountersignatureNotRequired("the decision was made by a qualified assessor")
    if decision.countersigned_by is not None:
        raise AlreadyCorrected("the decision is already countersigned", field="decision_id")
    if decision.revoked:
        raise AlreadyCorrected("a revoked decision cannot be countersigned", field="decision_id")
    if stamp.actor.id == decision.author_id:
        raise OwnDecision("nobody countersigns their own decision")
    fields = cmd.event_fields(stamp)
    signer = ctx.centre.staff_with_role(stamp.actor.id, e.Role.ASSESSOR)
    if (
        stamp.actor.role is not e.Role.ASSESSOR
        or signer is None
        or signer.qualification_on(fields["effective_on"]) is not e.Qualification.QUALIFIED
    ):
        raise CountersignerNotQualified(
            "a countersignature must come from a qualified assessor of this centre"
        )
    return e.DecisionCountersigned(**fields, portfolio_id=ctx.portfolio.portfolio_id)


def record_iqa_sample(ctx: Context, cmd: c.RecordIqaSample, stamp: c.Stamp) -> e.IqaSampleRecorded:
    actor = stamp.actor
    if actor.role is not e.Role.IQA or ctx.centre.staff_with_role(actor.id, e.Role.IQA) is None:
        raise NotPermitted("only an IQA of this centre records an IQA sample")
    _check_sample(ctx, cmd.sample_id, cmd.decision_ids, actor)
    return e.IqaSampleRecorded(**cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id)


def record_ev_sample(ctx: Context, cmd: c.RecordEvSample, stamp: c.Stamp) -> e.EvSampleRecorded:
    actor = stamp.actor
    if actor.role is not e.Role.EV or actor.id not in ctx.centre.evs:
        raise EvNotAllocated("only an EV allocated to this centre samples its portfolios")
    _check_sample(ctx, cmd.sample_id, cmd.decision_ids, actor)
    return e.EvSampleRecorded(**cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id)


def _check_sample(
    ctx: Context, sample_id: UUID, decision_ids: tuple[UUID, ...], actor: c.Actor
) -> None:
    if sample_id in ctx.portfolio.sample_ids:
        raise AlreadyExists(f"sample {sample_id} already exists", field="sample_id")
    for decision_id in decision_ids:
        if actor.id in ctx.decision(decision_id, field="decision_ids").signers():
            raise OwnDecision("nobody samples a decision they made or countersigned")


def withdraw_evidence(ctx: Context, cmd: c.WithdrawEvidence, stamp: c.Stamp) -> e.EvidenceWithdrawn:
    ctx.require_learner_or_assessor(stamp.actor)
    item = ctx.portfolio.evidence.get(cmd.evidence_id)
    if item is None:
        raise NotFound(f"no evidence {cmd.evidence_id} in this portfolio", field="evidence_id")
    if item.withdrawn:
        raise AlreadyCorrected("the evidence is already withdrawn", field="evidence_id")
    return e.EvidenceWithdrawn(
        **cmd.event_fields(stamp),
        portfolio_id=ctx.portfolio.portfolio_id,
        corrects_event_id=item.event_id,
    )


def revoke_decision(ctx: Context, cmd: c.RevokeDecision, stamp: c.Stamp) -> e.DecisionRevoked:
    decision = ctx.decision(cmd.decision_id)
    is_iqa = stamp.actor.role is e.Role.IQA and stamp.actor.id == ctx.portfolio.iqa_id
    if not is_iqa:
        ctx.require_assessor(stamp.actor)
    if decision.revoked:
        raise AlreadyCorrected("the decision is already revoked", field="decision_id")
    return e.DecisionRevoked(
        **cmd.event_fields(stamp),
        portfolio_id=ctx.portfolio.portfolio_id,
        corrects_event_id=decision.event_id,
    )
