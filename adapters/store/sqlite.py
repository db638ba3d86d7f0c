"""SQLite persistence whose application recorder can be subscribed to.

eventsourcing 9.5's ``SQLiteApplicationRecorder.subscribe()`` raises
``NotImplementedError``, so a ``ProjectionRunner`` cannot follow an application
stored in SQLite. SQLite has no LISTEN/NOTIFY, so the subscription here polls the
notification log, and writers in the same process "nudge" pollers awake so the
usual in-process case has no polling latency. See
docs/adr/0002-polling-subscription-on-sqlite.md.

Select it with ``PERSISTENCE_MODULE=adapters.store.sqlite`` (plus ``SQLITE_DBNAME``).
File databases are already switched to ``journal_mode=WAL`` by the library's
``SQLiteConnectionPool``, so readers (pollers) never block the writer.

Only modules, not factory classes, are imported from eventsourcing here:
``InfrastructureFactory.construct`` picks *the one* factory class found in this
module's namespace, and an imported ``SQLiteFactory`` would make that two.
"""

from __future__ import annotations

import os
from threading import Event, Lock
from typing import TYPE_CHECKING, Any

from eventsourcing import sqlite as es_sqlite
from eventsourcing.persistence import Subscription

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from eventsourcing.persistence import ApplicationRecorder, Notification, StoredEvent

__all__ = [
    "Factory",
    "PollingSQLiteApplicationRecorder",
    "PollingSQLiteSubscription",
]

NudgeKey = tuple[str, str]
"""(normalised database name, events table name)."""


def _database_key(db_name: str) -> str:
    """Normalise an SQLite database name so a path and its ``file:`` URI match.

    Best effort: if two spellings of one file are not recognised as equal, the
    only cost is that a subscriber waits for its next poll instead of a nudge.
    """
    if es_sqlite.SQLiteConnectionPool.detect_memory_mode(db_name):
        return db_name
    path = db_name.removeprefix("file:").split("?", 1)[0]
    return os.path.realpath(path)


class _NudgeBoard:
    """Wake-up events of the live subscriptions in this process, by database table.

    Held per process rather than per recorder because a ``ProjectionRunner``
    constructs its own application, hence its own recorder and connection pool,
    for the same database: an event on the writer's recorder would never reach it.
    """

    def __init__(self) -> None:
        self._lock = Lock()
        self._events: dict[NudgeKey, set[Event]] = {}

    def add(self, key: NudgeKey, event: Event) -> None:
        with self._lock:
            self._events.setdefault(key, set()).add(event)

    def discard(self, key: NudgeKey, event: Event) -> None:
        with self._lock:
            events = self._events.get(key)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._events[key]

    def set_all(self, key: NudgeKey) -> None:
        with self._lock:
            events = tuple(self._events.get(key, ()))
        for event in events:
            event.set()


_NUDGES = _NudgeBoard()


class PollingSQLiteApplicationRecorder(es_sqlite.SQLiteApplicationRecorder):
    """SQLite application recorder with a working ``subscribe()``.

    ``insert_events()`` nudges same-process subscribers after the commit, so they
    wake at once; writers in other processes are picked up by polling within
    ``poll_interval_max`` seconds.
    """

    poll_interval_min: float = 0.001
    """Poll interval (s) straight after a poll that found notifications."""
    poll_interval_max: float = 0.05
    """Poll interval (s) that an idle subscription backs off to (doubling)."""

    def __init__(
        self,
        datastore: es_sqlite.SQLiteDatastore,
        events_table_name: str = "stored_events",
    ) -> None:
        super().__init__(datastore, events_table_name)
        self.nudge_key: NudgeKey = (
            _database_key(datastore.pool.db_name),
            self.events_table_name,
        )
        # The primary key (originator_id, originator_version) makes this one lookup.
        # The table name comes from code, not input, as in the library's statements.
        self.select_notification_position_statement = (
            f"SELECT rowid FROM {self.events_table_name} "  # noqa: S608
            "WHERE originator_id=? AND originator_version=?"
        )
        self.select_stream_positions_statement = (
            f"SELECT originator_version, rowid FROM {self.events_table_name} "  # noqa: S608
            "WHERE originator_id=? ORDER BY originator_version"
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert (and commit), then nudge subscribers; the order avoids lost wake-ups."""
        notification_ids = super().insert_events(stored_events, **kwargs)
        if stored_events:
            self.nudge()
        return notification_ids

    def nudge(self) -> None:
        """Wake this process's subscriptions to this database table now."""
        _NUDGES.set_all(self.nudge_key)

    def watch(self, event: Event) -> None:
        """Have `event` set after each commit here to this table (as subscriptions are)."""
        _NUDGES.add(self.nudge_key, event)

    def unwatch(self, event: Event) -> None:
        _NUDGES.discard(self.nudge_key, event)

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        """Follow the notification log from after ``gt``; see PollingSQLiteSubscription."""
        return PollingSQLiteSubscription(recorder=self, gt=gt, topics=topics)

    def notification_position(
        self, originator_id: UUID | str, originator_version: int
    ) -> int | None:
        """Return the notification ID of a stored event, or None if not stored.

        Lets a caller that has just written an event wait for projections to reach
        it (``ProjectionRunner.wait(position)``) without keeping the insert result.
        """
        params = (
            originator_id if isinstance(originator_id, str) else originator_id.hex,
            originator_version,
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.select_notification_position_statement, params)
            row = c.fetchone()
        return None if row is None else int(row[0])

    def stream_positions(self, originator_id: UUID | str) -> dict[int, int]:
        """Each stored version of a stream and its notification ID, in one SELECT.

        What a reader showing a whole stream with positions needs, instead of one
        ``notification_position()`` per event.
        """
        param = originator_id if isinstance(originator_id, str) else originator_id.hex
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.select_stream_positions_statement, (param,))
            rows = c.fetchall()
        return {int(version): int(position) for version, position in rows}


class PollingSQLiteSubscription(Subscription[PollingSQLiteApplicationRecorder]):
    """Subscription that polls ``select_notifications()`` in the iterating thread.

    No puller thread and no queue between it and the consumer: ``__next__`` reads the
    next page itself when its batch is used up, else waits on an event that same-process
    writers set after each commit (the process-wide nudge board), with a timeout that
    restarts at ``poll_interval_min`` after a page with notifications and doubles up to
    ``poll_interval_max`` while idle, for writers in other processes. Each commit so wakes
    one thread, the consumer, not a puller and then the consumer: the live SSE tail
    (`adapters/streams/tail.py`) follows every write this way (docs/adr/0025). ``stop()``
    sets the event, so stopping from another thread takes effect at once.
    """

    select_limit = 500

    def __init__(
        self,
        recorder: PollingSQLiteApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._batch: Sequence[Notification] = ()
        self._index = 0
        self._nudged = Event()
        self._interval = recorder.poll_interval_min
        # Registered before the first select, so no commit can fall between the two.
        recorder.watch(self._nudged)

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._recorder.unwatch(self._nudged)

    def stop(self) -> None:
        """Stops the subscription; an iteration waiting in another thread ends at once."""
        super().stop()
        self._recorder.unwatch(self._nudged)
        self._nudged.set()

    def __next__(self) -> Notification:
        recorder = self._recorder
        while self._index == len(self._batch) and not self._has_been_stopped:
            self._nudged.clear()  # before the select: a commit after it sets it again
            page = recorder.select_notifications(
                start=self._last_notification_id or 0,
                limit=self.select_limit,
                topics=self._topics,
                inclusive_of_start=False,
            )
            if page:
                self._batch, self._index = page, 0
                self._last_notification_id = page[-1].id
                self._interval = recorder.poll_interval_min
                break
            self._interval = min(self._interval * 2, recorder.poll_interval_max)
            self._nudged.wait(timeout=self._interval)
        if self._has_been_stopped:
            raise StopIteration
        notification = self._batch[self._index]
        self._index += 1
        return notification


class Factory(es_sqlite.SQLiteFactory):
    """``SQLiteFactory`` whose application recorders support ``subscribe()``.

    Aggregate, tracking and process recorders stay the library's classes. WAL is
    not configured here because ``SQLiteConnectionPool`` already sets
    ``journal_mode=WAL`` on file databases (tests assert it).
    """

    application_recorder_class = PollingSQLiteApplicationRecorder
