"""Writes decide on states folded on from held ones: random command sequences through the
real service (portfolio and centre commands interleaved, the learner erased), and at
every decision the portfolio and centre the rules see equal the folds from zero, and no
state handed out earlier has changed since."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bootstrap import build
from adapters.config import Config
from domain import assessment as a
from domain import commands as c
from domain.centre import CentreState, fold_centre
from domain.errors import DomainError
from domain.events import Qualification, Role
from domain.portfolio import fold_portfolio
from service.erasure import erase_learner
from service.handlers import Eportfolio
from service.travel import Timeline
from tests.histories import PORTFOLIO_ACTIONS, History
from tests.world import World

ACTIONS = (*PORTFOLIO_ACTIONS, "learner", "witness", "qualify", "staff")


@pytest.fixture
def app(config: Config) -> Iterator[Eportfolio]:
    app = build(config)
    yield app
    app.ledger.close()


class Spy:
    """Checks what each decision reads against the folds from zero of the stream now, and
    keeps a copy of every state handed out, to check later that none changed."""

    def __init__(self, app: Eportfolio, monkeypatch: pytest.MonkeyPatch) -> None:
        self.app = app
        self.seen: list[tuple[Any, Any]] = []
        self.decisions = 0
        context, centre_facts = app._context, app.centre_facts

        def checked_context(portfolio_id: UUID) -> a.Context:
            ctx = context(portfolio_id)
            assert ctx.portfolio == fold_portfolio(app.ledger.portfolio_facts(portfolio_id))
            self._keep(ctx.portfolio)
            self.decisions += 1
            return ctx

        def checked_centre(centre_id: UUID) -> CentreState:
            centre = centre_facts(centre_id)
            assert centre == fold_centre(app.ledger.centre_facts(centre_id))
            self._keep(centre)
            return centre

        monkeypatch.setattr(app, "_context", checked_context)
        monkeypatch.setattr(app, "centre_facts", checked_centre)

    def _keep(self, state: object) -> None:
        self.seen.append((state, copy.deepcopy(state)))

    def unchanged(self) -> None:
        for state, then in self.seen:
            assert state == then


def _run(world: World, pid: UUID, actions: list[tuple[str, int]], trainee: c.Actor) -> None:
    history = History(world, pid, trainee)
    for action, n in actions:
        if action in PORTFOLIO_ACTIONS:
            history.play(action, n)
        elif action == "learner":
            world.centre_cmd(c.RegisterLearner(learner_id=uuid4(), name=f"Learner {n}"))
        elif action == "witness":
            world.centre_cmd(c.AddWitness(witness_id=uuid4(), name=f"Witness {n}"))
        elif action == "qualify":  # the trainee qualifies, or goes back to training
            status = Qualification.QUALIFIED if n % 2 else Qualification.TRAINEE
            change = c.ChangeQualification(
                staff_id=trainee.id, role=Role.ASSESSOR, qualification=status
            )
            history.run(world.centre_admin, change, target=world.centre_id)
        elif action == "staff":
            world.staff(Role.ASSESSOR, f"Assessor {n}")


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    actions=st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.integers(0, 11)), min_size=8, max_size=40
    ),
    every=st.sampled_from([2, 3, 16]),
    erase=st.booleans(),
)
def test_execute_decides_on_the_fold_from_zero(
    app: Eportfolio,
    monkeypatch: pytest.MonkeyPatch,
    actions: list[tuple[str, int]],
    every: int,
    erase: bool,
) -> None:
    app.timeline = Timeline(every=every)  # short histories still fold on from held states
    with monkeypatch.context() as patched:
        spy = Spy(app, patched)
        world = World(app)
        pid = world.enrol(assessor=world.trainee)
        _run(world, pid, actions, world.trainee)
        if erase:  # SubjectErased folds on a held centre: its names read ERASED
            world.centre_cmd(c.SetRetentionPolicy(records_years=0))
            app.execute(world.centre_admin, c.WithdrawLearner(reason="left"), target=pid)
            request = c.EraseLearner(learner_id=world.learner.id, reason="Art. 17 request")
            erase_learner(app, world.centre_admin, world.centre_id, request)
            with pytest.raises(DomainError):  # decided on the held centre, which knows
                app.execute(
                    world.trainee, c.MapEvidence(evidence_id=uuid4(), criteria=("PC1",)), target=pid
                )
            _run(world, pid, [("learner", 1), ("qualify", 1)], world.trainee)
        assert spy.decisions > 0
        spy.unchanged()
        # The held folds are of facts: no name is readable in them, erased or not.
        assert "Lee Learner" not in repr(app.centre_facts(world.centre_id))
