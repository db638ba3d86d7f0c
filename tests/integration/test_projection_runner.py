"""Stored views kept by batched runners: exactly once, rebuildable, read-your-writes.

Every store-backed test runs on a SQLite file and on a PostgreSQL schema. Views get a
fresh name per test (or per hypothesis example), since the ledger behind `config` is
shared by a test's examples.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.audit.merkle_index import open_merkle_index
from adapters.bootstrap import build, build_projections
from adapters.cli.main import main
from adapters.config import Config
from adapters.store import projection_runner
from adapters.store.projection_runner import ProjectionFailed, ProjectionRunner, Projections
from adapters.store.views import Doc, TrackingConflict, ViewBatch, ViewStore, open_view_store
from domain import commands as c
from domain import events as e
from domain.errors import DomainError
from domain.spec import Method, SpecCatalogue
from projections import audit
from projections.base import Documents
from projections.centre_snapshot import CentreSnapshot
from projections.documents import (
    CENTRE,
    CHAINS,
    COVERAGE,
    PORTFOLIO,
    SUFFICIENCY,
    decode_centre,
    decode_portfolio,
    encode_doc,
)
from projections.judgement import coverage_of, sufficiency_of
from projections.portfolio_view import PortfolioStateProjection
from service.codec import Recorded
from service.handlers import Eportfolio
from tests.world import World

Docs = dict[tuple[str, str], tuple[str, bytes]]
Step = tuple[str, int, tuple[str, ...], int]
CRITERIA = ("PC1", "PC3", "PC5", "K1", "K2", "a", "PC99")
KINDS = (
    "enrol", "submit", "map", "observe", "decide", "countersign",
    "withdraw", "revoke", "sample", "policy", "qualify", "learner",
    "refer", "respond", "accept", "sign_off", "certify", "appeal", "complete",
)  # fmt: skip


# ---- helpers ---------------------------------------------------------------------------


@pytest.fixture
def app(config: Config) -> Iterator[Eportfolio]:
    app = build(config)
    yield app
    app.ledger.close()


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def view_name() -> str:
    return f"v{uuid4().hex[:12]}"


def runner_for(
    config: Config,
    app: Eportfolio,
    stack: ExitStack,
    *,
    name: str | None = None,
    projection: PortfolioStateProjection | FailsAt | None = None,
    batch_size: int = 1000,
    store: ViewStore | None = None,
) -> ProjectionRunner:
    """A runner over its own view, closed (thread stopped, store closed) by `stack`."""
    store = store or open_view_store(config, name or view_name())
    runner = ProjectionRunner(
        app.ledger,
        projection or PortfolioStateProjection(app.specs),
        store,
        batch_size=batch_size,
    )
    stack.callback(runner.close)
    return runner


def docs_of(store: ViewStore) -> Docs:
    """Every document in a view, paged through as a query would."""
    found: Docs = {}
    for kind in store.kinds():
        after = ""
        while page := store.list(kind, None, after, limit=50):
            found.update({(d.kind, d.key): (d.centre_id, d.body) for d in page})
            after = page[-1].key
    return found


@st.composite
def steps(draw: st.DrawFn) -> list[Step]:
    """Abstract steps (kind, who, criteria, pick); ids are resolved when they run."""
    step = st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 3),
        st.lists(st.sampled_from(CRITERIA), min_size=1, max_size=3, unique=True).map(tuple),
        st.integers(0, 50),
    )
    return draw(st.lists(step, min_size=1, max_size=12))


class Scenario:
    """A World whose portfolios take random valid (or refused) commands."""

    def __init__(self, app: Eportfolio) -> None:
        self.world = World(app)
        self.portfolios = [self.world.enrol(assessor=self.world.trainee)]
        self.evidence: list[UUID] = []
        self.decisions: list[UUID] = []
        self.samples: list[UUID] = []

    def run(self, plan: Sequence[Step]) -> None:
        for step in plan:
            self.step(*step)

    def step(self, kind: str, who: int, criteria: tuple[str, ...], pick: int) -> None:
        w = self.world
        if kind in ("enrol", "policy", "qualify", "learner", "complete"):
            self._centre_step(kind, pick)
            return
        ev = self.evidence[pick % len(self.evidence)] if self.evidence else uuid4()
        dec = self.decisions[pick % len(self.decisions)] if self.decisions else uuid4()
        sample = self.samples[pick % len(self.samples)] if self.samples else uuid4()
        env = (e.Environment.WORKPLACE, e.Environment.SIMULATION)[pick % 2]
        commands: dict[str, Callable[[], c.Command]] = {
            "submit": lambda: c.SubmitEvidence(
                evidence_id=uuid4(),
                method=Method.WORK_PRODUCT,
                title="Notes",
                environment=env,
                customer_ref=f"c{pick}",
                authenticity_declared=True,
            ),
            "map": lambda: c.MapEvidence(evidence_id=ev, criteria=criteria),
            "observe": lambda: c.RecordObservation(
                evidence_id=uuid4(), environment=env, criteria=criteria
            ),
            "decide": lambda: c.RecordDecision(
                decision_id=uuid4(), outcome=e.Outcome.MET, criteria=criteria, evidence_ids=(ev,)
            ),
            "countersign": lambda: c.Countersign(decision_id=dec),
            "withdraw": lambda: c.WithdrawEvidence(evidence_id=ev, reason="Wrong learner"),
            "revoke": lambda: c.RevokeDecision(decision_id=dec, reason="Re-assess"),
            "sample": lambda: c.RecordIqaSample(
                sample_id=uuid4(),
                stage=e.SampleStage.INTERIM,
                decision_ids=(dec,),
                outcome=e.SampleOutcome.AGREED,
            ),
            "refer": lambda: c.RecordEvSample(
                sample_id=uuid4(),
                decision_ids=(dec,),
                outcome=e.SampleOutcome.REFERRED,
                actions=("Re-observe",) * (pick % 2),
            ),
            "respond": lambda: c.RespondToSample(sample_id=sample, response="Re-observed."),
            "accept": lambda: c.AcceptSampleResponse(sample_id=sample),
            "sign_off": lambda: c.SignOffUnit(feedback="Complete."),
            "certify": c.CertifyUnit,
            "appeal": lambda: c.OpenAppeal(appeal_id=uuid4(), reason="Appeal"),
        }
        command = commands[kind]()
        actor = (w.learner, w.trainee, w.assessor, w.iqa)[who]
        if kind in ("refer", "accept"):
            actor = w.ev
        elif kind in ("certify", "appeal"):
            actor = w.centre_admin
        try:
            w.app.execute(actor, command, target=self.portfolios[pick % len(self.portfolios)])
        except DomainError:
            return
        if isinstance(command, c.SubmitEvidence | c.RecordObservation):
            self.evidence.append(command.evidence_id)
        if isinstance(command, c.RecordDecision):
            self.decisions.append(command.decision_id)
        if isinstance(command, c.RecordIqaSample | c.RecordEvSample):
            self.samples.append(command.sample_id)

    def _centre_step(self, kind: str, pick: int) -> None:
        w = self.world
        if kind == "enrol":
            self.portfolios.append(w.enrol(assessor=(w.trainee, w.assessor)[pick % 2]))
        elif kind == "complete":  # a portfolio ready to certify, for the closing steps
            pid = w.complete(sign_off=False)  # a "sign_off" step may follow
            self.portfolios.append(pid)
            self.decisions += list(w.app.portfolio(pid).decisions)
        elif kind == "policy":
            thresholds = c.SufficiencyThresholds(min_occasions=1 + pick % 3)
            w.centre_cmd(c.SetSufficiencyPolicy(default=thresholds))
        elif kind == "qualify":
            status = (e.Qualification.QUALIFIED, e.Qualification.TRAINEE)[pick % 2]
            w.centre_cmd(
                c.ChangeQualification(
                    staff_id=w.trainee.id, role=e.Role.ASSESSOR, qualification=status
                )
            )
        else:
            w.centre_cmd(c.RegisterLearner(learner_id=uuid4(), name=f"Learner {pick}"))


def save_learners(app: Eportfolio, centre_id: UUID, count: int, *, register: bool) -> None:
    """Many centre events in one save, quicker than commands (which reload the stream)."""
    version = 0 if register else app.centre(centre_id).version
    admin, now, today = uuid4(), datetime.now(UTC), date.today()
    records: list[Recorded] = []
    for i in range(count):
        version += 1
        event: e.CentreEvent = (
            e.CentreRegistered(
                event_id=uuid4(), actor_id=admin, actor_role=e.Role.ADMIN, recorded_at=now,
                effective_on=today, centre_id=centre_id, name="Bulk College",
            )
            if register and i == 0
            else e.LearnerRegistered(
                event_id=uuid4(), actor_id=admin, actor_role=e.Role.ADMIN, recorded_at=now,
                effective_on=today, centre_id=centre_id, learner_id=uuid4(), name=f"L{i}",
            )
        )  # fmt: skip
        records.append(Recorded(centre_id, version, event))
    app.ledger.save(*records)


class FailsAt:
    """The real projection, but `apply` raises at one position: a crash mid-batch."""

    def __init__(self, inner: PortfolioStateProjection, position: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.fail_at = position

    def apply(self, position: int, event: e.Event, docs: Documents) -> None:
        if position == self.fail_at:
            raise Crash(position)
        self.inner.apply(position, event, docs)

    def flush(self, docs: Documents) -> None:
        self.inner.flush(docs)


class Crash(Exception):
    pass


class CountingStore:
    """A view store that counts the transactions written through it."""

    def __init__(self, inner: ViewStore) -> None:
        self.inner = inner
        self.name = inner.name
        self.commits = 0

    def position(self) -> int:
        return self.inner.position()

    def wait(self, position: int, timeout: float) -> bool:
        return self.inner.wait(position, timeout)

    def begin(self, position: int) -> ViewBatch:
        return ViewBatch(self, position)

    def get(self, kind: str, key: str) -> bytes | None:
        return self.inner.get(kind, key)

    def list(
        self, kind: str, centre_id: str | None = None, after_key: str = "", limit: int = 100
    ) -> Sequence[Doc]:
        return self.inner.list(kind, centre_id, after_key, limit)

    def kinds(self) -> Sequence[str]:
        return self.inner.kinds()

    def write(
        self,
        expected: int,
        position: int,
        docs: Sequence[Doc],
        deleted: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.commits += 1
        self.inner.write(expected, position, docs, deleted)

    def drop(self) -> None:
        self.inner.drop()

    def close(self) -> None:
        self.inner.close()


# ---- rebuild equals live ---------------------------------------------------------------


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=steps(), batch_size=st.integers(1, 7))
def test_rebuilding_from_zero_gives_exactly_the_docs_the_live_projection_holds(
    config: Config, plan: list[Step], batch_size: int
) -> None:
    app = build(config)
    with ExitStack() as stack:
        stack.callback(app.ledger.close)
        live = runner_for(config, app, stack, batch_size=batch_size)
        live.start()
        scenario = Scenario(app)
        scenario.run(plan)
        assert live.wait(live.head(), timeout=10)
        held = docs_of(live.store)

        live.rebuild()

        assert docs_of(live.store) == held
        centre = app.centre(scenario.world.centre_id)
        assert decode_centre(held[CENTRE, str(centre.centre_id)][1]).state() == centre
        for portfolio_id in scenario.portfolios:
            portfolio = app.portfolio(portfolio_id)
            assert decode_portfolio(held[PORTFOLIO, str(portfolio_id)][1]) == portfolio
            spec = app.spec_of(portfolio)
            expected: dict[str, object] = {  # the live view derives only what events change
                COVERAGE: coverage_of(portfolio, centre, spec),
                SUFFICIENCY: sufficiency_of(portfolio, centre, spec),
                CHAINS: audit.chains_with_context(portfolio, audit.names(centre)),
            }
            for kind, report in expected.items():
                assert held[kind, str(portfolio_id)] == (str(centre.centre_id), encode_doc(report))


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=steps(), stop_at=st.integers(0, 12), batch_size=st.integers(1, 5))
def test_stopping_the_follower_anywhere_and_restarting_gives_the_same_docs(
    config: Config, plan: list[Step], stop_at: int, batch_size: int
) -> None:
    app = build(config)
    with ExitStack() as stack:
        stack.callback(app.ledger.close)
        scenario = Scenario(app)
        scenario.run(plan[:stop_at])
        save_learners(app, scenario.world.centre_id, 40, register=False)
        interrupted = runner_for(config, app, stack, batch_size=batch_size)
        interrupted.start()  # catching up in small batches...
        interrupted.stop()  # ...stopped wherever it had got to
        stopped_at = interrupted.position
        assert interrupted.store.position() == stopped_at
        scenario.run(plan[stop_at:])
        interrupted.start()
        assert interrupted.wait(interrupted.head(), timeout=60)  # batches of 1 on a busy machine

        reference = runner_for(config, app, stack)
        reference.catch_up()

        assert docs_of(interrupted.store) == docs_of(reference.store)


# ---- exactly once ----------------------------------------------------------------------


def test_a_batch_that_fails_midway_moves_neither_docs_nor_tracking(
    config: Config, app: Eportfolio, stack: ExitStack
) -> None:
    world = World(app)
    portfolio_id = world.enrol()
    world.observe(portfolio_id, ("PC3",))
    projection = FailsAt(PortfolioStateProjection(app.specs), position=-1)
    runner = runner_for(config, app, stack, projection=projection)
    committed = runner.catch_up()
    before = docs_of(runner.store)
    world.submit(portfolio_id)
    world.observe(portfolio_id, ("PC5",))
    world.submit(portfolio_id)
    projection.fail_at = app.ledger.position_of(portfolio_id, 4)  # the batch's second event

    with pytest.raises(Crash):
        runner.catch_up()

    assert runner.store.position() == runner.position == committed
    assert docs_of(runner.store) == before
    projection.fail_at = -1  # the "restarted process": same projection object, same view
    runner.catch_up()
    reference = runner_for(config, app, stack)
    reference.catch_up()
    assert docs_of(runner.store) == docs_of(reference.store)
    assert decode_portfolio(runner.store.get(PORTFOLIO, str(portfolio_id)) or b"").version == 5


class CrashesAt(PortfolioStateProjection):
    """The real projection (it `LooksAhead`), but `apply` raises at one position."""

    def __init__(self, specs: SpecCatalogue, position: int) -> None:
        super().__init__(specs)
        self.fail_at = position

    def apply(self, position: int, event: e.Event, docs: Documents) -> None:
        if position == self.fail_at:
            raise Crash(position)
        super().apply(position, event, docs)


def test_a_rebuild_with_the_collector_paused_writes_the_same_docs_and_restores_it(
    config: Config, app: Eportfolio, stack: ExitStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector runs per batch (young, and in full every few) and is back on after;
    one already off before the rebuild stays off."""
    world = World(app)
    for _ in range(3):
        portfolio_id = world.enrol()
        world.observe(portfolio_id, ("PC3",))
        world.submit(portfolio_id)
    reference = runner_for(config, app, stack)
    reference.rebuild(batch_size=2)
    monkeypatch.setattr(projection_runner, "FULL_COLLECTION_EVERY", 2)
    generations: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            generations.append(info["generation"])

    paused = runner_for(config, app, stack)
    gc.callbacks.append(seen)
    try:
        paused.rebuild(batch_size=2, pause_gc=True)
    finally:
        gc.callbacks.remove(seen)
    assert docs_of(paused.store) == docs_of(reference.store)
    assert gc.isenabled()
    batches = -(-(app.ledger.recorder.max_notification_id() or 0) // 2)
    assert generations == [2 if n % 2 == 0 else 1 for n in range(1, batches + 1)]
    gc.disable()
    try:
        paused.rebuild(pause_gc=True)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_rebuild_that_crashes_after_putting_derivations_off_leaves_nothing_stale(
    config: Config, app: Eportfolio, stack: ExitStack
) -> None:
    """A rebuild puts off deriving a portfolio the next batch touches; if it dies there,
    another process following the log from the stored position (a batch per event, so
    derivers are skipped wherever events allow) still ends with every document right."""
    world = World(app)
    portfolio_id = world.enrol()
    world.observe(portfolio_id, ("PC3",))
    other = world.enrol()  # batches without the portfolio: its documents get stored
    world.submit(other)
    world.submit(other)
    world.observe(portfolio_id, ("PC5",))
    world.submit(portfolio_id)  # untagged evidence: coverage skips it where stored
    reference = runner_for(config, app, stack)
    reference.rebuild(batch_size=1)
    expected = docs_of(reference.store)
    for batch_size in (2, 3):
        for crash_at in sorted(app.ledger.positions_of(portfolio_id).values())[1:]:
            name = view_name()
            crashing = CrashesAt(app.specs, crash_at)
            with pytest.raises(Crash):
                runner_for(config, app, stack, name=name, projection=crashing).rebuild(
                    batch_size=batch_size
                )
            restarted = runner_for(config, app, stack, name=name)
            restarted.catch_up(batch_size=1)
            assert docs_of(restarted.store) == expected, (batch_size, crash_at)


def test_two_runners_on_one_view_never_apply_an_event_twice(
    config: Config, app: Eportfolio, stack: ExitStack
) -> None:
    world = World(app)
    name = view_name()
    first = runner_for(config, app, stack, name=name, batch_size=3)
    second = runner_for(config, app, stack, name=name, batch_size=2)
    first.start()
    second.start()
    portfolio_id = world.enrol()
    for _ in range(6):
        world.submit(portfolio_id)
    head = first.head()
    assert first.wait(head, timeout=10)
    assert second.wait(head, timeout=10)

    stored = first.store.get(PORTFOLIO, str(portfolio_id))
    assert stored is not None
    assert decode_portfolio(stored) == app.portfolio(portfolio_id)
    assert decode_portfolio(stored).version == 7


def test_a_batch_started_from_a_stale_position_is_refused(
    config: Config, app: Eportfolio, stack: ExitStack
) -> None:
    World(app)
    runner = runner_for(config, app, stack)
    runner.catch_up()
    stale = runner.store.begin(0)
    stale.put(CENTRE, "x", b"{}")
    with pytest.raises(TrackingConflict):
        stale.commit(runner.head())
    assert runner.store.get(CENTRE, "x") is None


# ---- batching --------------------------------------------------------------------------


def test_catch_up_commits_a_batch_of_events_per_transaction(
    config: Config, app: Eportfolio, stack: ExitStack
) -> None:
    save_learners(app, uuid4(), 2_500, register=True)
    store = CountingStore(open_view_store(config, view_name()))
    runner = runner_for(config, app, stack, store=store)
    done: list[tuple[int, int]] = []

    runner.catch_up(batch_size=1_000, progress=lambda d, t: done.append((d, t)))

    assert store.commits == 3
    assert done == [(1_000, 2_500), (2_000, 2_500), (2_500, 2_500)]
    assert runner.position == store.position() == 2_500


def test_a_thousand_events_for_one_portfolio_decode_and_encode_its_state_once() -> None:
    docs = CountingDocs()
    projection = PortfolioStateProjection(SpecCatalogue(), derivers=(), event_derivers=())
    centre_id, portfolio_id, actor = uuid4(), uuid4(), uuid4()
    now, today, role = datetime.now(UTC), date.today(), e.Role.ASSESSOR
    registered = e.CentreRegistered(
        event_id=uuid4(), actor_id=actor, actor_role=role, recorded_at=now, effective_on=today,
        centre_id=centre_id, name="C",
    )  # fmt: skip
    enrolled = e.LearnerEnrolled(
        event_id=uuid4(), actor_id=actor, actor_role=role, recorded_at=now, effective_on=today,
        portfolio_id=portfolio_id, centre_id=centre_id, learner_id=uuid4(), unit_code="U1",
        spec_version=1, spec_hash="0" * 64, assessor_id=actor, iqa_id=uuid4(),
    )  # fmt: skip
    projection.apply(1, registered, docs)
    projection.apply(2, enrolled, docs)
    projection.flush(docs)
    docs.gets.clear()
    docs.puts.clear()

    for position in range(3, 1_003):
        submitted = e.EvidenceSubmitted(
            event_id=uuid4(), actor_id=actor, actor_role=role, recorded_at=now,
            effective_on=today, portfolio_id=portfolio_id, evidence_id=uuid4(),
            method=Method.WORK_PRODUCT, title="t", environment=e.Environment.WORKPLACE,
            authenticity_declared=True,
        )  # fmt: skip
        projection.apply(position, submitted, docs)
    projection.flush(docs)

    assert docs.gets == [(PORTFOLIO, str(portfolio_id))]
    assert docs.puts == [(PORTFOLIO, str(portfolio_id))]
    assert len(decode_portfolio(docs.stored[PORTFOLIO, str(portfolio_id)]).evidence) == 1_000


class CountingDocs:
    """An in-memory `Documents` that records what the projection reads and writes."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], bytes] = {}
        self.gets: list[tuple[str, str]] = []
        self.puts: list[tuple[str, str]] = []

    def get(self, kind: str, key: str) -> bytes | None:
        self.gets.append((kind, key))
        return self.stored.get((kind, key))

    def put(self, kind: str, key: str, body: bytes, *, centre_id: str = "") -> None:
        self.puts.append((kind, key))
        self.stored[kind, key] = body

    def delete(self, kind: str, key: str) -> None:
        self.stored.pop((kind, key), None)


def test_stored_states_round_trip_to_equal_states_and_equal_bytes(app: Eportfolio) -> None:
    world = World(app)
    portfolio_id = world.enrol(assessor=world.trainee)
    evidence = world.observe(portfolio_id, ("PC3", "PC5", "PC4"), by=world.trainee)
    world.decide(portfolio_id, ("PC3",), (evidence,), by=world.trainee)
    world.centre_cmd(c.SetSufficiencyPolicy())
    portfolio, centre = app.portfolio(portfolio_id), app.centre(world.centre_id)

    body = encode_doc(portfolio)
    assert decode_portfolio(body) == portfolio
    assert encode_doc(decode_portfolio(body)) == body
    snapshot = CentreSnapshot.of(centre)
    assert decode_centre(encode_doc(snapshot)).state() == centre


# ---- read-your-writes ------------------------------------------------------------------


def test_wait_returns_as_soon_as_a_write_in_this_process_is_projected(
    config: Config, app: Eportfolio, stack: ExitStack
) -> None:
    world = World(app)
    runner = runner_for(config, app, stack)
    runner.start()
    assert runner.wait(runner.head(), timeout=10)
    latencies = []
    for i in range(10):
        written = world.centre_cmd(c.RegisterLearner(learner_id=uuid4(), name=f"Learner {i}"))
        started = time.perf_counter()
        assert runner.wait(written.position, timeout=2)
        latencies.append(time.perf_counter() - started)

    assert statistics.median(latencies) < 0.02  # the library's wait() polls from 100 ms
    assert max(latencies) < 0.5


def test_wait_returns_false_on_timeout_for_a_position_never_written(
    config: Config, app: Eportfolio, stack: ExitStack
) -> None:
    World(app)
    views = Projections([runner_for(config, app, stack)])
    views.start()
    head = next(iter(views)).head()
    assert views.wait_all(head, timeout=10)

    started = time.perf_counter()
    assert not views.wait_all(head + 1_000, timeout=0.2)
    assert 0.2 <= time.perf_counter() - started < 1


def test_wait_raises_once_the_follower_has_stopped_on_an_error(
    config: Config, app: Eportfolio, stack: ExitStack
) -> None:
    world = World(app)
    projection = FailsAt(PortfolioStateProjection(app.specs), position=-1)
    runner = runner_for(config, app, stack, projection=projection)
    runner.start()
    assert runner.wait(runner.head(), timeout=10)
    projection.fail_at = runner.head() + 1
    written = world.centre_cmd(c.SetSufficiencyPolicy())  # takes no id: the next position

    with pytest.raises(ProjectionFailed):
        runner.wait(written.position, timeout=10)
    assert isinstance(runner.error, Crash)
    assert runner.position == written.position - 1


def test_wait_sees_a_view_projected_by_another_runner_with_its_own_store(
    config: Config, app: Eportfolio, stack: ExitStack
) -> None:
    """An API-only process waits on the stored position, whichever process projected it."""
    world = World(app)
    name = view_name()
    follower = runner_for(config, app, stack, name=name)
    idle = runner_for(config, app, stack, name=name)  # never started, as in an API process
    follower.start()
    assert idle.wait(follower.head(), timeout=10)
    latencies = []
    for i in range(5):
        written = world.centre_cmd(c.RegisterLearner(learner_id=uuid4(), name=f"Learner {i}"))
        assert not idle.reached(written.position) or follower.position >= written.position
        started = time.perf_counter()
        assert idle.wait(written.position, timeout=5)
        latencies.append(time.perf_counter() - started)
        assert idle.reached(written.position)

    assert statistics.median(latencies) < 0.5  # woken by the commit, not a 1 s poll
    assert not idle.wait(idle.head() + 1_000, timeout=0.2)


# ---- composition and CLI ---------------------------------------------------------------


def test_the_cli_rebuilds_the_views_and_reports_their_positions(
    config: Config,
    app: Eportfolio,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    World(app)
    head = app.ledger.recorder.max_notification_id()
    monkeypatch.setenv("EPORTFOLIO_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("EPORTFOLIO_DATABASE_URL", config.database_url or "")
    monkeypatch.setenv("EPORTFOLIO_KEK_FILE", str(config.kek_path))

    assert main(["projections", "rebuild"]) == 0
    assert main(["projections", "status", "--name", "portfolio_state"]) == 0
    assert main(["projections", "status", "--name", "nothing"]) == 2

    out = capsys.readouterr().out
    assert f"portfolio_state │ {head}" in out
    with build_projections(config, app) as views:
        assert views["portfolio_state"].position == head
    with open_merkle_index(config) as index:  # caught up from the rebuild's read
        assert index.head().position == head
        assert index.head().size == len(list(app.ledger.notifications()))
