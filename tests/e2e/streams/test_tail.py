"""The log tail decodes an event only for a live SSE stream that can receive it."""

from __future__ import annotations

from eventsourcing.persistence import Notification

from adapters.streams.envelope import StreamEvent
from adapters.streams.feed import EventLog
from adapters.streams.sse import Broadcaster
from adapters.streams.tail import LogTail
from service.handlers import Eportfolio
from tests.e2e.streams.conftest import BASE_URL, positions
from tests.e2e.streams.test_webhooks import wait
from tests.world import World


class CountingLog(EventLog):
    """The real event log, counting the events it envelopes."""

    enveloped_count = 0

    def enveloped(self, notification: Notification) -> StreamEvent | None:
        self.enveloped_count += 1
        return super().enveloped(notification)


def test_with_no_stream_open_the_tail_follows_the_log_without_decoding_it(
    app: Eportfolio, world: World
) -> None:
    log = CountingLog(app.ledger, BASE_URL)
    tail = LogTail(log)
    broadcaster = Broadcaster(log, tail)
    tail.start()
    try:
        portfolio = world.enrol()
        for _ in range(5):
            world.submit(portfolio)
        head = positions(app)[-1]
        wait(lambda: tail.position == head)
        assert broadcaster.subscribers == 0
        assert log.enveloped_count == 0  # was one decode (personal fields opened) per event
    finally:
        tail.stop()
