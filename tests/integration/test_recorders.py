"""Recorder tests: the library's own recorder test cases run against our adapters.

``eventsourcing.tests.persistence`` ships the contract tests, but not the SQLite and
PostgreSQL fixtures, so those are rebuilt here: each test gets a fresh SQLite file
or a freshly recreated PostgreSQL schema. The library module is imported as a
module, not its classes, because pytest would otherwise collect its abstract
TestCase classes from this module's namespace.

That module imports ``eventsourcing.cipher``, which needs pycryptodome: a dev
dependency for that reason alone.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import tempfile
import threading
from contextlib import closing
from pathlib import Path
from threading import Event, Thread
from typing import TYPE_CHECKING, Any
from unittest import TestCase
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteDatastore,
    SQLiteProcessRecorder,
    SQLiteTrackingRecorder,
)
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Identifier

from adapters.store import postgres as postgres_store
from adapters.store import sqlite as sqlite_store
from adapters.store.postgres import PostgresApplicationRecorderWithPosition
from adapters.store.sqlite import PollingSQLiteApplicationRecorder

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from eventsourcing.persistence import Subscription


from eventsourcing.tests import persistence as es_tests

GENEROUS_TIMEOUT = 5.0
"""Upper bound for "arrives promptly"; real latency is milliseconds."""

# The same knob as tests/conftest.py uses.
PG_URL = os.environ.get("EPORTFOLIO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_PG_PARAMS = conninfo_to_dict(PG_URL)
PG_HOST = str(_PG_PARAMS.get("host", "127.0.0.1"))
PG_PORT = str(_PG_PARAMS.get("port", "5432"))
PG_DBNAME = str(_PG_PARAMS.get("dbname", "test"))
PG_USER = str(_PG_PARAMS.get("user", "postgres"))
PG_PASSWORD = str(_PG_PARAMS.get("password", ""))


def stored_events(originator_id: UUID, versions: Sequence[int], topic: str) -> list[StoredEvent]:
    return [
        StoredEvent(
            originator_id=originator_id,
            originator_version=v,
            topic=topic,
            state=f"state{v}".encode(),
        )
        for v in versions
    ]


class CollectingThread(Thread):
    """Iterates a subscription in its own thread until ``expected`` notifications."""

    def __init__(self, subscription: Subscription[ApplicationRecorder], expected: int) -> None:
        super().__init__(daemon=True)
        self.subscription = subscription
        self.expected = expected
        self.received: list[Notification] = []
        self.done = Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for notification in self.subscription:
                self.received.append(notification)
                if len(self.received) == self.expected:
                    break
        except BaseException as e:  # Re-raised by the test thread in join_checked().
            self.error = e
        finally:
            self.done.set()

    def join_checked(self) -> list[Notification]:
        assert self.done.wait(GENEROUS_TIMEOUT), (
            f"got {len(self.received)} of {self.expected} notifications"
        )
        self.join(GENEROUS_TIMEOUT)
        if self.error is not None:
            raise self.error
        return self.received


def join_library_reader_threads() -> None:
    """Wait for the reader threads that ``test_concurrent_no_conflicts`` leaves running.

    The library test sets their stop event but doesn't join them, and our cleanup
    then closes the connection pool, which closes in-use connections too: closing
    an sqlite3 connection while another thread executes on it can segfault.
    Since Python 3.10 a thread's default name ends with its target's name.
    """
    for thread in threading.enumerate():
        if thread.name.endswith("(read_continuously)"):
            thread.join(GENEROUS_TIMEOUT)


# --------------------------------------------------------------------------- SQLite


class SQLiteFileTestCase(TestCase):
    """Gives each test a fresh SQLite file and factories built from PERSISTENCE_MODULE."""

    db_path: Path

    def setUp(self) -> None:
        super().setUp()
        tmp_dir = self.enterContext(tempfile.TemporaryDirectory(prefix="eportfolio-recorders-"))
        self.db_path = Path(tmp_dir) / "events.db"

    def env(self) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "adapters.store.sqlite", "SQLITE_DBNAME": str(self.db_path)}

    def construct_factory(self) -> sqlite_store.Factory:
        factory = InfrastructureFactory.construct(self.env())
        assert isinstance(factory, sqlite_store.Factory)
        # Cleanups run LIFO: stray readers end, then factories close, then the
        # temporary directory goes.
        self.addCleanup(factory.close)
        self.addCleanup(join_library_reader_threads)
        return factory

    def polling_recorder(self) -> PollingSQLiteApplicationRecorder:
        recorder = self.construct_factory().application_recorder()
        assert isinstance(recorder, PollingSQLiteApplicationRecorder)
        return recorder


class TestPollingSQLiteApplicationRecorder(
    SQLiteFileTestCase, es_tests.ApplicationRecorderTestCase[PollingSQLiteApplicationRecorder]
):
    def create_recorder(self) -> PollingSQLiteApplicationRecorder:
        return self.polling_recorder()

    def test_insert_subscribe(self) -> None:
        # Named optional_ upstream because the stock SQLite recorder can't pass it.
        self.optional_test_insert_subscribe()


class TestPollingSQLiteNonInterleaving(
    SQLiteFileTestCase, es_tests.NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> ApplicationRecorder:
        return self.polling_recorder()


class TestSQLiteFactoryTrackingRecorder(SQLiteFileTestCase, es_tests.TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return self.construct_factory().tracking_recorder()


class TestSQLiteFactoryProcessRecorder(SQLiteFileTestCase, es_tests.ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return self.construct_factory().process_recorder()


class TestSQLiteStore(SQLiteFileTestCase):
    def test_persistence_module_resolves_our_factory_and_recorder_classes(self) -> None:
        factory = self.construct_factory()
        assert type(factory.application_recorder()) is PollingSQLiteApplicationRecorder
        # Tracking and process recorders are deliberately the library's.
        assert type(factory.tracking_recorder()) is SQLiteTrackingRecorder
        assert type(factory.process_recorder()) is SQLiteProcessRecorder

    def test_file_database_is_in_wal_mode(self) -> None:
        factory = self.construct_factory()
        factory.application_recorder()  # Opens the first connection.
        assert factory.datastore.pool.is_journal_mode_wal
        # WAL is persistent, so an unrelated connection sees it too.
        with closing(sqlite3.connect(self.db_path)) as conn:
            (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        assert mode == "wal"

    def test_notification_position(self) -> None:
        recorder = self.polling_recorder()
        id1, id2 = uuid4(), uuid4()
        ids = recorder.insert_events(stored_events(id1, [1, 2], "t"))
        ids2 = recorder.insert_events(stored_events(id2, [1], "t"))
        assert ids is not None
        assert ids2 is not None
        assert recorder.notification_position(id1, 1) == ids[0]
        assert recorder.notification_position(id1, 2) == ids[1]
        assert recorder.notification_position(id2, 1) == ids2[0]
        assert recorder.notification_position(id2, 2) is None
        assert recorder.notification_position(uuid4(), 1) is None
        selected = recorder.select_notifications(start=None, limit=10)
        assert [n.id for n in selected] == [*ids, *ids2]

    def test_notification_position_with_text_originator_ids(self) -> None:
        recorder = PollingSQLiteApplicationRecorder(
            SQLiteDatastore(str(self.db_path), originator_id_type="text")
        )
        self.addCleanup(recorder.datastore.close)
        recorder.create_table()
        event = StoredEvent(originator_id="portfolio-7", originator_version=3, topic="t", state=b"")
        ids = recorder.insert_events([event])
        assert ids is not None
        assert recorder.notification_position("portfolio-7", 3) == ids[0]
        assert recorder.notification_position("portfolio-8", 3) is None

    def test_subscriber_in_other_thread_is_nudged_by_writer_with_other_recorder(self) -> None:
        # As with a ProjectionRunner: the reader's recorder and pool are its own.
        writer = self.polling_recorder()
        reader = self.polling_recorder()
        self._check_subscriber_receives_in_order(writer, reader)

    def test_subscriber_polls_up_writes_that_do_not_nudge(self) -> None:
        # A stock recorder stands in for a writer in another process.
        writer = SQLiteApplicationRecorder(SQLiteDatastore(str(self.db_path)))
        self.addCleanup(writer.datastore.close)
        reader = self.polling_recorder()
        self._check_subscriber_receives_in_order(writer, reader)

    def _check_subscriber_receives_in_order(
        self, writer: SQLiteApplicationRecorder, reader: PollingSQLiteApplicationRecorder
    ) -> None:
        originator_id = uuid4()
        batches = [[1, 2], [3], [4, 5, 6]]
        with reader.subscribe(gt=reader.max_notification_id()) as subscription:
            collector = CollectingThread(subscription, expected=6)
            collector.start()
            inserted: list[int] = []
            for batch in batches:
                ids = writer.insert_events(stored_events(originator_id, batch, "t"))
                assert ids is not None
                inserted.extend(ids)
            received = collector.join_checked()
        assert [n.id for n in received] == inserted
        assert [n.originator_version for n in received] == [1, 2, 3, 4, 5, 6]
        assert all(n.originator_id == originator_id for n in received)

    def test_a_subscription_reads_in_the_iterating_thread_and_each_commit_wakes_it(
        self,
    ) -> None:
        recorder = self.polling_recorder()
        recorder.poll_interval_max = 60.0  # only a nudge can wake it in time
        before = threading.active_count()
        originator_id = uuid4()
        with recorder.subscribe(gt=recorder.max_notification_id()) as subscription:
            assert threading.active_count() == before  # no puller thread behind it
            collector = CollectingThread(subscription, expected=2)
            collector.start()
            first = recorder.insert_events(stored_events(originator_id, [1], "t"))
            second = recorder.insert_events(stored_events(originator_id, [2], "t"))
            received = collector.join_checked()
        assert first is not None
        assert second is not None
        assert [n.id for n in received] == [*first, *second]

    def test_stop_from_another_thread_ends_an_idle_subscription(self) -> None:
        recorder = self.polling_recorder()
        subscription = recorder.subscribe(gt=None)
        with subscription:
            collector = CollectingThread(subscription, expected=1)
            collector.start()
            subscription.stop()
            assert collector.join_checked() == []

    def test_projection_runner_follows_sqlite_application(self) -> None:
        env = self.env()
        app = NotesApp(env)
        self.addCleanup(app.close)
        with ProjectionRunner(
            application_class=NotesApp,
            projection_class=NoteCounter,
            view_class=SQLiteTrackingRecorder,
            env=env,
        ) as runner:
            for text in ("one", "two", "three"):
                app.save(Note(text))
            last = app.recorder.max_notification_id()
            runner.wait(last, timeout=GENEROUS_TIMEOUT)
            assert runner.view.max_tracking_id(NotesApp.name) == last


class Note(Aggregate):
    def __init__(self, text: str) -> None:
        self.text = text


class NotesApp(Application[UUID]):
    pass


class NoteCounter(Projection[SQLiteTrackingRecorder]):
    """Minimal projection: records how far it has processed."""

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)


# ----------------------------------------------------------------------- PostgreSQL


def _postgres_is_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, int(PG_PORT)), timeout=1.0):
            return True
    except OSError:
        return False


def _pg_connect() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_URL, autocommit=True)


@pytest.fixture(scope="module")
def pg_run_schema() -> Iterator[str]:
    """A schema unique to this test run (and xdist worker), dropped at the end."""
    if not _postgres_is_reachable():
        reason = f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}"
        if os.environ.get("EPORTFOLIO_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} and EPORTFOLIO_REQUIRE_SERVICES=1")
        pytest.skip(f"{reason} (set EPORTFOLIO_REQUIRE_SERVICES=1 to fail instead)")
    schema = f"test_recorders_{os.getpid()}_{uuid4().hex[:8]}"
    yield schema
    with _pg_connect() as conn:
        conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))


class PostgresSchemaTestCase(TestCase):
    """Recreates the run's schema empty before each test, so IDs start at 1."""

    pg_schema: str

    @pytest.fixture(autouse=True)
    def _empty_schema(self, pg_run_schema: str) -> None:
        with _pg_connect() as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(pg_run_schema)))
            conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(pg_run_schema)))
        self.pg_schema = pg_run_schema

    def construct_factory(self) -> postgres_store.Factory:
        factory = InfrastructureFactory.construct(
            {
                "PERSISTENCE_MODULE": "adapters.store.postgres",
                "POSTGRES_DBNAME": PG_DBNAME,
                "POSTGRES_HOST": PG_HOST,
                "POSTGRES_PORT": PG_PORT,
                "POSTGRES_USER": PG_USER,
                "POSTGRES_PASSWORD": PG_PASSWORD,
                "POSTGRES_SCHEMA": self.pg_schema,
                # The server is shared (and xdist multiplies us): open few connections
                # eagerly, but allow the library's 10 writers + 2 readers at peak.
                "POSTGRES_POOL_SIZE": "2",
                "POSTGRES_MAX_OVERFLOW": "12",
            }
        )
        assert isinstance(factory, postgres_store.Factory)
        self.addCleanup(factory.close)
        self.addCleanup(join_library_reader_threads)  # Runs first (LIFO).
        return factory

    def position_recorder(self) -> PostgresApplicationRecorderWithPosition:
        recorder = self.construct_factory().application_recorder()
        assert isinstance(recorder, PostgresApplicationRecorderWithPosition)
        return recorder


@pytest.mark.postgres
class TestPostgresApplicationRecorder(
    PostgresSchemaTestCase,
    es_tests.ApplicationRecorderTestCase[PostgresApplicationRecorderWithPosition],
):
    def create_recorder(self) -> PostgresApplicationRecorderWithPosition:
        return self.position_recorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


@pytest.mark.postgres
class TestPostgresFactoryTrackingRecorder(
    PostgresSchemaTestCase, es_tests.TrackingRecorderTestCase
):
    def create_recorder(self) -> TrackingRecorder:
        return self.construct_factory().tracking_recorder()


@pytest.mark.postgres
class TestPostgresFactoryProcessRecorder(PostgresSchemaTestCase, es_tests.ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return self.construct_factory().process_recorder()


@pytest.mark.postgres
class TestPostgresStore(PostgresSchemaTestCase):
    def test_notification_position(self) -> None:
        recorder = self.position_recorder()
        assert recorder.datastore.schema == self.pg_schema
        id1, id2 = uuid4(), uuid4()
        ids = recorder.insert_events(stored_events(id1, [1, 2], "t"))
        ids2 = recorder.insert_events(stored_events(id2, [1], "t"))
        assert ids is not None
        assert ids2 is not None
        assert recorder.notification_position(id1, 1) == ids[0]
        assert recorder.notification_position(id1, 2) == ids[1]
        assert recorder.notification_position(id2, 1) == ids2[0]
        assert recorder.notification_position(id2, 2) is None
        assert recorder.notification_position(uuid4(), 1) is None

    def test_subscriber_in_other_thread_receives_in_order(self) -> None:
        writer = self.position_recorder()
        reader = self.position_recorder()
        originator_id = uuid4()
        with reader.subscribe(gt=reader.max_notification_id()) as subscription:
            collector = CollectingThread(subscription, expected=3)
            collector.start()
            ids = writer.insert_events(stored_events(originator_id, [1, 2, 3], "t"))
            received = collector.join_checked()
        assert [n.id for n in received] == ids
        assert [n.originator_version for n in received] == [1, 2, 3]
