"""Law: any sequence of accepted commands, reloaded from the store, rebuilds the same state."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bootstrap import build
from adapters.config import Config
from domain import commands as c
from domain.centre import fold_centre
from domain.errors import DomainError
from domain.events import (
    CentreEvent,
    Environment,
    Outcome,
    PortfolioEvent,
    SampleOutcome,
    SampleStage,
)
from domain.portfolio import PortfolioState
from domain.spec import Method
from tests.world import World

CRITERIA = ("PC1", "PC3", "PC5", "PC7", "K1", "K2", "a", "b", "PC99")


@st.composite
def steps(draw: st.DrawFn) -> list[tuple[str, int, tuple[str, ...], int, int]]:
    """Abstract steps: (kind, who, criteria, pick, days ago); ids are resolved at run time."""
    kinds = st.sampled_from(
        ["submit", "map", "observe", "decide", "countersign", "withdraw", "revoke", "sample"]
    )
    step = st.tuples(
        kinds,
        st.integers(0, 3),
        st.lists(st.sampled_from(CRITERIA), min_size=1, max_size=3, unique=True).map(tuple),
        st.integers(0, 50),
        st.integers(0, 40),
    )
    return draw(st.lists(step, min_size=1, max_size=14))


def _command(
    kind: str, *, criteria: tuple[str, ...], pick: int, on: date, ev: UUID, dec: UUID
) -> c.Command:
    env = (Environment.WORKPLACE, Environment.SIMULATION)[pick % 2]
    match kind:
        case "submit":
            return c.SubmitEvidence(
                evidence_id=uuid4(),
                method=Method.WORK_PRODUCT,
                title="Notes",
                environment=env,
                customer_ref=f"c{pick}",
                authenticity_declared=pick % 5 != 0,
                effective_on=on,
            )
        case "map":
            return c.MapEvidence(evidence_id=ev, criteria=criteria)
        case "observe":
            return c.RecordObservation(
                evidence_id=uuid4(), environment=env, criteria=criteria, effective_on=on
            )
        case "decide":
            return c.RecordDecision(
                decision_id=uuid4(), outcome=Outcome.MET, criteria=criteria, evidence_ids=(ev,)
            )
        case "countersign":
            return c.Countersign(decision_id=dec)
        case "withdraw":
            return c.WithdrawEvidence(evidence_id=ev, reason="Wrong learner")
        case "revoke":
            return c.RevokeDecision(decision_id=dec, reason="Re-assess")
    return c.RecordIqaSample(
        sample_id=uuid4(),
        stage=SampleStage.INTERIM,
        decision_ids=(dec,),
        outcome=SampleOutcome.AGREED,
    )


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=steps())
def test_any_sequence_of_accepted_commands_reloads_to_the_same_state(
    config: Config, plan: list[tuple[str, int, tuple[str, ...], int, int]]
) -> None:
    app = build(config)
    world = World(app)
    trainee_pid = world.enrol(assessor=world.trainee)
    state: PortfolioState | None = app.portfolio(trainee_pid)
    assert state is not None
    evidence: list[UUID] = []
    decisions: list[UUID] = []
    actors = (world.learner, world.trainee, world.assessor, world.iqa)
    today = datetime.now(UTC).date()
    for kind, who, criteria, pick, ago in plan:
        on = today - timedelta(days=ago)
        ev = evidence[pick % len(evidence)] if evidence else uuid4()
        dec = decisions[pick % len(decisions)] if decisions else uuid4()
        command = _command(kind, criteria=criteria, pick=pick, on=on, ev=ev, dec=dec)
        try:
            result = app.execute(actors[who], command, target=trainee_pid)
        except DomainError:
            continue
        assert isinstance(result.event, PortfolioEvent)
        state.apply(result.event)  # the state as written, folded in memory
        if isinstance(command, c.SubmitEvidence | c.RecordObservation):
            evidence.append(command.evidence_id)
        if isinstance(command, c.RecordDecision):
            decisions.append(command.decision_id)

    reloaded = build(config)
    try:
        assert reloaded.portfolio(trainee_pid) == state
        centre_events = reloaded.ledger.centre_events(world.centre_id)
        assert all(isinstance(e, CentreEvent) for e in centre_events)
        assert fold_centre(centre_events) == app.centre(world.centre_id)
    finally:
        reloaded.ledger.close()
        app.ledger.close()
