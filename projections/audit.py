"""The external verifier's audit view: what happened, who did it, when, on what evidence.

Pure functions over domain state and events, so the same view is served live or replayed
`as_known_at` the date of an earlier sample (fold what `projections.base.known_at` lets
through, then call these). Results are msgspec Structs, served as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

import msgspec

from domain import events as e
from domain.centre import CentreState
from domain.portfolio import Decision, PortfolioState, Sample
from domain.spec import Method
from projections import phrasing as w


class ChainState(StrEnum):
    """How far a decision has got along its signature chain; revoked trumps the rest."""

    PENDING_COUNTERSIGNATURE = "pending_countersignature"
    STANDS = "stands"
    IQA_SAMPLED = "iqa_sampled"
    EV_SAMPLED = "ev_sampled"
    REFERRED = "referred"  # a counting sample referred it back; the assessor has not acted yet
    REVOKED = "revoked"


# ---- the trail -----------------------------------------------------------------------


class TrailEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the trail; `subject_ids` (decisions, evidence) link it to the chains."""

    position: int
    event_id: UUID
    event_type: str
    centre_id: UUID | None
    portfolio_id: UUID | None
    actor_id: UUID
    actor_role: e.Role
    actor_name: str
    recorded_at: datetime
    effective_on: date
    summary: str
    subject_ids: tuple[UUID, ...] = ()


def names(centre: CentreState) -> dict[UUID, str]:
    """People's names at a centre: staff, learners, listed witnesses and allocated EVs."""
    staff = {member.staff_id: member.name for member in centre.staff.values()}
    return {**staff, **centre.learners, **centre.witnesses, **centre.evs}


def name_of(names: Mapping[UUID, str], person_id: UUID, role: e.Role | None = None) -> str:
    """A name, or a label that still says who (e.g. the awarding body's administrator)."""
    if person_id in names:
        return names[person_id]
    return f"{w.role_name(role) if role else 'person'} {str(person_id)[:8]} (not named here)"


def trail_entry(
    position: int,
    event: e.Event,
    actor_name: str,
    portfolio_centre: UUID | None,
    *,
    names: Mapping[UUID, str] | None = None,
) -> TrailEntry:
    """One event as a trail row; `names` names whoever the event is about, if given."""
    own_centre = event.centre_id if isinstance(event, e.CentreEvent | e.LearnerEnrolled) else None
    return TrailEntry(
        position=position,
        event_id=event.event_id,
        event_type=event.TOPIC,
        centre_id=own_centre or portfolio_centre,
        portfolio_id=event.portfolio_id if isinstance(event, e.PortfolioEvent) else None,
        actor_id=event.actor_id,
        actor_role=event.actor_role,
        actor_name=actor_name,
        recorded_at=event.recorded_at,
        effective_on=event.effective_on,
        summary=summary(event, names or {}),
        subject_ids=_subjects(event),
    )


def trail(
    events: Iterable[tuple[int, e.Event]],
    names: Mapping[UUID, str],
    portfolio_centres: Mapping[UUID, UUID] | None = None,
) -> list[TrailEntry]:
    """Every event once (delivery is at-least-once), in position order.

    A portfolio's centre is learned from its enrolment where `portfolio_centres` lacks it.
    """
    centres = dict(portfolio_centres or {})
    seen: set[UUID] = set()
    entries: list[TrailEntry] = []
    for position, event in sorted(events, key=lambda pair: pair[0]):
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        if isinstance(event, e.LearnerEnrolled):
            centres[event.portfolio_id] = event.centre_id
        portfolio = event.portfolio_id if isinstance(event, e.PortfolioEvent) else None
        actor = name_of(names, event.actor_id, event.actor_role)
        centre = centres.get(portfolio) if portfolio else None
        entries.append(trail_entry(position, event, actor, centre, names=names))
    return entries


def summary(event: e.Event, names: Mapping[UUID, str]) -> str:
    """What happened, in one line of plain English."""
    if isinstance(event, e.CentreEvent):
        return _centre_summary(event, names)
    if isinstance(event, e.PortfolioEvent):
        return _portfolio_summary(event, names)
    return event.TOPIC


def _centre_summary(event: e.CentreEvent, names: Mapping[UUID, str]) -> str:
    match event:
        case e.CentreRegistered():
            return f"Centre registered: {event.name}"
        case e.StaffRegistered():
            return (
                f"Staff registered: {event.name} as {event.qualification} {w.role_name(event.role)}"
            )
        case e.StaffQualificationChanged():
            who = name_of(names, event.staff_id, event.role)
            role = w.role_name(event.role)
            return f"Qualification changed: {who} is now a {event.qualification} {role}"
        case e.LearnerRegistered():
            return f"Learner registered: {event.name}"
        case e.WitnessAdded():
            return f"Witness added to the status list: {event.name}{w.paren(event.position)}"
        case e.EvAllocated():
            return f"External verifier allocated: {event.name}"
        case e.ObservedCriteriaSet():
            return f"Must-observe criteria for {event.unit_code} set: {', '.join(event.criteria)}"
        case e.SufficiencyPolicySet():
            return f"Sufficiency policy v{event.policy_version} set: {_policy_words(event)}"
        case e.SamplingPlanSet():
            return f"Sampling plan v{event.plan_version} set: {_plan_words(event)}"
        case e.RealisticEnvironmentApproved():
            units = ", ".join(event.unit_codes) or "every unit"
            return (
                f"Realistic working environment approved: {w.line(event.location)} for {units}"
                f"{w.ref(event.approval_ref)}"
            )
    return _records_summary(event, names)


def _records_summary(event: e.CentreEvent, names: Mapping[UUID, str]) -> str:
    """Retention, legal holds and erasure."""
    match event:
        case e.RetentionPolicySet():
            return f"Retention policy v{event.policy_version} set: {_retention_words(event)}"
        case e.LegalHoldPlaced():
            who = name_of(names, event.learner_id, e.Role.LEARNER)
            return f"Legal hold ({event.reason}) placed on the records of {who}"
        case e.LegalHoldLifted():
            who = name_of(names, event.learner_id, e.Role.LEARNER)
            return f"Legal hold lifted from the records of {who}"
        case e.SubjectErased():
            who = name_of(names, event.subject_id, event.subject_role)
            role = w.role_name(event.subject_role)
            return f"Personal data of {role} {who} erased (key destroyed): {w.line(event.reason)}"
    return event.TOPIC


def _portfolio_summary(event: e.PortfolioEvent, names: Mapping[UUID, str]) -> str:
    match event:
        case e.LearnerEnrolled():
            return _enrolment_words(event, names)
        case e.EvidenceSubmitted():
            return (
                f"Evidence submitted ({event.method.label}): {w.line(event.title)}"
                f"{w.where(event.location, event.customer_ref, event.environment)}"
            )
        case e.EvidenceMapped():
            return f"Evidence mapped to {', '.join(event.criteria)}"
        case e.ObservationRecorded():
            where = w.where(event.location, event.customer_ref, event.environment)
            return f"Observation recorded for {', '.join(event.criteria)}{where}"
        case e.WitnessTestimonyRecorded():
            where = w.where("", event.customer_ref, event.environment)
            witness = name_of(names, event.witness_id)
            return f"Witness testimony from {witness} for {', '.join(event.criteria)}{where}"
        case e.QuestioningRecorded():
            method = event.method.label.capitalize()
            return f"{method} recorded for {', '.join(event.criteria)}"
        case e.DecisionRecorded():
            return _decision_words(event)
        case e.DecisionCountersigned():
            return "Decision countersigned by a qualified assessor"
        case e.IqaSampleRecorded():
            count = w.plural(len(event.decision_ids), "decision")
            return f"IQA {event.stage} sample of {count}: {event.outcome}{w.where(event.location)}"
        case e.EvSampleRecorded():
            count = w.plural(len(event.decision_ids), "decision")
            actions = w.plural(len(event.actions), "action", lead="; ")
            return f"EV sample of {count}: {event.outcome}{actions}"
        case e.EvidenceWithdrawn():
            by = (
                ""
                if event.actor_role is e.Role.LEARNER
                else f" by the {w.role_name(event.actor_role)}"
            )
            return f"Evidence withdrawn{by}: {w.line(event.reason)}"
        case e.DecisionRevoked():
            return f"Decision revoked: {w.line(event.reason)}"
    return _quality_summary(event)


def _quality_summary(event: e.PortfolioEvent) -> str:
    match event:
        case e.IqaSampleCountersigned():
            return "A trainee IQA's sample countersigned by a qualified IQA"
        case e.SampleResponded():
            return f"The assessor responded to a sample: {w.line(event.response)}"
        case e.SampleResponseAccepted():
            return (
                f"The {w.role_name(event.actor_role)} accepted the response: the referral and "
                "actions of the sample are closed"
            )
    return _closing_summary(event)


def _closing_summary(event: e.PortfolioEvent) -> str:
    match event:
        case e.UnitCompletionSignedOff():
            return f"Unit completion signed off by the assessor: {w.line(event.feedback)}"
        case e.UnitCertified():
            policy = (
                f"sufficiency policy v{event.sufficiency_policy_version}"
                if event.sufficiency_policy_version
                else "the built-in sufficiency default"
            )
            return f"Unit certified{w.ref(event.certificate_ref)}, judged by {policy}"
        case e.LearnerWithdrawn():
            return f"Learner withdrawn from the unit{w.paren(event.reason)}"
        case e.AppealOpened():
            return f"Appeal opened; the portfolio is open again: {w.line(event.reason)}"
    return event.TOPIC


def _enrolment_words(event: e.LearnerEnrolled, names: Mapping[UUID, str]) -> str:
    return (
        f"{name_of(names, event.learner_id, e.Role.LEARNER)} enrolled on {event.unit_code} "
        f"v{event.spec_version}; assessor {name_of(names, event.assessor_id, e.Role.ASSESSOR)}, "
        f"IQA {name_of(names, event.iqa_id, e.Role.IQA)}"
    )


def _decision_words(event: e.DecisionRecorded) -> str:
    outcome = "met" if event.outcome is e.Outcome.MET else "not yet met"
    trainee = event.assessor_qualification is e.Qualification.TRAINEE
    return (
        f"Decision: {outcome} for {', '.join(event.criteria)} (relies on "
        f"{w.plural(len(event.evidence_ids), 'evidence item')}) by a "
        f"{event.assessor_qualification} assessor"
        + (" — awaits countersignature" if trainee else "")
    )


def _policy_words(policy: e.SufficiencyPolicySet) -> str:
    t = policy.default
    return (
        f"{t.min_occasions} occasions on {t.min_distinct_dates} dates with "
        f"{t.min_distinct_customers} customers over {t.min_span_days} days"
        f"{w.plural(len(policy.per_unit), 'unit override', lead=', ')}{w.ref(policy.decision_ref)}"
    )


def _retention_words(policy: e.RetentionPolicySet) -> str:
    files = "after EV sampling" if policy.evidence_after_ev_sample else "with the records"
    return (
        f"records kept {w.plural(policy.records_years, 'year')} after certification or "
        f"withdrawal; evidence files may go {files}{w.ref(policy.decision_ref)}"
    )


def _plan_words(plan: e.SamplingPlanSet) -> str:
    flags = {"method": plan.every_method, "unit": plan.every_unit, "location": plan.every_location}
    every = ", ".join(word for word, on in flags.items() if on)
    return (
        f"candidates {w.percent(plan.min_candidate_rate)}, "
        f"assessors {w.percent(plan.min_assessor_rate)}, "
        f"trainee assessors {w.percent(plan.trainee_assessor_rate)}"
        + (f"; every {every}" if every else "")
        + w.ref(plan.decision_ref)
    )


def _subjects(event: e.Event) -> tuple[UUID, ...]:
    if isinstance(event, e.IqaSampleRecorded | e.EvSampleRecorded):
        return event.decision_ids
    if isinstance(event, e.DecisionRecorded):
        return (event.decision_id, *event.evidence_ids)
    ids = (
        getattr(event, "decision_id", None),
        getattr(event, "evidence_id", None),
        getattr(event, "sample_id", None),
    )
    return tuple(i for i in ids if isinstance(i, UUID))


# ---- signature chains ----------------------------------------------------------------


class Signature(msgspec.Struct, frozen=True, kw_only=True):
    """One signer on a decision, with their qualification when they signed."""

    person_id: UUID
    name: str
    qualification: e.Qualification
    signed_at: datetime


class SampleView(msgspec.Struct, frozen=True, kw_only=True):
    sample_id: UUID
    event_id: UUID
    actor_id: UUID
    actor_name: str
    role: e.Role
    stage: e.SampleStage | None
    outcome: e.SampleOutcome
    recorded_at: datetime
    qualification: e.Qualification = e.Qualification.QUALIFIED
    counts: bool = True  # False: a trainee IQA's sample not yet countersigned
    countersigned_by: UUID | None = None
    actions: int = 0
    responded: bool = False
    accepted: bool = False


class DecisionChain(msgspec.Struct, frozen=True, kw_only=True):
    """A decision with every signature on it, in chain order, and where it stands."""

    decision_id: UUID
    portfolio_id: UUID
    event_id: UUID
    outcome: e.Outcome
    criteria: tuple[str, ...]
    evidence_ids: tuple[UUID, ...]
    decided_on: date
    assessor: Signature
    countersignature: Signature | None
    iqa_samples: tuple[SampleView, ...]
    ev_samples: tuple[SampleView, ...]
    state: ChainState
    #: Criteria it no longer stands for: every cited evidence item for them was withdrawn.
    lapsed: tuple[str, ...] = ()


class ChainContext(msgspec.Struct, frozen=True, kw_only=True):
    """What CAMERA sampling reads about a decision besides its signatures."""

    learner_id: UUID
    learner_name: str
    unit_code: str
    assessor_id: UUID
    assessor_name: str
    assessor_qualification: e.Qualification
    methods: tuple[Method, ...]
    locations: tuple[str, ...]


class DecisionChainWithContext(msgspec.Struct, frozen=True, kw_only=True):
    chain: DecisionChain
    context: ChainContext


def chain_state(decision: Decision) -> ChainState:
    """Revoked, else pending until countersigned, else referred while a referral is open,
    else the furthest sample reached (a trainee IQA's counts once countersigned)."""
    if decision.revoked:
        return ChainState.REVOKED
    if not decision.stands:
        return ChainState.PENDING_COUNTERSIGNATURE
    if decision.open_referrals():
        return ChainState.REFERRED
    if decision.ev_samples:
        return ChainState.EV_SAMPLED
    sampled = any(s.counts for s in decision.iqa_samples)
    return ChainState.IQA_SAMPLED if sampled else ChainState.STANDS


def lapsed(portfolio: PortfolioState, decision: Decision) -> tuple[str, ...]:
    """The criteria whose cited evidence was all withdrawn: the decision stands for them
    no longer (withdrawal never revives an earlier decision in its place)."""
    evidence = portfolio.evidence
    cited = [evidence[i] for i in decision.evidence_ids if i in evidence]
    return tuple(
        cid
        for cid in decision.criteria
        if (mapped := [i for i in cited if i.evidences(cid)]) and all(i.withdrawn for i in mapped)
    )


def decision_chains(portfolio: PortfolioState, names: Mapping[UUID, str]) -> list[DecisionChain]:
    """Every decision of the portfolio, once, in the order it was recorded."""
    return [_chain(portfolio, d, names) for d in portfolio.decisions.values()]


def chains_with_context(
    portfolio: PortfolioState, names: Mapping[UUID, str]
) -> list[DecisionChainWithContext]:
    """Decision chains plus what sampling needs: learner, unit, methods and locations used."""
    return [
        DecisionChainWithContext(
            chain=_chain(portfolio, decision, names),
            context=_context(portfolio, decision, names),
        )
        for decision in portfolio.decisions.values()
    ]


def _chain(
    portfolio: PortfolioState, decision: Decision, names: Mapping[UUID, str]
) -> DecisionChain:
    signer, signed_at = decision.countersigned_by, decision.countersigned_at
    return DecisionChain(
        decision_id=decision.decision_id,
        portfolio_id=portfolio.portfolio_id,
        event_id=decision.event_id,
        outcome=decision.outcome,
        criteria=decision.criteria,
        evidence_ids=decision.evidence_ids,
        decided_on=decision.effective_on,
        assessor=_signature(
            decision.author_id, decision.author_qualification, decision.recorded_at, names
        ),
        # the rules accept a countersignature only from a qualified assessor
        countersignature=_signature(signer, e.Qualification.QUALIFIED, signed_at, names)
        if signer and signed_at
        else None,
        iqa_samples=tuple(_sample(s, names) for s in decision.iqa_samples),
        ev_samples=tuple(_sample(s, names) for s in decision.ev_samples),
        state=chain_state(decision),
        lapsed=lapsed(portfolio, decision),
    )


def _signature(
    who: UUID, qualification: e.Qualification, at: datetime, names: Mapping[UUID, str]
) -> Signature:
    name = name_of(names, who, e.Role.ASSESSOR)
    return Signature(person_id=who, name=name, qualification=qualification, signed_at=at)


def _sample(sample: Sample, names: Mapping[UUID, str]) -> SampleView:
    return SampleView(
        sample_id=sample.sample_id,
        event_id=sample.event_id,
        actor_id=sample.actor_id,
        actor_name=name_of(names, sample.actor_id, sample.role),
        role=sample.role,
        stage=sample.stage,
        outcome=sample.outcome,
        recorded_at=sample.recorded_at,
        qualification=sample.qualification,
        counts=sample.counts,
        countersigned_by=sample.countersigned_by,
        actions=sample.actions,
        responded=sample.responded,
        accepted=sample.accepted,
    )


def _context(
    portfolio: PortfolioState, decision: Decision, names: Mapping[UUID, str]
) -> ChainContext:
    """Evidence withdrawn after the decision still shows which method and place were used."""
    items = [portfolio.evidence[i] for i in decision.evidence_ids if i in portfolio.evidence]
    return ChainContext(
        learner_id=portfolio.learner_id,
        learner_name=name_of(names, portfolio.learner_id, e.Role.LEARNER),
        unit_code=portfolio.unit_code,
        assessor_id=decision.author_id,
        assessor_name=name_of(names, decision.author_id, e.Role.ASSESSOR),
        assessor_qualification=decision.author_qualification,
        methods=tuple(sorted({item.method for item in items})),
        locations=tuple(sorted({p for item in items if (p := w.line(item.location))})),
    )


# ---- EV samples ----------------------------------------------------------------------


class EvSampleView(msgspec.Struct, frozen=True, kw_only=True):
    sample_id: UUID
    event_id: UUID
    portfolio_id: UUID
    ev_id: UUID
    ev_name: str
    decision_ids: tuple[UUID, ...]
    outcome: e.SampleOutcome
    actions: tuple[str, ...]
    feedback: str
    recorded_at: datetime
    effective_on: date


def ev_samples(events: Iterable[e.Event], names: Mapping[UUID, str]) -> list[EvSampleView]:
    """The EV samples among `events`, with outcomes, actions and feedback, in that order."""
    return [
        EvSampleView(
            sample_id=event.sample_id,
            event_id=event.event_id,
            portfolio_id=event.portfolio_id,
            ev_id=event.actor_id,
            ev_name=name_of(names, event.actor_id, e.Role.EV),
            decision_ids=event.decision_ids,
            outcome=event.outcome,
            actions=event.actions,
            feedback=event.feedback,
            recorded_at=event.recorded_at,
            effective_on=event.effective_on,
        )
        for event in events
        if isinstance(event, e.EvSampleRecorded)
    ]
