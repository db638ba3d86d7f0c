"""Time travel from held states answers exactly as the fold from zero: random histories
(evidence mapped, withdrawn; decisions revoked, countersigned, sampled; the learner
erased), asked about random moments in random order, through the real service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bootstrap import build
from adapters.config import Config
from domain import commands as c
from domain.centre import fold_centre
from domain.portfolio import fold_portfolio
from projections.judgement import coverage_of, sufficiency_of
from service.erasure import erase_learner
from service.handlers import Eportfolio
from service.queries import Queries
from service.travel import Timeline
from tests.histories import PORTFOLIO_ACTIONS, History
from tests.world import World

START = datetime(2026, 9, 1, 9, tzinfo=UTC)
ACTIONS = PORTFOLIO_ACTIONS


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(config: Config, clock: Clock) -> Iterator[Eportfolio]:
    app = build(config, clock=clock)
    yield app
    app.ledger.close()


def _history(world: World, actions: list[tuple[str, int]], *, trainee: bool) -> UUID:
    """A portfolio the actions make, as far as the rules allow each of them; assessed by a
    trainee (whose decisions a qualified assessor countersigns) or a qualified assessor."""
    assessor = world.trainee if trainee else world.assessor
    history = History(world, world.enrol(assessor=assessor), assessor)
    for action, n in actions:
        history.play(action, n)
    return history.portfolio_id


def _from_zero(app: Eportfolio, pid: UUID, centre_id: UUID, t: datetime) -> tuple[bytes, bytes]:
    """Coverage and sufficiency folded from the first event of each stream, as before."""
    ledger = app.ledger
    portfolio = fold_portfolio([e for e in ledger.portfolio_facts(pid) if e.recorded_at <= t])
    centre = fold_centre([e for e in ledger.centre_facts(centre_id) if e.recorded_at <= t])
    assert portfolio is not None
    assert centre is not None
    spec = app.spec_of(portfolio)
    encode = msgspec.json.encode
    return encode(coverage_of(portfolio, centre, spec)), encode(
        sufficiency_of(portfolio, centre, spec)
    )


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    actions=st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.integers(0, 11)), min_size=8, max_size=30
    ),
    asked=st.lists(st.integers(0, 40), min_size=3, max_size=10),
    erase_trainee=st.tuples(st.booleans(), st.booleans()),
)
def test_as_known_at_from_held_states_equals_the_fold_from_zero(
    app: Eportfolio,
    clock: Clock,
    actions: list[tuple[str, int]],
    asked: list[int],
    erase_trainee: tuple[bool, bool],
) -> None:
    erase, trainee = erase_trainee  # the learner erased at the end; a trainee assessing
    clock.now = START
    world = World(app)
    pid = _history(world, actions, trainee=trainee)
    if erase:
        world.centre_cmd(c.SetRetentionPolicy(records_years=0))
        app.execute(world.centre_admin, c.WithdrawLearner(reason="left"), target=pid)
        request = c.EraseLearner(learner_id=world.learner.id, reason="Art. 17 request")
        erase_learner(app, world.centre_admin, world.centre_id, request)
    timeline = Timeline(every=2)  # short histories still fold on from held states
    moments = [START + timedelta(minutes=minutes, seconds=30) for minutes in asked]
    moments += [e.recorded_at for e in app.ledger.portfolio_facts(pid)]
    first = app.ledger.portfolio_facts(pid)[0].recorded_at
    # Asked in the order drawn, then again (no reports held) once held states reach further.
    for moments_asked in (moments[: len(asked)], moments[::-1]):
        queries = Queries(app)
        queries.timeline = timeline
        for t in moments_asked:
            if t < first:
                continue
            coverage, sufficiency = _from_zero(app, pid, world.centre_id, t)
            report = msgspec.json.encode(queries.coverage(pid, as_known_at=t))
            assert report == coverage
            assert msgspec.json.encode(queries.sufficiency(pid, as_known_at=t)) == sufficiency
            # Held reports name no one: nothing personal outlives an erasure in them.
            assert b"Lee Learner" not in report
            assert b"cust-" not in report
