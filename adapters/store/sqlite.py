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
from eventsourcing.persistence import ListenNotifySubscription

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from eventsourcing.persistence import ApplicationRecorder, StoredEvent, Subscription

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


class PollingSQLiteSubscription(ListenNotifySubscription[PollingSQLiteApplicationRecorder]):
    """Subscription that polls ``select_notifications()`` instead of LISTENing.

    Reuses the library's ``ListenNotifySubscription`` (bounded queue, ordering,
    ``stop()`` and re-raising puller errors in the iterating thread) and replaces
    only its puller loop: rather than block until a NOTIFY sets
    ``_has_been_notified``, it waits on that event with a timeout that restarts at
    ``poll_interval_min`` after finding notifications and doubles up to
    ``poll_interval_max`` while idle. The same event is registered with the
    process-wide nudge board, so same-process writers wake it immediately, and
    ``stop()`` sets it too, so stopping takes effect at once.

    Relies on ``ListenNotifySubscription`` internals, which is why the dependency
    is pinned to eventsourcing 9.5.x; the library's own subscribe tests guard it.
    """

    def _loop_on_pull(self) -> None:
        recorder = self._recorder
        key = recorder.nudge_key
        # Register before the first pull so no commit can fall between the two.
        _NUDGES.add(key, self._has_been_notified)
        interval = recorder.poll_interval_min
        try:
            while not self._has_been_stopped:
                last_id = self._last_notification_id
                self._pull()  # Clears the event before each select.
                if self._last_notification_id != last_id:
                    interval = recorder.poll_interval_min
                else:
                    interval = min(interval * 2, recorder.poll_interval_max)
                self._has_been_notified.wait(timeout=interval)
        except BaseException as e:
            # As the library does: keep the error for __next__() to re-raise.
            if self._thread_error is None:
                self._thread_error = e
            self.stop()
        finally:
            _NUDGES.discard(key, self._has_been_notified)


class Factory(es_sqlite.SQLiteFactory):
    """``SQLiteFactory`` whose application recorders support ``subscribe()``.

    Aggregate, tracking and process recorders stay the library's classes. WAL is
    not configured here because ``SQLiteConnectionPool`` already sets
    ``journal_mode=WAL`` on file databases (tests assert it).
    """

    application_recorder_class = PollingSQLiteApplicationRecorder
