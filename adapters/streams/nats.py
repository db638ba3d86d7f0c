"""NATS JetStream publisher: every event once, in log order, resumable like a projection.

Subject `{prefix}.{centre}.{short type}` (e.g. `eportfolio.<centre id>.evidence.submitted.v1`,
`global` for events of no centre), header `Nats-Msg-Id` = event id so JetStream drops a
re-publish inside its duplicate window, and `Eportfolio-Position` = log position. The cursor
is a tracked position (a view store's conditional tracking row, as projections use) committed
after each page is acknowledged. On (re)connecting, the publisher also reads the position on
the stream's last message and starts after whichever is further, so a crash between the
acknowledgement and the commit republishes nothing even outside the duplicate window.

Messages are published one at a time, each acknowledged before the next: pipelining could
let a message lost in a reconnect be overtaken by the next one, breaking log order.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

import msgspec
import nats
from nats.js.errors import NotFoundError

from adapters.store.views import TrackingConflict
from adapters.streams.envelope import CONTENT_TYPE, NO_CENTRE, TYPE_PREFIX, StreamEvent

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from adapters.store.views import ViewStore
    from adapters.streams.feed import EventLog
    from adapters.streams.tail import LogTail

POSITION_HEADER = "Eportfolio-Position"
log = logging.getLogger(__name__)


class NatsSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    stream: str = "EPORTFOLIO"
    subject_prefix: str = "eportfolio"
    duplicate_window: float = 120.0  # seconds, when this publisher creates the stream
    batch: int = 500  # events per committed page
    ack_timeout: float = 5.0
    retry_delay: float = 1.0
    idle_wait: float = 30.0  # a fallback look at the log when idle: the tail wakes it


def servers(url: str) -> list[str]:
    """EPORTFOLIO_NATS_URL's servers: one URL, or several `,`-separated (a cluster)."""
    return [u.strip() for u in url.split(",") if u.strip()]


def subject(prefix: str, event: StreamEvent) -> str:
    centre = str(event.centre_id) if event.centre_id is not None else NO_CENTRE
    return f"{prefix}.{centre}.{event.type.removeprefix(TYPE_PREFIX)}"


class NatsPublisher:
    """Publishes the log to one JetStream stream from a thread running its own event loop."""

    def __init__(
        self,
        log: EventLog,
        cursor: ViewStore,
        settings: NatsSettings,
        *,
        tail: LogTail | None = None,
    ) -> None:
        self.log, self.cursor, self.settings, self.tail = log, cursor, settings, tail
        self._position = cursor.position()
        self._moved = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def position(self) -> int:
        """The last log position published and acknowledged."""
        return self._position

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        with self._moved:  # another process may have published meanwhile (a role taken over)
            self._position = max(self._position, self.cursor.position())
        self._thread = threading.Thread(target=self._run, name="nats-publisher")
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self.tail is not None:
            self.tail.wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.cursor.close()

    def wait(self, position: int, timeout: float) -> bool:
        """Whether everything up to `position` is published within `timeout` seconds."""
        with self._moved:
            return self._moved.wait_for(lambda: self._position >= position, timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                asyncio.run(self._publish_until_stopped())
            except Exception as error:
                self.error = error
                log.exception("NATS publisher failed at %s; retrying", self._position)
                self._stopping.wait(self.settings.retry_delay)

    async def _publish_until_stopped(self) -> None:
        settings = self.settings
        client = await nats.connect(servers(settings.url), connect_timeout=settings.ack_timeout)
        try:
            js = client.jetstream(timeout=settings.ack_timeout)
            await self._reconcile(js)
            while not self._stopping.is_set():
                after = self._position
                page = await asyncio.to_thread(self.log.read, after, settings.batch)
                for event in page.events:
                    await js.publish(
                        subject(settings.subject_prefix, event),
                        event.body,
                        stream=settings.stream,
                        headers={
                            "Nats-Msg-Id": str(event.event_id),
                            POSITION_HEADER: str(event.position),
                            "Content-Type": CONTENT_TYPE,
                        },
                    )
                if page.next_after > after:
                    self._commit(after, page.next_after)
                elif page.at_end:
                    await self._wait_for_more(after)
        finally:
            await client.close()

    async def _reconcile(self, js: JetStreamContext) -> None:
        """Create the stream if missing; skip past what it already holds from us."""
        settings = self.settings
        try:
            await js.stream_info(settings.stream)
        except NotFoundError:
            await js.add_stream(
                name=settings.stream,
                subjects=[f"{settings.subject_prefix}.>"],
                duplicate_window=settings.duplicate_window,
            )
            return
        try:
            last = await js.get_last_msg(settings.stream, f"{settings.subject_prefix}.>")
        except NotFoundError:
            return
        published = int((last.headers or {}).get(POSITION_HEADER, "0"))
        self._position = max(self._position, self.cursor.position())
        if published > self._position:
            self._commit(self._position, published)

    def _commit(self, expected: int, position: int) -> None:
        try:
            self.cursor.write(expected, position, [])
        except TrackingConflict:
            position = self.cursor.position()  # another publisher moved it: follow it
            log.warning("NATS cursor moved under this publisher; now at %s", position)
        with self._moved:
            self._position = position
            self._moved.notify_all()

    async def _wait_for_more(self, after: int) -> None:
        if self.tail is None:
            await asyncio.sleep(0.2)
            return
        await asyncio.to_thread(
            self.tail.wait_beyond, after, self.settings.idle_wait, cancel=self._stopping
        )
