"""The rules of assessment: each function accepts a command as an event or refuses it.

They read the portfolio, its centre (roles and qualification status at the time of
signing) and the unit spec the portfolio was enrolled on; they never write anything.
What evidence can show is `domain.support`'s to say; who may touch what is said here:

- evidence belongs to whoever recorded it: a learner maps and withdraws only their own;
  observations, questioning and professional discussion are the assessor's, and only the
  assessor extends a witness testimony beyond what the witness attested;
- a "met" decision rests on cited, live evidence that can show each criterion it names,
  and is dated no earlier than that evidence; a countersignature or a sample is dated no
  earlier than its decision (samples: `domain.quality`);
- the learner is never their own assessor, IQA, countersigner or witness.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import NamedTuple
from uuid import UUID

from domain import commands as c
from domain import events as e
from domain.centre import CentreState
from domain.errors import (
    AlreadyCorrected,
    AlreadyExists,
    AuthenticityNotDeclared,
    ConflictOfInterest,
    CountersignatureBeforeDecision,
    CountersignatureNotRequired,
    CountersignerNotQualified,
    DecisionBeforeEvidence,
    DecisionUnsupported,
    DomainError,
    EnvironmentNotAllowed,
    KnowledgeNotInferable,
    LearnerErased,
    MethodCannotShow,
    MethodNotAllowed,
    NotCentreStaff,
    NotFound,
    NotOwnEvidence,
    NotPermitted,
    NotPortfolioAssessor,
    ObservationRequired,
    OtherNeedsReason,
    OwnDecision,
    SimulationNotAllowed,
    SpecMismatch,
    UnknownCriterion,
    WithdrawnEvidence,
    WitnessNotListed,
)
from domain.portfolio import (
    Decision,
    EvidenceEvent,
    EvidenceItem,
    PortfolioState,
    Sample,
    evidence_item,
)
from domain.spec import Method, UnitSpec
from domain.support import INFERENCE, Support, label

#: What a learner submits themselves; observation, questioning and professional discussion
#: are the assessor's own acts, recorded with their own commands.
EVIDENCE_METHODS = (Method.WORK_PRODUCT, Method.OTHER)
QUESTIONING_METHODS = (Method.QUESTIONING, Method.PROFESSIONAL_DISCUSSION)
#: The assessor's kinds of evidence: a learner never maps or withdraws them.
ASSESSOR_METHODS = (Method.OBSERVATION, Method.QUESTIONING, Method.PROFESSIONAL_DISCUSSION)


class Judgement(NamedTuple):
    """What the read side says of a portfolio: coverage gaps and sufficiency failures."""

    coverage_gaps: tuple[str, ...]
    sufficiency_failures: tuple[str, ...]


Judge = Callable[[PortfolioState, CentreState, UnitSpec], Judgement]
"""Judges a portfolio as coverage and sufficiency do (the service passes the projections')."""


def _unjudged(portfolio: PortfolioState, centre: CentreState, spec: UnitSpec) -> Judgement:
    msg = "this rule needs a judge of coverage and sufficiency"
    raise RuntimeError(msg)


class Context:
    """What a portfolio rule reads: the portfolio, its centre, its unit spec and a judge."""

    def __init__(
        self,
        portfolio: PortfolioState,
        centre: CentreState,
        spec: UnitSpec,
        judge: Judge = _unjudged,
    ) -> None:
        if spec.content_hash != portfolio.spec_hash and not spec.corrects_hash(portfolio.spec_hash):
            raise SpecMismatch(
                f"portfolio was enrolled on {spec.code} v{portfolio.spec_version} with hash "
                f"{portfolio.spec_hash}, not {spec.content_hash}"
            )
        if portfolio.learner_id in centre.erased:
            raise LearnerErased("the learner's personal data was erased: nothing more is recorded")
        self.portfolio = portfolio
        self.centre = centre
        self.spec = spec
        self.judge = judge
        observed = centre.observed_criteria.get(portfolio.unit_code, ())
        self.support = Support(spec, observed, centre.rwe_approvals)

    def judgement(self) -> Judgement:
        return self.judge(self.portfolio, self.centre, self.spec)

    # ---- who may act ---------------------------------------------------------------

    def require_assessor(self, actor: c.Actor) -> None:
        if actor.role is not e.Role.ASSESSOR or actor.id != self.portfolio.assessor_id:
            raise NotPortfolioAssessor("only the portfolio's assessor may do this")

    def is_learner(self, actor: c.Actor) -> bool:
        return actor.role is e.Role.LEARNER and actor.id == self.portfolio.learner_id

    def require_learner_or_assessor(self, actor: c.Actor) -> None:
        if self.is_learner(actor):
            return
        if actor.role is e.Role.ASSESSOR and actor.id == self.portfolio.assessor_id:
            return
        raise NotPermitted("only the portfolio's learner or its assessor may do this")

    def not_the_learner(self, person_id: UUID, as_what: str, field: str | None = None) -> None:
        if person_id == self.portfolio.learner_id:
            raise ConflictOfInterest(f"the learner cannot be {as_what} on their own portfolio",
                                     field=field)  # fmt: skip

    # ---- what evidence may support ---------------------------------------------------

    def check_criteria(self, ids: Iterable[str], field: str = "criteria") -> None:
        known = self.spec.all_ids()
        unknown = sorted(set(ids) - known)
        if unknown:
            raise UnknownCriterion(
                f"{', '.join(unknown)} not in unit {self.spec.code}", field=field
            )

    def check_tags(self, tags: Iterable[str]) -> None:
        """A tag proposes an evidence requirement; criteria are mapped, not tagged."""
        requirements = {r.id for r in self.spec.requirements}
        others = sorted(set(tags) - requirements)
        if others:
            raise UnknownCriterion(
                f"{', '.join(others)} not an evidence requirement of unit {self.spec.code}"
                " (criteria are mapped, not tagged)",
                field="requirement_tags",
            )

    def check_can_show(self, item: EvidenceItem, ids: Iterable[str], field: str) -> None:
        """Refuse mapping (or tagging) `item` to an id it can never count for."""
        support = self.support
        for cid in ids:
            if (method := support.method_problem(item, cid)) is not None:
                inference = cid in support.knowledge and item.method in INFERENCE
                shown: type[DomainError] = KnowledgeNotInferable if inference else MethodCannotShow
                raise shown(method, field=field)
            if (where := support.problem(item, cid)) is not None:
                simulated = item.environment is e.Environment.SIMULATION
                placed: type[DomainError] = (
                    SimulationNotAllowed if simulated else EnvironmentNotAllowed
                )
                raise placed(f"{label(cid)}: {where}", field=field)

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

    def sample(self, sample_id: UUID) -> Sample:
        sample = self.portfolio.sample(sample_id)
        if sample is None:
            raise NotFound(
                f"no sample {sample_id} of this portfolio's decisions", field="sample_id"
            )
        return sample


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
    for person, field in ((cmd.assessor_id, "assessor_id"), (cmd.iqa_id, "iqa_id")):
        if person == cmd.learner_id:
            what = field.removesuffix("_id").replace("iqa", "IQA")
            raise ConflictOfInterest(
                f"the learner cannot be the {what} of their own portfolio", field=field
            )
    return e.LearnerEnrolled(
        **cmd.event_fields(stamp), spec_version=spec.version, spec_hash=spec.content_hash
    )


# ---- evidence ----------------------------------------------------------------------------


def submit_evidence(ctx: Context, cmd: c.SubmitEvidence, stamp: c.Stamp) -> e.EvidenceSubmitted:
    ctx.require_learner_or_assessor(stamp.actor)
    ctx.new_evidence_id(cmd.evidence_id)
    if cmd.method not in EVIDENCE_METHODS:
        raise MethodNotAllowed(
            f"{cmd.method} is the assessor's own act, recorded with its own command "
            "(observations; questioning and professional discussion)",
            field="method",
        )
    ctx.check_method(cmd.method)
    if cmd.written_answers and cmd.method is not Method.WORK_PRODUCT:
        raise MethodNotAllowed("only a work product is written answers", field="written_answers")
    if cmd.method is Method.OTHER and not cmd.other_reason.strip():
        raise OtherNeedsReason(
            "say what this 'other' evidence is and why it counts", field="other_reason"
        )
    if ctx.is_learner(stamp.actor) and not cmd.authenticity_declared:
        raise AuthenticityNotDeclared(
            "the learner must declare the evidence is their own work",
            field="authenticity_declared",
        )
    event = e.EvidenceSubmitted(**cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id)
    ctx.check_tags(cmd.requirement_tags)
    _check_new_item(ctx, event, cmd.method, event.requirement_tags, "requirement_tags")
    return event


def _check_new_item(
    ctx: Context, event: EvidenceEvent, method: Method, ids: Iterable[str], field: str
) -> EvidenceItem:
    ctx.check_criteria(ids, field=field)
    item = evidence_item(event, method)
    ctx.check_can_show(item, ids, field=field)
    return item


def map_evidence(ctx: Context, cmd: c.MapEvidence, stamp: c.Stamp) -> e.EvidenceMapped:
    ctx.require_learner_or_assessor(stamp.actor)
    item = ctx.usable_evidence(cmd.evidence_id)
    if ctx.is_learner(stamp.actor):
        _learner_may_touch(item, stamp.actor, "map")
    ctx.check_criteria(cmd.criteria)
    ctx.check_can_show(item, cmd.criteria, field="criteria")
    return e.EvidenceMapped(**cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id)


def _learner_may_touch(item: EvidenceItem, learner: c.Actor, verb: str) -> None:
    """A learner maps and withdraws their own evidence, and never the assessor's acts."""
    if item.method in ASSESSOR_METHODS:
        raise NotPortfolioAssessor(
            f"only the portfolio's assessor may {verb} the assessor's {item.method.label}",
            field="evidence_id",
        )
    if item.method is Method.WITNESS_TESTIMONY and verb == "map":
        raise NotPortfolioAssessor(
            "only the portfolio's assessor may extend a witness testimony beyond the "
            "criteria the witness attested",
            field="evidence_id",
        )
    if item.author_id != learner.id:
        raise NotOwnEvidence(
            f"a learner may {verb} only evidence they recorded themselves", field="evidence_id"
        )


def record_observation(
    ctx: Context, cmd: c.RecordObservation, stamp: c.Stamp
) -> e.ObservationRecorded:
    ctx.require_assessor(stamp.actor)
    ctx.new_evidence_id(cmd.evidence_id)
    ctx.check_method(Method.OBSERVATION)
    event = e.ObservationRecorded(
        **cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id
    )
    _check_new_item(ctx, event, Method.OBSERVATION, cmd.criteria, "criteria")
    ctx.check_tags(cmd.requirement_tags)
    _check_new_item(ctx, event, Method.OBSERVATION, cmd.requirement_tags, "requirement_tags")
    return event


def record_witness_testimony(
    ctx: Context, cmd: c.RecordWitnessTestimony, stamp: c.Stamp
) -> e.WitnessTestimonyRecorded:
    ctx.require_learner_or_assessor(stamp.actor)
    ctx.new_evidence_id(cmd.evidence_id)
    if cmd.witness_id not in ctx.centre.witnesses:
        raise WitnessNotListed(
            f"{cmd.witness_id} is not on the centre's witness status list", field="witness_id"
        )
    ctx.not_the_learner(cmd.witness_id, "the witness", field="witness_id")
    ctx.check_method(Method.WITNESS_TESTIMONY)
    event = e.WitnessTestimonyRecorded(
        **cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id
    )
    _check_new_item(ctx, event, Method.WITNESS_TESTIMONY, cmd.criteria, "criteria")
    return event


def record_questioning(
    ctx: Context, cmd: c.RecordQuestioning, stamp: c.Stamp
) -> e.QuestioningRecorded:
    ctx.require_assessor(stamp.actor)
    ctx.new_evidence_id(cmd.evidence_id)
    if cmd.method not in QUESTIONING_METHODS:
        raise MethodNotAllowed("questioning is Q or PD", field="method")
    ctx.check_method(cmd.method)
    event = e.QuestioningRecorded(
        **cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id
    )
    _check_new_item(ctx, event, cmd.method, cmd.criteria, "criteria")
    return event


def withdraw_evidence(ctx: Context, cmd: c.WithdrawEvidence, stamp: c.Stamp) -> e.EvidenceWithdrawn:
    """The learner withdraws their own evidence; the assessor any, with a reason."""
    ctx.require_learner_or_assessor(stamp.actor)
    item = ctx.portfolio.evidence.get(cmd.evidence_id)
    if item is None:
        raise NotFound(f"no evidence {cmd.evidence_id} in this portfolio", field="evidence_id")
    if ctx.is_learner(stamp.actor):
        _learner_may_touch(item, stamp.actor, "withdraw")
    if item.withdrawn:
        raise AlreadyCorrected("the evidence is already withdrawn", field="evidence_id")
    return e.EvidenceWithdrawn(
        **cmd.event_fields(stamp),
        portfolio_id=ctx.portfolio.portfolio_id,
        corrects_event_id=item.event_id,
    )


# ---- decisions ---------------------------------------------------------------------------


def record_decision(ctx: Context, cmd: c.RecordDecision, stamp: c.Stamp) -> e.DecisionRecorded:
    ctx.require_assessor(stamp.actor)
    if cmd.decision_id in ctx.portfolio.decisions:
        raise AlreadyExists(f"decision {cmd.decision_id} already exists", field="decision_id")
    ctx.check_criteria(cmd.criteria)
    fields = cmd.event_fields(stamp)
    cited = [ctx.usable_evidence(i, field="evidence_ids") for i in cmd.evidence_ids]
    _not_before(fields["effective_on"], cited)
    if cmd.outcome is e.Outcome.MET:
        _supported(ctx.support, cmd.criteria, cited)
    assessor = ctx.centre.staff_with_role(stamp.actor.id, e.Role.ASSESSOR)
    qualification = assessor.qualification_on(fields["effective_on"]) if assessor else None
    if qualification is None:
        raise NotCentreStaff("the assessor is not registered at this centre on that date")
    return e.DecisionRecorded(
        **fields, portfolio_id=ctx.portfolio.portfolio_id, assessor_qualification=qualification
    )


def _not_before(day: date, cited: list[EvidenceItem]) -> None:
    later = [i for i in cited if i.effective_on > day]
    if later:
        first = min(later, key=lambda i: i.effective_on)
        raise DecisionBeforeEvidence(
            f"the decision is dated {day}, before evidence {first.evidence_id} of "
            f"{first.effective_on} that it cites",
            field="effective_on",
        )


def _supported(support: Support, criteria: Iterable[str], cited: list[EvidenceItem]) -> None:
    """Every criterion a "met" decision names rests on cited evidence that can show it."""
    unsupported, unobserved = [], []
    for cid in criteria:
        showing = [i for i in cited if support.shows(i, cid)]
        if not showing:
            unsupported.append(f"{label(cid)}: {_why_unsupported(support, cid, cited)}")
        elif cid in support.must and not any(i.assessor_observed for i in showing):
            unobserved.append(label(cid))
    if unsupported:
        raise DecisionUnsupported(
            "a 'met' decision must cite live evidence mapped to each criterion it decides "
            "and able to show it: " + "; ".join(unsupported),
            field="evidence_ids",
            reasons=tuple(unsupported),
        )
    if unobserved:
        raise ObservationRequired(
            f"{', '.join(unobserved)} must be observed by the assessor: cite an observation "
            "of each",
            field="evidence_ids",
        )


def _why_unsupported(support: Support, cid: str, cited: list[EvidenceItem]) -> str:
    mapped = [i for i in cited if i.evidences(cid)]
    if not mapped:
        return "no cited evidence is mapped to it"
    problems = sorted({p for i in mapped if (p := support.problem(i, cid))})
    return "; ".join(problems)


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
    ctx.not_the_learner(stamp.actor.id, "the countersigner")
    fields = cmd.event_fields(stamp)
    if fields["effective_on"] < decision.effective_on:
        raise CountersignatureBeforeDecision(
            f"the countersignature is dated {fields['effective_on']}, before the decision "
            f"of {decision.effective_on}",
            field="effective_on",
        )
    actor, day = stamp.actor, fields["effective_on"]
    if not ctx.centre.qualified_as(actor.id, actor.role, e.Role.ASSESSOR, day):
        raise CountersignerNotQualified(
            "a countersignature must come from a qualified assessor of this centre"
        )
    return e.DecisionCountersigned(**fields, portfolio_id=ctx.portfolio.portfolio_id)


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
