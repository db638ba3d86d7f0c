"""Sufficiency over a period of time, on portfolios built through the real service.

Seed 000: "sufficient evidence to ensure that the candidate can consistently achieve the
required standard over a period of time"; the numbers are the centre's (its standardisation
decision, versioned). The service runs on a clock the tests control, so recorded times and
effective dates can differ on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.bootstrap import build
from adapters.config import Config
from adapters.specs import default_specs_dir, load_catalogue
from domain import commands as c
from domain import events as e
from domain.events import SufficiencyThresholds
from domain.portfolio import Decision, EvidenceItem, PortfolioState
from domain.spec import Method
from projections.sufficiency import NO_POLICY_NOTE, SufficiencyReport, occasion, sufficiency
from service.handlers import Eportfolio
from tests.world import World, seed_spec

SPEC = next(s for s in load_catalogue(default_specs_dir()).specs if s.seed.startswith("000"))
START = datetime(2024, 6, 28, 12, tzinfo=UTC)
TWO_OF_EVERYTHING = c.SufficiencyThresholds(
    min_occasions=2, min_distinct_dates=2, min_distinct_customers=2, min_span_days=14
)


class Clock:
    """The service's clock: it moves only when a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: int) -> None:
        self.now += timedelta(days=days)


class SufficiencyWorld(World):
    """The shared test centre, plus evidence with the dates, customers and occasions to count."""

    def work(
        self,
        pid: UUID,
        *,
        on: date,
        customer: str | None = None,
        occasion: str = "",
        environment: e.Environment = e.Environment.WORKPLACE,
        assessed: bool = True,
    ) -> UUID:
        """Evidence the learner submits and maps to PC1 (written answers for K1 if simulated:
        never performance); the assessor then decides on it unless `assessed` is False."""
        simulated = environment is e.Environment.SIMULATION
        cmd = c.SubmitEvidence(
            evidence_id=uuid4(),
            method=Method.WORK_PRODUCT,
            title="Complaint log",
            occasion=occasion,
            customer_ref=customer,
            environment=environment,
            authenticity_declared=True,
            written_answers=simulated,
            effective_on=on,
        )
        self.app.execute(self.learner, cmd, target=pid)
        mapped = ("K1",) if simulated else ("PC1",)
        mapping = c.MapEvidence(evidence_id=cmd.evidence_id, criteria=mapped)
        self.app.execute(self.learner, mapping, target=pid)
        if assessed:
            self.assess(pid, mapped, cmd.evidence_id)
        return cmd.evidence_id

    def observe(
        self,
        portfolio_id: UUID,
        criteria: tuple[str, ...],
        *,
        by: c.Actor | None = None,
        on: date | None = None,
    ) -> UUID:
        """An observation the assessor then decides on (only assessed evidence counts)."""
        evidence = super().observe(portfolio_id, criteria, by=by, on=on)
        self.assess(portfolio_id, criteria, evidence)
        return evidence

    def assess(self, pid: UUID, criteria: tuple[str, ...], evidence_id: UUID) -> None:
        decision = c.RecordDecision(
            decision_id=uuid4(),
            outcome=e.Outcome.MET,
            criteria=criteria,
            evidence_ids=(evidence_id,),
            observation_not_possible="Handled by phone at the weekend.",
        )
        self.app.execute(self.assessor, decision, target=pid)

    def report(self, pid: UUID) -> SufficiencyReport:
        portfolio = self.app.portfolio(pid)
        policy = self.app.centre(self.centre_id).sufficiency_policy
        return sufficiency(portfolio, self.app.spec_of(portfolio), policy)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def app(config: Config, clock: Clock) -> Iterator[Eportfolio]:
    app = build(config, clock=clock)
    yield app
    app.ledger.close()


@pytest.fixture
def world(app: Eportfolio) -> SufficiencyWorld:
    return SufficiencyWorld(app)


def day(n: int) -> date:
    """`n` days before the fixed start."""
    return START.date() - timedelta(days=n)


def test_evidence_all_on_one_day_fails_a_two_occasion_policy(world: SufficiencyWorld) -> None:
    world.centre_cmd(
        c.SetSufficiencyPolicy(default=TWO_OF_EVERYTHING, decision_ref="Standardisation meeting 3")
    )
    pid = world.enrol("000")
    for customer in ("c1", "c2", "c3"):
        world.work(pid, on=day(5), customer=customer, occasion="Saturday lunch service")
    report = world.report(pid)
    assert not report.passed
    assert (report.figures.occasions.value, report.figures.occasions.passed) == (1, False)
    assert (report.figures.distinct_dates.value, report.figures.span_days.value) == (1, 0)
    assert report.figures.distinct_customers.passed


def test_evidence_on_days_spread_over_the_span_passes(world: SufficiencyWorld) -> None:
    world.centre_cmd(c.SetSufficiencyPolicy(default=TWO_OF_EVERYTHING))
    pid = world.enrol("000")
    world.work(pid, on=day(30), customer="c1")
    world.observe(pid, ("PC3",), on=day(20))
    world.work(pid, on=day(2), customer="c1")
    report = world.report(pid)
    assert report.passed
    figures = report.figures
    assert (figures.first_on, figures.last_on) == (day(30), day(2))
    assert [figures.occasions.value, figures.distinct_dates.value] == [3, 3]
    assert [figures.distinct_customers.value, figures.span_days.value] == [2, 28]


def test_an_occasion_without_a_label_is_the_day_and_the_customer(
    world: SufficiencyWorld,
) -> None:
    pid = world.enrol("000")
    world.work(pid, on=day(3), customer="c1")
    world.work(pid, on=day(3), customer="c2")
    world.work(pid, on=day(3), customer="c2")
    world.work(pid, on=day(3), customer="c9", occasion="Breakfast shift")
    world.work(pid, on=day(3), customer="c8", occasion="Breakfast shift")
    assert world.report(pid).figures.occasions.value == 3


def test_without_a_standardisation_decision_the_defaults_apply_as_policy_version_0(
    world: SufficiencyWorld,
) -> None:
    pid = world.enrol("000")
    report = world.report(pid)
    assert (report.policy_version, report.policy_note) == (0, NO_POLICY_NOTE)
    assert report.thresholds == SufficiencyThresholds()
    assert report.policy_note == (
        "built-in default, not set by the centre (no standardisation decision recorded)"
    )


def test_the_policy_version_applied_is_reported(world: SufficiencyWorld) -> None:
    pid = world.enrol("000")
    world.centre_cmd(
        c.SetSufficiencyPolicy(
            default=c.SufficiencyThresholds(min_occasions=1), decision_ref="SM-1"
        )
    )
    assert world.report(pid).policy_version == 1
    world.centre_cmd(
        c.SetSufficiencyPolicy(
            default=c.SufficiencyThresholds(min_occasions=5), decision_ref="SM-2"
        )
    )
    report = world.report(pid)
    assert (report.policy_version, report.thresholds.min_occasions) == (2, 5)
    expected = f"standardisation decision of {START.date()} (SM-2): centre-wide thresholds"
    assert report.policy_note == expected


def test_per_unit_and_per_criterion_thresholds_are_applied(world: SufficiencyWorld) -> None:
    unit = seed_spec(world.app, "000").code
    lenient = c.SufficiencyThresholds(
        min_occasions=1, min_distinct_dates=1, min_distinct_customers=1, min_span_days=0
    )
    pc3 = c.SufficiencyThresholds(
        min_occasions=2, min_distinct_dates=2, min_distinct_customers=1, min_span_days=0
    )
    world.centre_cmd(
        c.SetSufficiencyPolicy(
            default=TWO_OF_EVERYTHING,
            per_unit=(
                c.UnitThresholds(unit_code=unit, thresholds=lenient, per_criterion={"PC3": pc3}),
            ),
        )
    )
    pid = world.enrol("000")
    world.work(pid, on=day(9), customer="c1")
    world.observe(pid, ("PC3",), on=day(9))
    report = world.report(pid)
    assert report.figures.passed
    assert [(r.criterion_id, r.figures.occasions.value) for r in report.criteria] == [("PC3", 1)]
    assert not report.passed
    assert f"thresholds for unit {unit}" in report.policy_note

    world.observe(pid, ("PC3",), on=day(4))
    assert world.report(pid).passed


def test_only_live_assessed_performance_evidence_counts(world: SufficiencyWorld) -> None:
    """Questioning shows knowledge, a simulation is never performance, withdrawn is gone,
    and evidence no assessor has decided on is not yet evidence of competence."""
    pid = world.enrol("000")
    world.work(pid, on=day(1), customer="c1")
    questioning = c.RecordQuestioning(
        evidence_id=uuid4(), method=Method.QUESTIONING, criteria=("PC1",), effective_on=day(40)
    )
    world.app.execute(world.assessor, questioning, target=pid)
    world.assess(pid, ("PC1",), questioning.evidence_id)
    world.work(pid, on=day(41), customer="c3", environment=e.Environment.SIMULATION)
    world.work(pid, on=day(43), customer="c5", assessed=False)
    withdrawn = world.work(pid, on=day(42), customer="c4")
    world.app.execute(
        world.learner,
        c.WithdrawEvidence(evidence_id=withdrawn, reason="Wrong learner's log"),
        target=pid,
    )
    figures = world.report(pid).figures
    assert (figures.evidence_count, figures.first_on, figures.distinct_customers.value) == (
        1,
        day(1),
        1,
    )


def test_evidence_recorded_late_is_flagged_and_its_effective_date_still_counts(
    world: SufficiencyWorld, clock: Clock
) -> None:
    world.centre_cmd(c.SetSufficiencyPolicy(late_recording_days=28))
    pid = world.enrol("000")
    on_time = world.observe(pid, ("PC3",))
    clock.advance(30)
    late = world.work(pid, on=START.date(), customer="c1")
    world.work(pid, on=clock.now.date() - timedelta(days=28), customer="c2")
    report = world.report(pid)
    assert [(x.evidence_id, x.days_to_record, x.days_late) for x in report.late_evidence] == [
        (late, 30, 2)
    ]
    assert on_time not in {x.evidence_id for x in report.late_evidence}
    assert report.figures.first_on == START.date()
    assert report.late_recording_days == 28


# ---- properties, on the pure functions -------------------------------------------------


def _item(n: int, on: date, recorded_after: int, customer: str, label: str) -> EvidenceItem:
    return EvidenceItem(
        evidence_id=UUID(int=n),
        event_id=UUID(int=n),
        method=Method.OBSERVATION,
        author_id=UUID(int=0),
        effective_on=on,
        recorded_at=datetime(on.year, on.month, on.day, 9, tzinfo=UTC)
        + timedelta(days=recorded_after),
        environment=e.Environment.WORKPLACE,
        occasion=label,
        customer_ref=customer or None,
        criteria={"PC3"},
    )


def _portfolio(items: list[EvidenceItem]) -> PortfolioState:
    state = PortfolioState(
        portfolio_id=UUID(int=0),
        centre_id=UUID(int=0),
        learner_id=UUID(int=0),
        unit_code="CS-RCSP-H",
        spec_version=1,
        spec_hash="0" * 64,
        assessor_id=UUID(int=0),
        iqa_id=UUID(int=0),
        enrolled_on=date(2024, 1, 1),
    )
    state.evidence = {i.evidence_id: i for i in items}
    state.decisions[UUID(int=999)] = Decision(
        decision_id=UUID(int=999),
        event_id=UUID(int=999),
        outcome=e.Outcome.MET,
        criteria=("PC3",),
        evidence_ids=tuple(state.evidence),
        author_id=UUID(int=0),
        author_qualification=e.Qualification.QUALIFIED,
        effective_on=date(2025, 1, 1),
        recorded_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    return state


items_of = st.lists(
    st.tuples(
        st.dates(date(2024, 1, 1), date(2024, 12, 31)),
        st.sampled_from(["", "c1", "c2"]),
        st.sampled_from(["", "lunch", "dinner"]),
    ),
    max_size=8,
)


@settings(max_examples=80, deadline=None)
@given(items_of, st.lists(st.integers(0, 400), min_size=8, max_size=8))
def test_figures_depend_on_effective_dates_never_on_recorded_times(
    rows: list[tuple[date, str, str]], delays: list[int]
) -> None:
    prompt = [_item(n, on, 0, cust, label) for n, (on, cust, label) in enumerate(rows)]
    late = [_item(n, on, delays[n], cust, label) for n, (on, cust, label) in enumerate(rows)]
    a = sufficiency(_portfolio(prompt), SPEC, None)
    b = sufficiency(_portfolio(late), SPEC, None)
    assert a.figures == b.figures
    assert a.figures.occasions.value == len({occasion(i) for i in prompt})
    assert {x.evidence_id for x in b.late_evidence} == {
        i.evidence_id for i, d in zip(late, delays, strict=False) if d > 28
    }
