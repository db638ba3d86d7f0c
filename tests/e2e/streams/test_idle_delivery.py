"""An idle deployment does no busy work: delivery workers wait for the log, not a clock.

A webhook worker that has delivered everything waits on the log's tail; it reads its
subscription again when an event arrives, or when the process's role tick finds the row
changed by another process (an API process runs no workers), not once a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID, uuid4

import msgspec

from adapters.streams import Streams
from adapters.streams.feed import ANY
from adapters.streams.webhook_store import Status, Subscription
from service.handlers import Eportfolio
from tests.e2e.streams.conftest import FAST, MakeStreams, positions
from tests.e2e.streams.servers import Receiver, serve
from tests.e2e.streams.test_webhooks import delivered, wait
from tests.world import World

IDLE = msgspec.structs.replace(FAST, idle_wait=60.0)


def counting_reads(streams: Streams) -> Callable[[], int]:
    """How many times the webhooks have read a subscription row since this was called."""
    store = streams.webhooks.store
    real, calls = store.get, [0]

    def get(webhook_id: UUID) -> Subscription | None:
        calls[0] += 1
        return real(webhook_id)

    store.get = get  # type: ignore[method-assign]
    return lambda: calls[0]


def test_an_idle_worker_reads_nothing_until_the_log_moves(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    receiver = Receiver()
    streams = make_streams(policy=IDLE)
    streams.start()
    with serve(receiver, lifespan="off") as hook_url:
        streams.webhooks.register(uuid4(), f"{hook_url}/h", ANY, None, 1)
        wait(lambda: delivered(receiver.requests) == positions(app))
        time.sleep(0.3)  # the worker commits its cursor, reads once more, then waits
        reads = counting_reads(streams)
        time.sleep(2.5)
        assert reads() == 0  # was one read of the row (and one of the log) a second

        world.submit(world.enrol())
        wait(lambda: delivered(receiver.requests) == positions(app))
        assert reads() >= 1


def test_a_redelivery_asked_for_in_another_process_reaches_an_idle_worker(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    receiver = Receiver()
    worker, api = make_streams(policy=IDLE), make_streams(policy=IDLE)
    worker.start()  # `api` is an API process: it runs no delivery workers
    with serve(receiver, lifespan="off") as hook_url:
        hook, _ = api.webhooks.register(uuid4(), f"{hook_url}/h", ANY, None, 1)
        worker.webhooks.refresh()  # the role tick of the process holding the lease
        expected = positions(app)
        wait(lambda: delivered(receiver.requests) == expected, timeout=10)
        time.sleep(0.3)
        first = len(receiver.requests)

        assert api.webhooks.redeliver(hook.id, from_position=expected[1]) is not None
        started = time.monotonic()
        worker.webhooks.refresh()
        again = [p for p in expected if p >= expected[1]]
        wait(lambda: [_position(r.body) for r in receiver.requests[first:]] == again, 10)
        assert time.monotonic() - started < IDLE.idle_wait / 4  # woken, not timed out


def test_an_endpoint_disabled_in_another_process_gets_nothing_more(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    receiver = Receiver()
    worker, api = make_streams(policy=IDLE), make_streams(policy=IDLE)
    worker.start()
    with serve(receiver, lifespan="off") as hook_url:
        hook, _ = api.webhooks.register(uuid4(), f"{hook_url}/h", ANY, None, 1)
        worker.webhooks.refresh()
        wait(lambda: delivered(receiver.requests) == positions(app), timeout=10)
        sent = len(receiver.requests)

        disabled = api.webhooks.change(hook.id, _disabled)
        assert disabled is not None
        worker.webhooks.refresh()
        world.submit(world.enrol())
        time.sleep(1.0)
    assert len(receiver.requests) == sent


def _disabled(subscription: Subscription) -> Subscription:
    return msgspec.structs.replace(subscription, status=Status.DISABLED)


def _position(body: bytes) -> int:
    return int(msgspec.json.decode(body)["sequence"])
