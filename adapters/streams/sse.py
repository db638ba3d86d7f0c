"""Server-Sent Events: one log follower fanned out to many readers, none holding up another.

The tail thread appends each event to every subscriber's own bounded buffer and never
waits; a reader whose buffer overflows is disconnected and resumes with `Last-Event-ID`
from the log. A reader first catches up from the log without a buffer, then registers and
reads the log once more up to the position the broadcaster had reached when it registered,
so the hand-over from log to live has no gap and, by position, no duplicate.

Frames are built here as bytes, so the HTTP layer only streams them. Every event frame has
`id:` (the log position), `event:` (the CloudEvents type) and one `data:` line of CloudEvents
JSON (compact JSON has no raw newline). Once the reader has read to the end of the log it gets
one `event: caught-up` frame whose `id:` is the position reached: from then on it is live.
Heartbeats are comment lines *without* the blank line that ends a frame, and `retry:` rides on
the first frame: a blank line after any field makes some clients (httpx-sse) dispatch an empty
event carrying the last id, which `json.loads` then fails on.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING

from adapters.streams.feed import ANY, Filters, Visible, everything

if TYPE_CHECKING:
    from adapters.streams.envelope import StreamEvent
    from adapters.streams.feed import EventLog
    from adapters.streams.tail import Arrival, LogTail

HEARTBEAT = b": keep-alive\n"
OVERFLOW = b": too slow; reconnect with Last-Event-ID to resume\n"
CAUGHT_UP = "caught-up"
"""The `event:` name of the frame saying the reader has read the whole log: it is live now."""


def frame(event: StreamEvent) -> bytes:
    return b"id: %d\nevent: %s\ndata: %b\n\n" % (
        event.position,
        event.type.encode(),
        event.body,
    )


def caught_up(position: int) -> bytes:
    """The frame saying every event up to `position` has been sent; resuming from it is safe."""
    return b'id: %d\nevent: %s\ndata: {"position":%d}\n\n' % (
        position,
        CAUGHT_UP.encode(),
        position,
    )


class _Subscriber:
    """One reader's bounded buffer: filled on the tail thread, drained on the event loop."""

    def __init__(self, maxsize: int, filters: Filters, visible: Visible) -> None:
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._lock = threading.Lock()
        self._items: deque[StreamEvent] = deque()
        self._wake_pending = False
        self.maxsize, self.filters, self.visible = maxsize, filters, visible
        self.overflowed = self.ended = False

    def offer(self, event: StreamEvent) -> None:
        if not (self.filters.matches(event) and self.visible(event)):
            return
        with self._lock:
            if self.overflowed or self.ended:
                return
            if len(self._items) >= self.maxsize:
                self.overflowed = True
                self._items.clear()
            else:
                self._items.append(event)
        self._wake()

    def end(self) -> None:
        with self._lock:
            self.ended = True
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the reader's loop has closed: nobody is left to read
            self.ended = True

    async def take(self, timeout: float) -> list[StreamEvent]:
        """What has arrived, waiting up to `timeout` seconds; [] if nothing did."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return []
        with self._lock:
            self._ready.clear()
            self._wake_pending = False
            items, self._items = list(self._items), deque()
        return items


class Broadcaster:
    def __init__(
        self,
        log: EventLog,
        tail: LogTail,
        *,
        queue_size: int = 1_000,
        heartbeat: float = 15.0,
        page_size: int = 500,
        retry_ms: int = 1_000,
    ) -> None:
        self.log = log
        self.queue_size = queue_size
        self.heartbeat = heartbeat
        self.page_size = page_size
        self.retry_ms = retry_ms
        self._lock = threading.Lock()
        self._subscribers: set[_Subscriber] = set()
        self._position = 0
        tail.add_listener(self._on_event)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def close(self) -> None:
        """End every open stream; readers reconnect and resume elsewhere or later."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.end()

    def _on_event(self, arrival: Arrival) -> None:
        with self._lock:  # decoded under the lock: a stream registering now cannot miss it
            event = arrival.event() if self._subscribers else None
            if event is not None:
                for subscriber in self._subscribers:
                    subscriber.offer(event)
            self._position = arrival.position

    async def frames(
        self, after: int | None = None, filters: Filters = ANY, visible: Visible = everything
    ) -> AsyncGenerator[bytes, None]:
        """The stream after position `after` (default: from now), as SSE frames."""
        retry = b"retry: %d\n" % self.retry_ms  # sent with the first frame, never alone
        last = self._position if after is None else after
        while True:  # far behind: read the log without buffering live events meanwhile
            page = await asyncio.to_thread(self.log.read, last, self.page_size, filters, visible)
            for event in page.events:
                yield retry + frame(event)
                retry = b""
            last = page.next_after
            if page.at_end:
                break
        subscriber = _Subscriber(self.queue_size, filters, visible)
        with self._lock:
            self._subscribers.add(subscriber)
            registered_at = self._position
        try:
            while last < registered_at:  # what committed between the catch-up and now
                page = await asyncio.to_thread(
                    self.log.read, last, self.page_size, filters, visible, stop=registered_at
                )
                for event in page.events:
                    yield retry + frame(event)
                    retry = b""
                last = page.next_after
                if page.at_end:
                    break
            # Everything up to `registered_at` has been read; later events are in the buffer.
            last = max(last, registered_at)
            yield retry + caught_up(last)
            async for chunk in self._live(subscriber, last):
                yield chunk
        finally:
            with self._lock:
                self._subscribers.discard(subscriber)

    async def _live(self, subscriber: _Subscriber, last: int) -> AsyncIterator[bytes]:
        """Frames from the subscriber's buffer, heartbeats while idle; ends on overflow."""
        while True:
            batch = await subscriber.take(self.heartbeat)
            if subscriber.overflowed:
                yield OVERFLOW
                return
            if subscriber.ended:
                return
            if not batch:
                yield HEARTBEAT
            for event in batch:
                if event.position > last:
                    yield frame(event)
                    last = event.position
