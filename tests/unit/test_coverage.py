"""Coverage (gap analysis) of portfolios built through the real service, on SQLite and PostgreSQL.

What each test expects is read from the seed texts: seed 000 says "The assessor must assess
PCs 3-7 by directly observing" and "two from ... (a)-(d)" for the range; seed 001's LO4
is knowledge; seed 002 says "Circled numbers must be observed" and lists what must be covered.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import UUID, uuid4

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.specs import default_specs_dir, load_catalogue
from domain import commands as c
from domain import errors
from domain import events as e
from domain.portfolio import Decision, EvidenceItem, PortfolioState
from domain.spec import Method, UnitSpec
from projections.coverage import CoverageReport, CriterionCoverage, Status, coverage
from service.handlers import Eportfolio
from tests.world import World, seed_spec

SEED_000 = next((default_specs_dir() / "sources").glob("000_*.txt")).read_text()


def observed_pcs_of_seed_000() -> list[str]:
    """ "The assessor must assess PCs 3-7 by directly observing": PC3 ... PC7."""
    found = re.search(r"must assess PCs (\d+)\D(\d+) by directly observing", SEED_000)
    assert found is not None
    first, last = int(found[1]), int(found[2])
    return [f"PC{n}" for n in range(first, last + 1)]


class CoverageWorld(World):
    """The shared test centre, plus the portfolio actions coverage reads."""

    def testimony(self, pid: UUID, criteria: tuple[str, ...]) -> UUID:
        cmd = c.RecordWitnessTestimony(
            evidence_id=uuid4(),
            witness_id=self.witness_id,
            environment=e.Environment.WORKPLACE,
            criteria=criteria,
            customer_ref="cust-3",
            statement="I saw the candidate handle the complaint.",
        )
        self.app.execute(self.learner, cmd, target=pid)
        return cmd.evidence_id

    def question(self, pid: UUID, criteria: tuple[str, ...]) -> UUID:
        cmd = c.RecordQuestioning(
            evidence_id=uuid4(), method=Method.QUESTIONING, criteria=criteria, summary="Q&A"
        )
        self.app.execute(self.assessor, cmd, target=pid)
        return cmd.evidence_id

    def tagged(self, pid: UUID, tags: tuple[str, ...]) -> UUID:
        cmd = c.SubmitEvidence(
            evidence_id=uuid4(),
            method=Method.WORK_PRODUCT,
            title="Incident log",
            environment=e.Environment.WORKPLACE,
            requirement_tags=tags,
            authenticity_declared=True,
        )
        self.app.execute(self.learner, cmd, target=pid)
        return cmd.evidence_id

    def act(self, pid: UUID, cmd: c.Command, by: c.Actor | None = None) -> None:
        self.app.execute(by or self.assessor, cmd, target=pid)

    def report(self, pid: UUID, spec: UnitSpec | None = None) -> CoverageReport:
        portfolio = self.app.portfolio(pid)
        observed = self.app.centre(self.centre_id).observed_criteria
        spec = spec or self.app.spec_of(portfolio)
        return coverage(portfolio, spec, observed.get(portfolio.unit_code, ()))


def row(report: CoverageReport, cid: str) -> CriterionCoverage:
    return next(r for r in report.criteria if r.id == cid)


@pytest.fixture
def world(app: Eportfolio) -> CoverageWorld:
    return CoverageWorld(app)


def test_witness_testimony_does_not_meet_a_criterion_the_assessor_must_observe(
    world: CoverageWorld,
) -> None:
    assert "PC5" in observed_pcs_of_seed_000()
    assert "PC1" not in observed_pcs_of_seed_000()
    pid = world.enrol("000")
    testimony = world.testimony(pid, ("PC1", "PC5"))
    assert "PC5 must be observed by the assessor; so far it has only witness testimony" in (
        world.report(pid).gaps
    )
    with pytest.raises(errors.ObservationRequired, match="PC5 must be observed"):
        world.decide(pid, ("PC1", "PC5"), (testimony,))
    world.decide(pid, ("PC1",), (testimony,))
    observation = world.observe(pid, ("PC5",))
    world.decide(pid, ("PC5",), (observation,))

    report = world.report(pid)
    pc5 = row(report, "PC5")
    assert (pc5.status, pc5.complete, pc5.observed) == (Status.MET, True, True)
    assert {r.method for r in pc5.evidence} == {Method.WITNESS_TESTIMONY, Method.OBSERVATION}


def test_pcs_observed_unless_not_possible_need_the_reason_when_decided_on_testimony(
    world: CoverageWorld,
) -> None:
    """Seed 000: "PCs 1, 2 and 8-16 may be assessed by alternative methods if observation
    is not possible" -- so a decision on testimony alone says why observation was not."""
    pid = world.enrol("000")
    testimony = world.testimony(pid, ("PC1",))
    world.decide(pid, ("PC1",), (testimony,))
    today = datetime.now(UTC).date()
    gap = (
        f"PC1: the decision of {today} rests on no observation and does not record why "
        "observation was not possible"
    )
    assert row(world.report(pid), "PC1").gaps == (gap,)
    world.act(
        pid,
        c.RecordDecision(
            decision_id=uuid4(),
            outcome=e.Outcome.MET,
            criteria=("PC1",),
            evidence_ids=(testimony,),
            observation_not_possible="Night-shift complaints line: no assessor on site.",
        ),
    )
    assert row(world.report(pid), "PC1").complete


def test_two_observed_range_items_meet_two_from_a_to_d_and_one_does_not(
    world: CoverageWorld,
) -> None:
    assert re.search(r"two from dealing with customer service problems", SEED_000)
    pid = world.enrol("000")
    world.observe(pid, ("PC3", "a"))
    report = world.report(pid)
    assert report.range is not None
    assert (report.range.observed, report.range.rule_met) == (("a",), False)
    assert (
        "Range: 1 of the 2 items that must be observed (from a\N{EN DASH}d) has been observed"
        in (report.gaps)
    )

    world.observe(pid, ("PC4", "b"))
    report = world.report(pid)
    assert report.range is not None
    assert (report.range.observed, report.range.rule_met) == (("a", "b"), True)
    assert report.range.summary == "2 of 4 observed (2 must be)"
    assert not any(g.startswith("Range:") for g in report.gaps)


def test_range_items_not_observed_may_be_covered_only_by_the_methods_the_unit_allows(
    world: CoverageWorld,
) -> None:
    """ "the remaining points ... may be assessed through questioning or witness testimony"."""
    pid = world.enrol("000")
    work = world.submit(pid)
    with pytest.raises(errors.MethodCannotShow, match=r"range item \(c\) is covered by"):
        world.act(pid, c.MapEvidence(evidence_id=work, criteria=("c",)), by=world.learner)
    testimony = world.testimony(pid, ("c",))
    world.decide(pid, ("c",), (testimony,))
    assert row(world.report(pid), "c").complete


def test_knowledge_of_seed_001_is_met_by_questioning(world: CoverageWorld) -> None:
    pid = world.enrol("001")
    knowledge = ("4.1", "4.2", "4.3", "4.4")
    world.decide(pid, knowledge, (world.question(pid, knowledge),))
    report = world.report(pid)
    for cid in knowledge:
        assert (row(report, cid).complete, row(report, cid).inferred) == (True, False)
    assert not any(g.startswith("AC 4.") for g in report.gaps)
    assert "AC 1.1: no evidence yet" in report.gaps


def test_seed_000_infers_how_to_knowledge_from_observation_and_nothing_else(
    world: CoverageWorld,
) -> None:
    """K4 "How to defuse potentially stressful situations" may be inferred from observed
    performance; K1 "Organisational procedures and systems ..." may not."""
    pid = world.enrol("000")
    with pytest.raises(errors.MethodCannotShow, match="witness testimony never shows knowledge"):
        world.testimony(pid, ("K4",))
    world.decide(pid, ("K4",), (world.observe(pid, ("PC4", "K4")),))
    k4 = row(world.report(pid), "K4")
    assert (k4.complete, k4.inferred, k4.inferable) == (True, True, True)

    with pytest.raises(errors.KnowledgeNotInferable, match="K1 cannot be inferred"):
        world.observe(pid, ("PC5", "K1"))
    assert row(world.report(pid), "K1").inferable is False
    world.decide(pid, ("K1",), (world.question(pid, ("K1",)),))
    k1 = row(world.report(pid), "K1")
    assert (k1.complete, k1.inferred) == (True, False)


def test_a_trainees_decision_counts_only_once_countersigned(world: CoverageWorld) -> None:
    pid = world.enrol("000", assessor=world.trainee)
    evidence = world.observe(pid, ("PC7",), by=world.trainee)
    decision = world.decide(pid, ("PC7",), (evidence,), by=world.trainee)
    pc7 = row(world.report(pid), "PC7")
    assert (pc7.status, pc7.complete, pc7.decision_id) == (Status.EVIDENCED, False, None)
    assert "PC7: the decision by a trainee assessor awaits countersignature" in (
        world.report(pid).gaps
    )

    world.act(pid, c.Countersign(decision_id=decision))
    pc7 = row(world.report(pid), "PC7")
    assert (pc7.status, pc7.complete, pc7.decision_id) == (Status.COUNTERSIGNED, True, decision)


def test_sampling_moves_the_status_on_and_a_referral_stops_it_counting(
    world: CoverageWorld,
) -> None:
    pid = world.enrol("000")
    decision = world.decide(pid, ("PC3",), (world.observe(pid, ("PC3",)),))
    iqa = c.RecordIqaSample(
        sample_id=uuid4(),
        stage=e.SampleStage.INTERIM,
        decision_ids=(decision,),
        outcome=e.SampleOutcome.AGREED,
    )
    world.act(pid, iqa, by=world.iqa)
    assert row(world.report(pid), "PC3").status is Status.IQA_SAMPLED
    ev = c.RecordEvSample(
        sample_id=uuid4(), decision_ids=(decision,), outcome=e.SampleOutcome.REFERRED
    )
    world.act(pid, ev, by=world.ev)
    pc3 = row(world.report(pid), "PC3")
    assert (pc3.status, pc3.complete) == (Status.EV_SAMPLED, False)
    today = datetime.now(UTC).date()
    assert f"PC3: the EV referred the decision of {today} back to the assessor" in (
        world.report(pid).gaps
    )


def test_a_revoked_decision_and_withdrawn_evidence_drop_out(world: CoverageWorld) -> None:
    pid = world.enrol("000")
    evidence = world.observe(pid, ("PC3",))
    first = world.decide(pid, ("PC3",), (evidence,))
    world.act(pid, c.RevokeDecision(decision_id=first, reason="Wrong candidate's record"))
    pc3 = row(world.report(pid), "PC3")
    assert (pc3.status, pc3.decision_id) == (Status.EVIDENCED, None)
    assert "PC3: no assessment decision yet" in world.report(pid).gaps

    world.decide(pid, ("PC3",), (evidence,))
    assert row(world.report(pid), "PC3").complete
    world.act(pid, c.WithdrawEvidence(evidence_id=evidence, reason="Customer was a relative"))
    report = world.report(pid)
    assert (row(report, "PC3").status, row(report, "PC3").evidence) == (
        Status.NOT_EVIDENCED,
        (),
    )
    assert "PC3: no evidence yet; it must be observed by the assessor" in report.gaps
    today = datetime.now(UTC).date()
    assert (
        f"PC3: the decision of {today} no longer stands for it: the evidence it relied on was "
        f"withdrawn ({evidence})"
    ) in report.gaps


def test_the_latest_standing_decision_governs(world: CoverageWorld) -> None:
    pid = world.enrol("000")
    evidence = world.observe(pid, ("PC3",))
    world.decide(pid, ("PC3",), (evidence,))
    later = c.RecordDecision(
        decision_id=uuid4(),
        outcome=e.Outcome.NOT_YET,
        criteria=("PC3",),
        evidence_ids=(evidence,),
    )
    world.act(pid, later)
    report = world.report(pid)
    assert (row(report, "PC3").status, row(report, "PC3").complete) == (Status.EVIDENCED, False)
    assert f"PC3: assessed as not yet met on {datetime.now(UTC).date()}" in report.gaps


def test_a_met_decision_must_cite_evidence_mapped_to_each_criterion(
    world: CoverageWorld,
) -> None:
    pid = world.enrol("000")
    with pytest.raises(errors.DecisionUnsupported, match="PC1: no cited evidence is mapped"):
        world.decide(pid, ("PC1",), (world.submit(pid),))
    assert world.report(pid).criteria[0].status is Status.NOT_EVIDENCED


def test_seed_002s_centre_set_observed_criteria_are_enforced(world: CoverageWorld) -> None:
    pid = world.enrol("002")
    world.decide(pid, ("PC2",), (world.testimony(pid, ("PC2",)),))
    report = world.report(pid)
    assert row(report, "PC2").complete
    assert "The centre has not yet set which criteria of this unit must be observed" in (
        report.gaps
    )

    unit = seed_spec(world.app, "002").code
    world.centre_cmd(c.SetObservedCriteria(unit_code=unit, criteria=("PC2", "PC5")))
    report = world.report(pid)
    assert (row(report, "PC2").must_observe, row(report, "PC2").complete) == (True, False)
    assert row(report, "PC1").must_observe is False
    assert "PC2 must be observed by the assessor; so far it has only witness testimony" in (
        report.gaps
    )
    assert f"PC2: the decision of {datetime.now(UTC).date()} cites no observation of it" in (
        report.gaps
    )
    assert not any(g.startswith("The centre") for g in report.gaps)


def test_each_requirement_category_of_seed_002_needs_evidence_the_assessor_confirms(
    world: CoverageWorld,
) -> None:
    """A learner's tag proposes; the category counts once a decision confirms it."""
    pid = world.enrol("002")
    gap = "No evidence yet of requirement RP4: a problem caused by a system or procedure failure"
    assert gap in world.report(pid).gaps
    tagged = world.tagged(pid, ("RP4", "IP3"))
    report = world.report(pid)
    assert gap not in report.gaps
    assert (row(report, "RP4").status, row(report, "RP4").complete) == (Status.EVIDENCED, False)
    assert "Requirement RP4: no assessment decision yet" in report.gaps
    world.decide(pid, ("RP4", "IP3"), (tagged,))
    report = world.report(pid)
    assert (row(report, "RP4").status, row(report, "RP4").complete) == (Status.MET, True)
    assert "No evidence yet of requirement RP5: a problem caused by a lack of resources or " in (
        "".join(report.gaps)
    )


def test_a_complete_seed_000_portfolio_reports_complete_with_no_gaps(
    world: CoverageWorld,
) -> None:
    """PCs 3-7 observed; "PCs 1, 2 and 8-16 may be assessed by alternative methods if
    observation is not possible", and the decision says why it was not."""
    pid = world.enrol("000")
    spec = seed_spec(world.app, "000")
    observed = (*observed_pcs_of_seed_000(), "a", "b")
    performance = [x.id for x in spec.criteria if x.kind == "performance"]
    others = tuple(p for p in performance if p not in observed)
    knowledge = tuple(x.id for x in spec.criteria if x.kind == "knowledge")
    evidence = (
        world.observe(pid, observed),
        world.testimony(pid, (*others, "c")),
        world.question(pid, (*knowledge, "d")),
    )
    world.act(
        pid,
        c.RecordDecision(
            decision_id=uuid4(),
            outcome=e.Outcome.MET,
            criteria=(*performance, *knowledge, "a", "b", "c", "d"),
            evidence_ids=evidence,
            observation_not_possible="Complaints handled by phone from home: not observable.",
        ),
    )

    report = world.report(pid)
    assert (report.complete, report.gaps) == (True, ())
    assert all(r.complete and r.status is Status.MET for r in report.criteria)
    assert report.range is not None
    assert report.range.rule_met


# ---- properties, on the pure function -------------------------------------------------

SPEC = next(s for s in load_catalogue(default_specs_dir()).specs if s.seed.startswith("000"))
IDS = ("PC1", "PC3", "PC5", "K1", "K2", "a", "b")
AT = datetime(2024, 3, 1, 9, tzinfo=UTC)
ZERO = UUID(int=0)
Evidence = list[tuple[Method, tuple[str, ...]]]
Decisions = list[tuple[tuple[str, ...], e.Outcome, e.Qualification, bool]]


def _item(n: int, method: Method, criteria: tuple[str, ...], withdrawn: bool) -> EvidenceItem:
    return EvidenceItem(
        evidence_id=UUID(int=n),
        event_id=UUID(int=n),
        author_id=ZERO,
        method=method,
        effective_on=AT.date(),
        recorded_at=AT,
        environment=e.Environment.WORKPLACE,
        criteria=set(criteria),
        withdrawn=withdrawn,
    )


def _state(evidence: Evidence, decisions: Decisions, *, revoke: bool) -> PortfolioState:
    """A portfolio state as the fold leaves it; ids count up, so equal inputs report alike."""
    state = PortfolioState(
        portfolio_id=ZERO,
        centre_id=ZERO,
        learner_id=ZERO,
        unit_code=SPEC.code,
        spec_version=SPEC.version,
        spec_hash=SPEC.content_hash,
        assessor_id=ZERO,
        iqa_id=ZERO,
        enrolled_on=AT.date(),
    )
    for n, (method, criteria) in enumerate(evidence, start=1):
        state.evidence[UUID(int=n)] = _item(n, method, criteria, withdrawn=False)
    for n, (criteria, outcome, qualification, countersigned) in enumerate(decisions, start=100):
        state.decisions[UUID(int=n)] = Decision(
            decision_id=UUID(int=n),
            event_id=UUID(int=n),
            outcome=outcome,
            criteria=criteria,
            evidence_ids=tuple(state.evidence)[: len(criteria)],
            author_id=ZERO,
            author_qualification=qualification,
            effective_on=AT.date(),
            recorded_at=AT,
            countersigned_by=UUID(int=1) if countersigned else None,
            revoked=revoke,
        )
    return state


criteria_sets = st.lists(st.sampled_from(IDS), min_size=1, max_size=4, unique=True).map(tuple)
evidence_lists = st.lists(st.tuples(st.sampled_from(list(Method)), criteria_sets), max_size=6)
decision_lists = st.lists(
    st.tuples(
        criteria_sets,
        st.sampled_from(list(e.Outcome)),
        st.sampled_from(list(e.Qualification)),
        st.booleans(),
    ),
    max_size=4,
)


@settings(max_examples=100, deadline=None)
@given(evidence_lists, decision_lists, st.sampled_from(list(Method)), criteria_sets)
def test_adding_a_withdrawn_item_never_changes_coverage(
    evidence: Evidence, decisions: Decisions, method: Method, criteria: tuple[str, ...]
) -> None:
    state = _state(evidence, decisions, revoke=False)
    before = coverage(state, SPEC)
    state.evidence[UUID(int=99)] = _item(99, method, criteria, withdrawn=True)
    assert coverage(state, SPEC) == before


@settings(max_examples=100, deadline=None)
@given(evidence_lists, decision_lists)
def test_revoked_decisions_count_for_nothing(evidence: Evidence, decisions: Decisions) -> None:
    """Never met on their strength: the report is the one with no decisions at all."""
    revoked = coverage(_state(evidence, decisions, revoke=True), SPEC)
    assert all(r.status in (Status.NOT_EVIDENCED, Status.EVIDENCED) for r in revoked.criteria)
    assert revoked == coverage(_state(evidence, [], revoke=False), SPEC)


def test_the_report_is_plain_json(world: CoverageWorld) -> None:
    pid = world.enrol("000")
    world.observe(pid, ("PC3",))
    decoded = msgspec.json.decode(msgspec.json.encode(world.report(pid)), type=CoverageReport)
    assert decoded == world.report(pid)
