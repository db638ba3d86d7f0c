"""Leases on a real PostgreSQL: one holder per role, taken over when the holder's session ends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from adapters.config import Config, postgres_env
from adapters.http.dependencies import open_services
from adapters.http.settings import HttpSettings
from adapters.roles import Mode
from adapters.store.leases import Lease, LeaseSession, holders, lease_key, schema_of
from adapters.streams import build_streams
from adapters.streams.settings import StreamSettings
from tests.conftest import POSTGRES_URL, with_kek

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(postgres_schema: str) -> dict[str, str]:
    return postgres_env(f"{POSTGRES_URL}?schema={postgres_schema}")


@pytest.fixture
def leases(env: dict[str, str]) -> Iterator[list[Lease]]:
    made = [Lease(env, "webhooks") for _ in range(2)]
    yield made
    for lease in made:
        lease.release()


def test_one_of_two_holders_gets_the_lease(leases: list[Lease], env: dict[str, str]) -> None:
    first, second = leases
    assert first.acquire()
    assert not second.acquire()
    assert first.alive()
    assert not second.held
    holder = holders(env, ["webhooks", "projections"])
    assert list(holder) == ["webhooks"]


def test_a_release_lets_the_other_take_it(leases: list[Lease]) -> None:
    first, second = leases
    assert first.acquire()
    first.release()
    assert second.acquire()
    assert not first.acquire()


def test_a_lost_connection_is_a_lost_lease_taken_over_within_seconds(
    leases: list[Lease], env: dict[str, str]
) -> None:
    first, second = leases
    assert first.acquire()
    pid = holders(env, ["webhooks"])["webhooks"].pid
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:  # the holder's link is cut
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    started = time.monotonic()
    while not second.acquire():
        assert time.monotonic() - started < 5, "the lease was not taken over"
        time.sleep(0.1)
    assert not first.alive()  # the old holder finds out at its next check
    assert not first.held


def test_roles_and_schemas_have_separate_leases(env: dict[str, str], postgres_schema: str) -> None:
    other_schema = postgres_env(f"{POSTGRES_URL}?schema={postgres_schema}_other")
    mine = [Lease(env, "webhooks"), Lease(env, "projections"), Lease(other_schema, "webhooks")]
    try:
        assert all(lease.acquire() for lease in mine)
    finally:
        for lease in mine:
            lease.release()


def test_a_waiting_process_gets_the_lease_the_moment_the_holder_goes(
    leases: list[Lease],
) -> None:
    first, second = leases
    assert first.acquire()
    got: list[float] = []
    waiter = threading.Thread(
        target=lambda: got.append(time.monotonic()) if second.acquire(wait=10) else None
    )
    waiter.start()
    time.sleep(0.5)  # the waiter is in PostgreSQL's lock queue now
    gone = time.monotonic()
    first.release()
    waiter.join(timeout=10)
    assert got
    assert got[0] - gone < 0.5  # granted by the server, not found by a poll
    assert second.held


def test_a_wait_times_out_and_can_be_interrupted(leases: list[Lease]) -> None:
    first, second = leases
    assert first.acquire()
    started = time.monotonic()
    assert not second.acquire(wait=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(second.acquire(wait=30)))
    waiter.start()
    time.sleep(0.5)
    second.interrupt()
    waiter.join(timeout=5)
    assert results == [False]


def test_interrupted_waits_never_leave_a_lease_held_after_its_release(env: dict[str, str]) -> None:
    """A process's leases share one session, and its thread's waits are interrupted whenever
    a role is added or removed: an interrupt landing as the lock is granted must not leave
    the lock held twice (a release would then not free it)."""
    key = lease_key(schema_of(env), "webhooks")
    mine, theirs = LeaseSession(env), LeaseSession(env)
    try:
        for attempt in range(20):
            assert theirs.try_acquire([key]) == {key}
            done = threading.Event()

            def interrupting(done: threading.Event = done) -> None:
                while not done.is_set():
                    mine.interrupt()
                    time.sleep(0.001)

            pokes = threading.Thread(target=interrupting)
            pokes.start()
            threading.Timer(0.005 * attempt, lambda: theirs.release(key)).start()
            try:
                while not mine.wait(key, 1.0):
                    pass
            finally:
                done.set()
                pokes.join()
            assert mine.held == {key}
            mine.release(key)
            assert not mine.held
            assert theirs.try_acquire([key]) == {key}, "the released lease was still held"
            theirs.release(key)
    finally:
        mine.close()
        theirs.close()


def test_processes_that_open_one_schema_at_once_do_not_collide(
    postgres_schema: str, tmp_path: Path
) -> None:
    """`serve --workers N` starts its API processes at once, each opening the stores and the
    streams' stores: the creation of what is missing and the `CREATE OR REPLACE FUNCTION`s
    are one process at a time (else: 'tuple concurrently updated', or a duplicate pg_type
    row, and one process fails to start). Threads stand for the processes: each opens
    sessions of its own."""
    config = with_kek(Config(database_url=f"{POSTGRES_URL}?schema={postgres_schema}"),
                      tmp_path / "kek")  # fmt: skip
    for _ in range(2):  # a fresh schema, then one that exists
        errors: list[BaseException] = []
        together = threading.Barrier(3)

        def start(
            errors: list[BaseException] = errors, together: threading.Barrier = together
        ) -> None:
            together.wait()
            try:
                services = open_services(config, HttpSettings(), roles=Mode.NONE)
                try:
                    build_streams(config, services.app.ledger, StreamSettings()).close()
                finally:
                    services.close()
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=start) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
