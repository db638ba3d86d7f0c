"""The ledger as a store: idempotency, concurrency, stable topics, reload = same state."""

from __future__ import annotations

import threading
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import MapperDeserialisationError

from adapters.bootstrap import build
from adapters.config import Config
from domain import commands as c
from domain.events import EVENT_TYPES, Environment
from domain.portfolio import fold_portfolio
from domain.spec import Method
from service.codec import decode, encode
from service.errors import IdempotencyKeyReused, VersionMismatch
from service.handlers import Eportfolio
from tests.world import World


def _evidence(title: str = "Call notes") -> c.SubmitEvidence:
    return c.SubmitEvidence(
        evidence_id=uuid4(),
        method=Method.WORK_PRODUCT,
        title=title,
        environment=Environment.WORKPLACE,
        authenticity_declared=True,
    )


def test_replaying_an_idempotency_key_returns_the_first_result_and_writes_nothing(
    app: Eportfolio,
) -> None:
    world = World(app)
    pid = world.enrol()
    cmd = _evidence()
    first = app.execute(world.learner, cmd, target=pid, idempotency_key="k-1")
    head = app.ledger.recorder.max_notification_id()
    again = app.execute(world.learner, cmd, target=pid, idempotency_key="k-1")
    assert (again.event_id, again.position, again.version) == (
        first.event_id,
        first.position,
        first.version,
    )
    assert again.replayed
    assert app.ledger.recorder.max_notification_id() == head


def test_the_same_idempotency_key_with_a_different_command_is_refused(app: Eportfolio) -> None:
    world = World(app)
    pid = world.enrol()
    app.execute(world.learner, _evidence(), target=pid, idempotency_key="k-2")
    with pytest.raises(IdempotencyKeyReused):
        app.execute(world.learner, _evidence("Other"), target=pid, idempotency_key="k-2")


def test_an_expected_version_that_is_stale_is_a_clear_error_not_a_lost_write(
    app: Eportfolio,
) -> None:
    world = World(app)
    pid = world.enrol()
    version = app.portfolio(pid).version
    app.execute(world.learner, _evidence(), target=pid, expected_version=version)
    with pytest.raises(VersionMismatch):
        app.execute(world.learner, _evidence(), target=pid, expected_version=version)
    assert app.portfolio(pid).version == version + 1


def test_concurrent_writers_never_lose_an_event(config: Config) -> None:
    """Eight threads, each with its own application, race to append to one portfolio."""
    setup = build(config)
    world = World(setup)
    pid = world.enrol()
    start = setup.portfolio(pid).version
    writers, per_writer = 8, 5
    results: list[UUID] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(writers, timeout=30)
    apps = [build(config) for _ in range(writers)]  # one application per writer

    def write(app: Eportfolio) -> None:
        try:
            barrier.wait()
            for _ in range(per_writer):
                results.append(app.execute(world.learner, _evidence(), target=pid).event_id)
        except BaseException as error:  # reported below, not hidden
            failures.append(error)

    threads = [threading.Thread(target=write, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for app in apps:
        app.ledger.close()
    assert failures == []
    portfolio = setup.portfolio(pid)
    assert portfolio.version == start + writers * per_writer
    stored = {item.event_id for item in portfolio.evidence.values()}
    assert set(results) <= stored
    assert len(results) == writers * per_writer
    setup.ledger.close()


def test_every_event_type_has_a_unique_stable_topic() -> None:
    topics = [cls.TOPIC for cls in EVENT_TYPES.values()]
    assert len(topics) == len(set(topics))
    assert all(t.startswith("eportfolio.") and "__" not in t for t in topics)
    # Topics name the fact, not the Python module: moving code cannot break the store.
    assert not any("domain.events" in t for t in topics)


def test_an_unknown_topic_is_a_clear_decoding_error() -> None:
    with pytest.raises(MapperDeserialisationError, match=r"eportfolio\.nope"):
        decode("eportfolio.nope", b"{}")


def test_stored_events_round_trip_exactly(app: Eportfolio) -> None:
    world = World(app)
    pid = world.enrol()
    world.observe(pid, ("PC3", "PC4"))
    for item in app.ledger.recorded(pid):
        assert decode(item.event.TOPIC, encode(item.event)) == item.event


def test_a_reloaded_portfolio_equals_the_one_folded_as_it_was_written(
    app: Eportfolio, config: Config
) -> None:
    world = World(app)
    pid = world.enrol()
    world.observe(pid, ("PC3",))
    world.submit(pid)
    written = [item.event for item in app.ledger.recorded(pid)]
    fresh = build(config)
    try:
        assert fresh.portfolio(pid) == fold_portfolio(written)  # type: ignore[arg-type]
    finally:
        fresh.ledger.close()
