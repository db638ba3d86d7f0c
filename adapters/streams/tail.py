"""One follower of the log per process: every live channel hangs off it.

It subscribes to the recorder (LISTEN/NOTIFY on PostgreSQL, a nudged poll on SQLite),
hands each new notification to its listeners in log order as an `Arrival`, which envelopes
the event once and only if a listener asks (with no SSE subscriber, nothing is decoded),
then wakes anyone waiting for the log to move. Listeners must not block (SSE subscribers
only append to their own bounded buffer); cursor-keeping consumers (webhooks, NATS) read
the log themselves from their own positions and use the tail only as a wake-up, so a slow
one never slows the tail.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder, Notification, Subscription

    from adapters.streams.envelope import StreamEvent
    from adapters.streams.feed import EventLog


class Arrival:
    """A position the log reached, and (on demand, once) the CloudEvent committed there."""

    __slots__ = ("_event", "_log", "_notification", "position")

    def __init__(self, log: EventLog, notification: Notification | None, position: int) -> None:
        self.position = position
        self._log, self._notification = log, notification
        self._event: StreamEvent | None = None

    def event(self) -> StreamEvent | None:
        """The enveloped event; None for an unpublished notification or the start position."""
        if self._notification is not None:
            self._event = self._log.enveloped(self._notification)
            self._notification = None
        return self._event


Listener = Callable[[Arrival], None]
"""Called with each arrival, in log order (first the start position, with no event)."""

log = logging.getLogger(__name__)


class LogTail:
    def __init__(self, log: EventLog, *, retry_delay: float = 0.5) -> None:
        self.log = log
        self.retry_delay = retry_delay
        self._listeners: list[Listener] = []
        self._moved = threading.Condition()
        self._position = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscription: Subscription[ApplicationRecorder] | None = None
        self._lock = threading.Lock()

    @property
    def position(self) -> int:
        """The last position handed to the listeners."""
        return self._position

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def add_listener(self, listener: Listener) -> None:
        """Register before `start()`; the listener first hears the start position."""
        self._listeners.append(listener)

    def start(self, after: int | None = None) -> None:
        """Follow the log from after `after` (default: its head now)."""
        if self.running:
            return
        self._stopping.clear()
        self._move(None, self.log.head() if after is None else after)
        self._thread = threading.Thread(target=self._run, name="stream-tail")
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            subscription = self._subscription
        if subscription is not None:
            subscription.stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._moved:
            self._moved.notify_all()

    def wait_beyond(
        self, position: int, timeout: float, *, cancel: threading.Event | None = None
    ) -> bool:
        """Whether the log moves past `position` within `timeout` seconds.

        Returns early (False) when the tail stops or `cancel` is set and `wake()` is called.
        """
        with self._moved:
            return (
                self._moved.wait_for(
                    lambda: (
                        self._position > position
                        or self._stopping.is_set()
                        or (cancel is not None and cancel.is_set())
                    ),
                    timeout,
                )
                and self._position > position
            )

    def wake(self) -> None:
        """Make every `wait_beyond` look again at its condition (e.g. a cancel was set)."""
        with self._moved:
            self._moved.notify_all()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._follow()
            except Exception:
                log.exception("stream tail lost the log at %s; resubscribing", self._position)
                self._stopping.wait(self.retry_delay)

    def _follow(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            subscription = self._subscription = self.log.ledger.recorder.subscribe(
                gt=self._position
            )
        try:
            with subscription:
                for notification in subscription:
                    if notification.id <= self._position:
                        continue
                    self._move(notification, notification.id)
        finally:
            with self._lock:
                self._subscription = None

    def _move(self, notification: Notification | None, position: int) -> None:
        arrival = Arrival(self.log, notification, position)
        for listener in self._listeners:
            listener(arrival)
        with self._moved:
            self._position = position
            self._moved.notify_all()
