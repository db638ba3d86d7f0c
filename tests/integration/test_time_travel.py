"""Time travel: what the system knew at a time, and what was true on a date."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bootstrap import build
from adapters.config import Config
from domain import commands as c
from domain.events import Event, Outcome, SampleOutcome
from service.codec import Recorded
from service.handlers import Eportfolio
from service.queries import Queries
from tests.conftest import with_kek
from tests.world import World


class Clock:
    """A clock the test moves: each reading is one minute after the last."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


START = datetime(2026, 9, 1, 9, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def app(config: Config, clock: Clock) -> Iterator[Eportfolio]:
    app = build(config, clock=clock)
    yield app
    app.ledger.close()


def _build_history(world: World, clock: Clock) -> tuple[UUID, list[datetime]]:
    """A seed-000 portfolio built over several days; returns the times between steps."""
    pid = world.enrol()
    marks = [clock.now]
    evidence = []
    for day, criteria in enumerate((("PC3", "PC4", "a"), ("PC5", "PC6", "b"), ("PC7", "PC1"))):
        clock.now = START + timedelta(days=3 * (day + 1))
        on = clock.now.date()
        evidence.append(world.observe(pid, criteria, on=on))
        marks.append(clock.now)
        world.decide(pid, criteria, (evidence[-1],))
        marks.append(clock.now)
    return pid, marks


def _copy_known(
    source: Eportfolio, target: Eportfolio, stream_ids: list[UUID], t: datetime
) -> None:
    """Put into another store only the events recorded by `t`, as they were stored."""
    for stream_id in stream_ids:
        known = [
            r
            for r in source.ledger.recorded(stream_id)
            if isinstance(r.event, Event) and r.event.recorded_at <= t
        ]
        if known:
            target.ledger.save(
                *[Recorded(r.originator_id, r.originator_version, r.event) for r in known]
            )


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=0, max_value=7))
def test_coverage_as_known_at_t_equals_the_projection_of_only_the_events_recorded_by_t(
    app: Eportfolio, clock: Clock, tmp_path_factory: pytest.TempPathFactory, cut: int
) -> None:
    clock.now = START  # each example's centre starts on the same day
    world = World(app)
    pid, marks = _build_history(world, clock)
    t = marks[min(cut, len(marks) - 1)]
    other = build(with_kek(Config(data_dir=tmp_path_factory.mktemp("cut"))))
    try:
        _copy_known(app, other, [world.centre_id, pid], t)
        expected = Queries(other).coverage(pid)
        assert Queries(app).coverage(pid, as_known_at=t) == expected
        assert Queries(app).sufficiency(pid, as_known_at=t) == Queries(other).sufficiency(pid)
    finally:
        other.ledger.close()


def test_replaying_as_known_at_an_ev_sample_gives_exactly_what_the_ev_saw(
    app: Eportfolio, clock: Clock
) -> None:
    world = World(app)
    pid, _ = _build_history(world, clock)
    decision = next(iter(app.portfolio(pid).decisions))
    sample = app.execute(
        world.ev,
        c.RecordEvSample(sample_id=uuid4(), decision_ids=(decision,), outcome=SampleOutcome.AGREED),
        target=pid,
    )
    queries = Queries(app)
    seen = (queries.coverage(pid), queries.sufficiency(pid), queries.history(pid))
    assert sample.event is not None
    sampled_at = sample.event.recorded_at

    # Afterwards the portfolio moves on: evidence is withdrawn, a decision revoked.
    clock.now += timedelta(days=2)
    first = next(iter(app.portfolio(pid).evidence))
    app.execute(
        world.assessor, c.WithdrawEvidence(evidence_id=first, reason="Wrong customer"), target=pid
    )
    app.execute(
        world.assessor, c.RevokeDecision(decision_id=decision, reason="Re-assess"), target=pid
    )
    assert queries.coverage(pid) != seen[0]

    replay = (
        queries.coverage(pid, as_known_at=sampled_at),
        queries.sufficiency(pid, as_known_at=sampled_at),
        queries.history(pid, as_known_at=sampled_at),
    )
    assert replay == seen


def test_effective_at_a_date_ignores_what_happened_later_even_if_recorded_earlier(
    app: Eportfolio, clock: Clock
) -> None:
    world = World(app)
    pid = world.enrol()
    clock.now = START + timedelta(days=20)
    early = world.observe(pid, ("PC3",), on=date(2026, 9, 5))
    late = world.observe(pid, ("PC4",), on=date(2026, 9, 15))
    report = Queries(app).coverage(pid, effective_at=date(2026, 9, 10))
    evidenced = {row.id for row in report.criteria if row.evidence}
    assert "PC3" in evidenced
    assert "PC4" not in evidenced
    assert {early, late} <= set(app.portfolio(pid).evidence)


def test_a_decision_recorded_after_the_cut_is_not_known_at_the_cut(
    app: Eportfolio, clock: Clock
) -> None:
    world = World(app)
    pid = world.enrol()
    evidence = world.observe(pid, ("PC3",))
    before = clock.now
    app.execute(
        world.assessor,
        c.RecordDecision(
            decision_id=uuid4(), outcome=Outcome.MET, criteria=("PC3",), evidence_ids=(evidence,)
        ),
        target=pid,
    )
    then = {r.id: r.status for r in Queries(app).coverage(pid, as_known_at=before).criteria}
    now = {r.id: r.status for r in Queries(app).coverage(pid).criteria}
    assert then["PC3"] == "evidenced"
    assert now["PC3"] == "met"
