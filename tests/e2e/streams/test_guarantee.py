"""The guarantee: at-least-once, in log order, no gap, while many writers commit.

A reader that has seen position p must already have seen every event that will ever sit
before p. That holds only if commit order equals position order: PostgreSQL's recorder
takes `LOCK TABLE ... IN EXCLUSIVE MODE` before each insert, SQLite has a single writer.
These tests hold one transaction open (from a separate connection, inside the lock) while
later writers try to commit, and check that the tailing readers (the live tail and a
polling feed client) see nothing past it until it commits, then everything in order. A
control shows the same readers *would* skip a late commit if the lock were bypassed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql

from adapters.bootstrap import build
from adapters.config import Config
from adapters.store.sql import postgres_conninfo
from adapters.streams.feed import EventLog
from adapters.streams.tail import Arrival, LogTail
from domain.events import CentreRegistered, Role
from service.codec import Recorded
from service.handlers import Eportfolio
from tests.conftest import POSTGRES_URL, with_kek
from tests.e2e.streams.conftest import BASE_URL, positions
from tests.world import World

SETTLE = 0.4  # seconds a blocked writer is given to (wrongly) get through


class Readers:
    """A live tail and a polling feed client, each recording the positions it receives.

    Both follow from the head read once in `running()`, before it returns: a reader that
    read it in its own thread could read it after a writer the test starts next had
    committed, and miss that write (the feed client did, under load: 2 runs in 40).
    """

    def __init__(self, app: Eportfolio) -> None:
        self.log = EventLog(app.ledger, BASE_URL)
        self.tail = LogTail(self.log)
        self.tailed: list[int] = []
        self.polled: list[int] = []
        self.tail.add_listener(self._heard)
        self._done = threading.Event()
        self._start = 0
        self._poller = threading.Thread(target=self._poll, name="feed-poller")

    def _heard(self, arrival: Arrival) -> None:
        event = arrival.event()
        if event is not None:
            self.tailed.append(event.position)

    def _poll(self) -> None:
        after = self._start
        while not self._done.is_set():
            page = self.log.read(after, 50)
            self.polled += [e.position for e in page.events]
            after = page.next_after
            if page.at_end:
                time.sleep(0.002)

    @contextmanager
    def running(self) -> Iterator[Readers]:
        self._start = self.log.head()
        self.tail.start(after=self._start)
        self._poller.start()
        try:
            yield self
        finally:
            self._done.set()
            self._poller.join()
            self.tail.stop()

    def wait_for(self, position: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (not self.polled or self.polled[-1] < position) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert self.tail.wait_beyond(position - 1, max(0.0, deadline - time.monotonic()))


def centre_registered(app: Eportfolio) -> tuple[Recorded, bytes]:
    """A valid stored event on a new stream, as the recorder would store it."""
    centre_id = uuid4()
    event = CentreRegistered(
        event_id=uuid4(), actor_id=uuid4(), actor_role=Role.ADMIN,
        recorded_at=datetime.now(UTC), effective_on=datetime.now(UTC).date(),
        centre_id=centre_id, name="Late Commit College",
    )  # fmt: skip
    recorded = Recorded(centre_id, 1, event)
    return recorded, app.ledger.mapper.to_stored_event(recorded).state


@contextmanager
def held_postgres_insert(config: Config, app: Eportfolio, *, lock: bool) -> Iterator[int]:
    """Insert an event in a transaction left open until the block ends; yields its position."""
    recorder = app.ledger.recorder
    table = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)  # type: ignore[attr-defined]
    recorded, state = centre_registered(app)
    with psycopg.connect(postgres_conninfo(config.eventsourcing_env())) as conn:
        if lock:
            conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
        row = conn.execute(
            sql.SQL(
                "INSERT INTO {} (originator_id, originator_version, topic, state) "
                "VALUES (%s, 1, %s, %s) RETURNING notification_id"
            ).format(table),
            (recorded.originator_id, recorded.event.TOPIC, state),
        ).fetchone()
        assert row is not None
        yield int(row[0])
        conn.commit()


@contextmanager
def held_sqlite_insert(config: Config, app: Eportfolio) -> Iterator[int]:
    recorded, state = centre_registered(app)
    conn = sqlite3.connect(config.data_dir / "eportfolio.sqlite", isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")  # SQLite's one write lock, taken now
        cursor = conn.execute(
            "INSERT INTO stored_events VALUES (?, 1, ?, ?)",
            (recorded.originator_id.hex, recorded.event.TOPIC, state),
        )
        assert cursor.lastrowid is not None
        yield cursor.lastrowid
        conn.execute("COMMIT")
    finally:
        conn.close()


def writers(world: World, count: int) -> tuple[list[threading.Thread], list[UUID]]:
    """Threads each submitting evidence to a portfolio of its own, and what they wrote."""
    portfolios = [world.enrol() for _ in range(count)]
    done: list[UUID] = []

    def write(portfolio: UUID) -> None:
        done.append(world.submit(portfolio))

    threads = [threading.Thread(target=write, args=(p,)) for p in portfolios]
    return threads, done


@contextmanager
def held(config: Config, app: Eportfolio, *, lock: bool = True) -> Iterator[int]:
    if config.uses_postgres:
        with held_postgres_insert(config, app, lock=lock) as position:
            yield position
    else:
        with held_sqlite_insert(config, app) as position:
            yield position


def test_a_transaction_held_open_holds_back_later_commits_and_no_reader_skips_it(
    config: Config, app: Eportfolio, world: World
) -> None:
    threads, done = writers(world, 4)
    before = positions(app)[-1]
    with Readers(app).running() as readers:
        with held(config, app) as late:
            for thread in threads:
                thread.start()
            time.sleep(SETTLE)
            assert done == [], "a writer committed past the open transaction"
            assert readers.tailed == []
            assert readers.polled == []
        for thread in threads:
            thread.join(timeout=10)
        assert len(done) == 4
        expected = positions(app, before)
        assert expected[0] == late  # the held insert got the first position after `before`
        readers.wait_for(expected[-1])
    assert readers.tailed == expected
    assert readers.polled == expected


@pytest.fixture
def postgres_app(postgres_schema: str, tmp_path: Path) -> Iterator[tuple[Config, Eportfolio]]:
    config = with_kek(
        Config(database_url=f"{POSTGRES_URL}?schema={postgres_schema}"), tmp_path / "kek"
    )
    app = build(config)
    World(app)
    yield config, app
    app.ledger.close()


@pytest.mark.postgres
def test_without_the_table_lock_a_late_commit_would_be_skipped(
    postgres_app: tuple[Config, Eportfolio],
) -> None:
    """The control: two raw inserts that skip the lock commit out of position order, and
    the same readers miss the earlier position. (The library's writers cannot do this: their
    EXCLUSIVE lock also waits for any open insert.) SQLite has one writer: no control."""
    config, app = postgres_app
    recorder = app.ledger.recorder
    channel = sql.Identifier(recorder.channel_name)  # type: ignore[attr-defined]
    before = positions(app)[-1]
    with Readers(app).running() as readers:
        with held(config, app, lock=False) as late:
            with held(config, app, lock=False) as later:
                pass  # commits first
            with psycopg.connect(postgres_conninfo(config.eventsourcing_env())) as conn:
                conn.execute(sql.SQL("NOTIFY {}").format(channel))
            readers.wait_for(later)
        with psycopg.connect(postgres_conninfo(config.eventsourcing_env())) as conn:
            conn.execute(sql.SQL("NOTIFY {}").format(channel))
        time.sleep(SETTLE)
    assert late < later
    assert positions(app, before) == [late, later]
    assert readers.tailed == readers.polled == [later]


def test_many_concurrent_writers_and_the_readers_see_exactly_the_log_in_order(
    app: Eportfolio, world: World
) -> None:
    portfolios = [world.enrol() for _ in range(8)]  # a stream each: no version conflicts
    before = positions(app)[-1]
    errors: list[BaseException] = []

    def write(portfolio: UUID, count: int) -> None:
        try:
            for _ in range(count):
                world.submit(portfolio)
                world.observe(portfolio, ("PC1",))
        except BaseException as error:
            errors.append(error)
            raise

    threads = [threading.Thread(target=write, args=(p, 10)) for p in portfolios]
    with Readers(app).running() as readers:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
        expected = positions(app, before)
        assert len(expected) == 8 * 10 * 2
        readers.wait_for(expected[-1])
    assert readers.tailed == expected
    assert readers.polled == expected


def test_the_readers_follow_from_where_they_were_started_however_late_their_threads_run(
    app: Eportfolio, world: World
) -> None:
    """The readers' own set-up: a write committed after `running()` is entered but before
    a reader's thread first runs is still read. (The feed client once read the head in its
    thread, after the first writers had committed, and started past their events.)"""
    portfolio = world.enrol()
    before = positions(app)[-1]
    readers = Readers(app)
    gate = threading.Event()
    poll = readers._poll

    def late_poll() -> None:  # a thread the scheduler runs only after the write
        gate.wait(10)
        poll()

    readers._poller = threading.Thread(target=late_poll, name="feed-poller")
    with readers.running():
        world.submit(portfolio)
        gate.set()
        expected = positions(app, before)
        readers.wait_for(expected[-1], timeout=5)
    assert len(expected) == 1
    assert readers.tailed == expected
    assert readers.polled == expected
