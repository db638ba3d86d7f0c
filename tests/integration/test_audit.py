"""The EV audit view, built from centres run through the real service (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bootstrap import build
from adapters.config import Config
from domain import commands as c
from domain.errors import DomainError
from domain.events import (
    AUDIT_EVENTS,
    EVENT_TYPES,
    DecisionRevoked,
    Environment,
    Event,
    HoldReason,
    Qualification,
    Role,
    SampleOutcome,
    SampleStage,
)
from domain.spec import Method
from projections.audit import (
    ChainState,
    DecisionChain,
    DecisionChainWithContext,
    TrailEntry,
    chains_with_context,
    decision_chains,
    ev_samples,
    names,
    trail,
)
from projections.sampling import SamplingCompliance, sampling_compliance
from service.handlers import Eportfolio
from tests.world import World


class AuditWorld(World):
    """World plus the steps of the signature chain and views of the whole log."""

    def countersign(self, pid: UUID, decision_id: UUID) -> None:
        self.app.execute(self.assessor, c.Countersign(decision_id=decision_id), target=pid)

    def iqa_sample(self, pid: UUID, *decision_ids: UUID) -> UUID:
        sample_id = uuid4()
        cmd = c.RecordIqaSample(
            sample_id=sample_id,
            stage=SampleStage.INTERIM,
            decision_ids=decision_ids,
            outcome=SampleOutcome.AGREED,
            location="Northgate office",
        )
        self.app.execute(self.iqa, cmd, target=pid)
        return sample_id

    def ev_sample(self, pid: UUID, decision_id: UUID, actions: tuple[str, ...]) -> UUID:
        sample_id = uuid4()
        cmd = c.RecordEvSample(
            sample_id=sample_id,
            decision_ids=(decision_id,),
            outcome=SampleOutcome.REFERRED,
            actions=actions,
            feedback="Observation records lack the time taken.",
        )
        self.app.execute(self.ev, cmd, target=pid)
        return sample_id

    def observe_at(self, pid: UUID, location: str, by: c.Actor | None = None) -> UUID:
        evidence_id = uuid4()
        cmd = c.RecordObservation(
            evidence_id=evidence_id,
            environment=Environment.WORKPLACE,
            criteria=("PC3",),
            location=location,
            customer_ref="cust-3",
        )
        self.app.execute(by or self.assessor, cmd, target=pid)
        return evidence_id

    def submit_at(self, pid: UUID, location: str) -> UUID:
        evidence_id = uuid4()
        cmd = c.SubmitEvidence(
            evidence_id=evidence_id,
            method=Method.WORK_PRODUCT,
            title="Complaint log extract",
            environment=Environment.WORKPLACE,
            location=location,
            authenticity_declared=True,
        )
        self.app.execute(self.learner, cmd, target=pid)
        mapping = c.MapEvidence(evidence_id=evidence_id, criteria=("PC1",))
        self.app.execute(self.learner, mapping, target=pid)
        return evidence_id

    def plan(self, cmd: c.SetSamplingPlan) -> None:
        self.centre_cmd(cmd, by=self.iqa)

    def log(self) -> list[tuple[int, Event]]:
        """Every domain event in the global log, with its position."""
        decoded = ((n.id, self.app.ledger.decode(n).event) for n in self.app.ledger.notifications())
        return [(position, event) for position, event in decoded if isinstance(event, Event)]

    def people(self) -> dict[UUID, str]:
        return names(self.app.centre(self.centre_id))

    def trail(self) -> list[TrailEntry]:
        return trail(self.log(), self.people())

    def chain(self, pid: UUID, decision_id: UUID) -> DecisionChain:
        chains = decision_chains(self.app.portfolio(pid), self.people())
        return next(chain for chain in chains if chain.decision_id == decision_id)

    def compliance(self, *pids: UUID) -> SamplingCompliance:
        chains: list[DecisionChainWithContext] = []
        for pid in pids:
            chains += chains_with_context(self.app.portfolio(pid), self.people())
        return sampling_compliance(self.app.centre(self.centre_id).sampling_plan, chains)


@pytest.fixture
def world(app: Eportfolio) -> AuditWorld:
    return AuditWorld(app)


def _trainee_decision(world: AuditWorld) -> tuple[UUID, UUID]:
    pid = world.enrol(assessor=world.trainee)
    evidence = world.observe(pid, ("PC3", "PC4"), by=world.trainee)
    return pid, world.decide(pid, ("PC3", "PC4"), (evidence,), by=world.trainee)


def test_the_trail_lists_every_event_in_position_order_with_who_what_and_when(
    world: AuditWorld,
) -> None:
    pid, decision_id = _trainee_decision(world)
    world.countersign(pid, decision_id)
    log = world.log()
    entries = world.trail()

    assert [entry.event_id for entry in entries] == [event.event_id for _, event in log]
    assert [entry.position for entry in entries] == sorted(position for position, _ in log)
    by_type = {entry.event_type: entry for entry in entries}
    observed = by_type["eportfolio.portfolio.observation_recorded"]
    assert observed.summary == "Observation recorded for PC3, PC4 (customer cust-2)"
    assert (observed.actor_name, observed.actor_role) == ("Tia Trainee", Role.ASSESSOR)
    assert (observed.centre_id, observed.portfolio_id) == (world.centre_id, pid)
    decided = by_type["eportfolio.portfolio.decision_recorded"]
    assert decided.summary == (
        "Decision: met for PC3, PC4 (relies on 1 evidence item) by a trainee assessor"
        " — awaits countersignature"
    )
    assert decision_id in decided.subject_ids
    signed = by_type["eportfolio.portfolio.decision_countersigned"]
    assert (signed.actor_name, signed.actor_id) == ("Alex Assessor", world.assessor.id)
    assert signed.recorded_at >= decided.recorded_at
    assert signed.effective_on == datetime.now(UTC).date()
    registered = by_type["eportfolio.centre.registered"]
    assert registered.actor_role is Role.ADMIN
    assert registered.summary == "Centre registered: Northgate College"


def test_a_trainees_decision_is_pending_then_stands_when_countersigned_then_iqa_then_ev_sampled(
    world: AuditWorld,
) -> None:
    pid, decision_id = _trainee_decision(world)
    pending = world.chain(pid, decision_id)
    assert pending.state is ChainState.PENDING_COUNTERSIGNATURE
    assert (pending.assessor.name, pending.assessor.qualification) == (
        "Tia Trainee",
        Qualification.TRAINEE,
    )
    assert pending.countersignature is None

    world.countersign(pid, decision_id)
    signed = world.chain(pid, decision_id)
    assert signed.state is ChainState.STANDS
    assert signed.countersignature is not None
    assert signed.countersignature.name == "Alex Assessor"

    world.iqa_sample(pid, decision_id)
    sampled = world.chain(pid, decision_id)
    assert sampled.state is ChainState.IQA_SAMPLED
    [iqa] = sampled.iqa_samples
    assert (iqa.actor_name, iqa.stage, iqa.outcome) == (
        "Ida Quality",
        SampleStage.INTERIM,
        SampleOutcome.AGREED,
    )

    sample = world.ev_sample(pid, decision_id, ("Record time taken",))
    assert world.chain(pid, decision_id).state is ChainState.REFERRED
    world.app.execute(
        world.trainee,
        c.RespondToSample(sample_id=sample, response="Times now on every observation record."),
        target=pid,
    )
    assert world.chain(pid, decision_id).state is ChainState.REFERRED
    world.app.execute(world.ev, c.AcceptSampleResponse(sample_id=sample), target=pid)
    accepted = world.chain(pid, decision_id)
    assert accepted.state is ChainState.EV_SAMPLED
    assert (accepted.ev_samples[0].responded, accepted.ev_samples[0].accepted) == (True, True)
    summaries = [entry.summary for entry in world.trail()]
    assert "The assessor responded to a sample: Times now on every observation record." in (
        summaries
    )
    assert (
        "The EV accepted the response: the referral and actions of the sample are closed"
        in summaries
    )


def test_a_revoked_decision_shows_revoked_with_the_reason_in_the_trail(world: AuditWorld) -> None:
    pid = world.enrol()
    evidence = world.observe(pid, ("PC3",))
    decision_id = world.decide(pid, ("PC3",), (evidence,))
    assert world.chain(pid, decision_id).state is ChainState.STANDS
    world.app.execute(
        world.assessor,
        c.RevokeDecision(decision_id=decision_id, reason="Relied on the wrong\nobservation"),
        target=pid,
    )

    assert world.chain(pid, decision_id).state is ChainState.REVOKED
    [revoked] = [entry for entry in world.trail() if entry.event_type == DecisionRevoked.TOPIC]
    assert revoked.summary == "Decision revoked: Relied on the wrong observation"
    assert revoked.subject_ids == (decision_id,)
    assert revoked.actor_name == "Alex Assessor"


def test_the_plan_is_not_compliant_until_every_decision_of_a_trainee_is_sampled(
    world: AuditWorld,
) -> None:
    world.plan(c.SetSamplingPlan(min_assessor_rate=0.2, trainee_assessor_rate=1.0))
    pid = world.enrol(assessor=world.trainee)
    evidence = [world.observe_at(pid, "Shop floor", by=world.trainee) for _ in range(2)]
    decisions = [world.decide(pid, ("PC3",), (item,), by=world.trainee) for item in evidence]
    world.iqa_sample(pid, decisions[0])

    partly = world.compliance(pid)
    assert not partly.compliant
    assert partly.missing == (
        "Assessor Tia Trainee (trainee): 1 of 2 decisions sampled; the plan needs 100%",
    )
    assessors = next(d for d in partly.dimensions if d.dimension == "assessors")
    assert [(f.sampled, f.total, f.required) for f in assessors.figures] == [(1, 2, 2)]

    world.iqa_sample(pid, decisions[1])
    fully = world.compliance(pid)
    assert fully.compliant
    assert (fully.missing, fully.decisions, fully.sampled) == ((), 2, 2)


def test_a_method_or_location_never_sampled_is_named(world: AuditWorld) -> None:
    world.plan(c.SetSamplingPlan(min_assessor_rate=0.5))
    pid = world.enrol()
    observed = world.decide(pid, ("PC3",), (world.observe_at(pid, "Shop floor"),))
    world.decide(pid, ("PC1",), (world.submit_at(pid, "Head office"),))
    world.iqa_sample(pid, observed)

    result = world.compliance(pid)
    assert not result.compliant
    assert result.missing == (
        "Method work product (WP): used in 1 decision, none sampled",
        "Location Head office: evidence of 1 decision, none sampled",
    )


def test_without_a_sampling_plan_nothing_is_compliant(world: AuditWorld) -> None:
    pid = world.enrol()
    world.iqa_sample(pid, world.decide(pid, ("PC3",), (world.observe(pid, ("PC3",)),)))
    result = world.compliance(pid)
    assert not result.compliant
    assert result.reason == "No sampling plan has been recorded for this centre"
    assert result.plan_version is None


def test_revoked_decisions_are_left_out_of_the_sampling_population(world: AuditWorld) -> None:
    world.plan(c.SetSamplingPlan(min_assessor_rate=1.0))
    pid = world.enrol()
    kept = world.decide(pid, ("PC3",), (world.observe(pid, ("PC3",)),))
    dropped = world.decide(pid, ("PC4",), (world.observe(pid, ("PC4",)),))
    world.app.execute(
        world.assessor, c.RevokeDecision(decision_id=dropped, reason="Wrong unit"), target=pid
    )
    world.iqa_sample(pid, kept)
    result = world.compliance(pid)
    assert result.compliant
    assert result.decisions == 1


def test_ev_samples_appear_with_their_outcome_actions_and_feedback(world: AuditWorld) -> None:
    pid = world.enrol()
    decision_id = world.decide(pid, ("PC3",), (world.observe(pid, ("PC3",)),))
    actions = ("Record the time taken on observations", "Standardise witness statements")
    sample_id = world.ev_sample(pid, decision_id, actions)

    [view] = ev_samples((event for _, event in world.log()), world.people())
    assert (view.sample_id, view.ev_name, view.outcome) == (
        sample_id,
        "Evan Verifier",
        SampleOutcome.REFERRED,
    )
    assert view.actions == actions
    assert view.feedback == "Observation records lack the time taken."
    assert view.decision_ids == (decision_id,)
    summaries = [entry.summary for entry in world.trail()]
    assert "EV sample of 1 decision: referred; 2 actions" in summaries


def test_every_kind_of_event_reads_as_a_sentence(world: AuditWorld) -> None:
    world.plan(c.SetSamplingPlan())
    world.centre_cmd(c.SetSufficiencyPolicy(decision_ref="STD-2024-03"))
    world.centre_cmd(
        c.ChangeQualification(
            staff_id=world.trainee.id, role=Role.ASSESSOR, qualification=Qualification.QUALIFIED
        )
    )
    pid = world.enrol()
    evidence = world.submit(pid)
    mapping = c.MapEvidence(evidence_id=evidence, criteria=("PC1",))
    world.app.execute(world.learner, mapping, target=pid)
    approval = c.ApproveRealisticEnvironment(
        approval_id=uuid4(), location="Training restaurant", approval_ref="EV visit 12"
    )
    world.centre_cmd(approval, by=world.admin)
    testimony = c.RecordWitnessTestimony(
        evidence_id=uuid4(),
        witness_id=world.witness_id,
        environment=Environment.WORKPLACE,
        criteria=("PC5",),
        statement="Spotted a stock fault before customers did.",
    )
    world.app.execute(world.learner, testimony, target=pid)
    questioning = c.RecordQuestioning(
        evidence_id=uuid4(), method=Method.QUESTIONING, criteria=("K1",)
    )
    world.app.execute(world.assessor, questioning, target=pid)
    world.app.execute(
        world.learner, c.WithdrawEvidence(evidence_id=evidence, reason="Wrong learner"), target=pid
    )
    world.centre_cmd(c.SetRetentionPolicy(records_years=0, decision_ref="RP-1"))
    hold = uuid4()
    world.centre_cmd(
        c.PlaceLegalHold(hold_id=hold, learner_id=world.learner.id, reason=HoldReason.APPEAL)
    )
    world.centre_cmd(c.LiftLegalHold(hold_id=hold, note="Appeal dismissed"))
    certified = world.certified()
    world.app.execute(
        world.centre_admin,
        c.OpenAppeal(appeal_id=uuid4(), reason="Learner appeals the K2 decision"),
        target=certified,
    )
    world.app.execute(world.centre_admin, c.CertifyUnit(certificate_ref="C-1"), target=certified)
    world.app.execute(world.centre_admin, c.WithdrawLearner(reason="Moved away"), target=pid)
    summaries: dict[str, str] = {}
    for entry in world.trail():  # the first of each kind
        summaries.setdefault(entry.event_type, entry.summary)
    world.centre_cmd(c.EraseLearner(learner_id=world.learner.id, reason="Art. 17 request"))
    erased = world.trail()[-1]
    summaries[erased.event_type] = erased.summary

    covered = (
        set(EVENT_TYPES)
        - {cls.TOPIC for cls in AUDIT_EVENTS}
        - {
            "eportfolio.centre.observed_criteria_set",
            "eportfolio.portfolio.observation_recorded",
            "eportfolio.portfolio.decision_recorded",
            "eportfolio.portfolio.decision_countersigned",
            "eportfolio.portfolio.iqa_sample_recorded",
            "eportfolio.portfolio.ev_sample_recorded",
            "eportfolio.portfolio.decision_revoked",
            # the QA events' sentences are checked with the chain they move on
            "eportfolio.portfolio.iqa_sample_countersigned",
            "eportfolio.portfolio.sample_responded",
            "eportfolio.portfolio.sample_response_accepted",
        }
    )
    assert covered <= set(summaries)
    assert summaries["eportfolio.centre.staff_qualification_changed"] == (
        "Qualification changed: Tia Trainee is now a qualified assessor"
    )
    assert summaries["eportfolio.portfolio.witness_testimony_recorded"] == (
        "Witness testimony from Wendy Witness for PC5"
    )
    assert summaries["eportfolio.portfolio.questioning_recorded"] == "Questioning recorded for K1"
    withdrawn = summaries["eportfolio.portfolio.evidence_withdrawn"]
    assert withdrawn == "Evidence withdrawn: Wrong learner"
    assert "(ref STD-2024-03)" in summaries["eportfolio.centre.sufficiency_policy_set"]
    assert summaries["eportfolio.portfolio.learner_enrolled"].startswith("Lee Learner enrolled on")
    assert summaries["eportfolio.centre.retention_policy_set"] == (
        "Retention policy v1 set: records kept 0 years after certification or withdrawal; "
        "evidence files may go after EV sampling (ref RP-1)"
    )
    assert summaries["eportfolio.centre.legal_hold_placed"] == (
        "Legal hold (appeal) placed on the records of Lee Learner"
    )
    assert summaries["eportfolio.portfolio.unit_certified"] == (
        "Unit certified (ref C-1), judged by sufficiency policy v1"
    )
    assert summaries["eportfolio.portfolio.unit_completion_signed"] == (
        "Unit completion signed off by the assessor: Consistently good; well done."
    )
    assert summaries["eportfolio.portfolio.appeal_opened"] == (
        "Appeal opened; the portfolio is open again: Learner appeals the K2 decision"
    )
    assert summaries["eportfolio.centre.realistic_environment_approved"] == (
        "Realistic working environment approved: Training restaurant for every unit "
        "(ref EV visit 12)"
    )
    assert summaries["eportfolio.portfolio.learner_withdrawn"] == (
        "Learner withdrawn from the unit (Moved away)"
    )
    assert summaries["eportfolio.centre.subject_erased"] == (
        "Personal data of learner [erased] erased (key destroyed): Art. 17 request"
    )


# ---- laws ----------------------------------------------------------------------------

Step = tuple[str, int, int]


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    plan=st.lists(
        st.tuples(
            st.sampled_from(["observe", "decide", "countersign", "iqa", "ev", "revoke"]),
            st.integers(0, 2),
            st.integers(0, 20),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_every_event_is_one_trail_row_and_every_decision_one_chain(
    config: Config, plan: list[Step]
) -> None:
    app = build(config)
    try:
        world = AuditWorld(app)
        pid = world.enrol(assessor=world.trainee)
        steps = Steps(world, pid)
        for kind, who, pick in plan:
            steps.attempt(kind, who, pick)
        log = world.log()
        entries = world.trail()
        # The trail: one row per event, in position order, none twice.
        assert [e.event_id for e in entries] == [event.event_id for _, event in log]
        positions = [entry.position for entry in entries]
        assert positions == sorted(set(positions))
        # The chains: every decision exactly once, revoked exactly when the portfolio says so.
        portfolio = app.portfolio(pid)
        chains = decision_chains(portfolio, world.people())
        assert Counter(chain.decision_id for chain in chains) == Counter(portfolio.decisions.keys())
        for chain in chains:
            revoked = portfolio.decisions[chain.decision_id].revoked
            assert (chain.state is ChainState.REVOKED) == revoked
        # A repeated delivery changes nothing.
        assert trail(log + log, world.people()) == entries
    finally:
        app.ledger.close()


class Steps:
    """Abstract steps resolved against what exists so far; refusals leave no trace."""

    def __init__(self, world: AuditWorld, pid: UUID) -> None:
        self.world, self.pid = world, pid
        self.evidence: list[UUID] = []
        self.decisions: list[UUID] = []

    def attempt(self, kind: str, who: int, pick: int) -> None:
        world, pid = self.world, self.pid
        actor = (world.trainee, world.assessor, world.iqa)[who]
        ev = self.evidence[pick % len(self.evidence)] if self.evidence else uuid4()
        dec = self.decisions[pick % len(self.decisions)] if self.decisions else uuid4()
        on = datetime.now(UTC).date() - timedelta(days=pick)
        try:
            if kind == "observe":
                self.evidence.append(world.observe(pid, ("PC3",), by=actor, on=on))
            elif kind == "decide":
                self.decisions.append(world.decide(pid, ("PC3",), (ev,), by=actor))
            elif kind == "countersign":
                world.app.execute(actor, c.Countersign(decision_id=dec), target=pid)
            elif kind == "iqa":
                world.iqa_sample(pid, dec)
            elif kind == "ev":
                world.ev_sample(pid, dec, ("Check records",))
            else:
                revoke = c.RevokeDecision(decision_id=dec, reason="Redo")
                world.app.execute(actor, revoke, target=pid)
        except DomainError:
            return
