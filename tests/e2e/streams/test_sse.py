"""Server-Sent Events: many readers, none held up by a slow one; resumable with no gap.

The fan-out is tested in process (20 readers and one that never reads); the wire protocol
through a real uvicorn server with two independent clients, `httpx-sse` and `sseclient-py`,
across forced reconnects while writers keep committing and heartbeats keep coming: every event
either client dispatches is named and carries JSON, and each connection says once that it has
caught up with the log.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from uuid import UUID, uuid4

import httpx
import pytest
import sseclient
from httpx_sse import connect_sse

from adapters.streams.endpoints import StreamAccess
from adapters.streams.envelope import TYPES
from adapters.streams.sse import CAUGHT_UP
from domain import commands as c
from domain.events import Environment
from domain.spec import Method
from service.handlers import Eportfolio
from tests.e2e.streams.conftest import MakeStreams, bearer, positions, stream_app
from tests.e2e.streams.servers import serve
from tests.world import World


def submit(world: World, portfolio: UUID) -> tuple[int, float]:
    """Submit evidence; (its position, when the commit returned)."""
    command = c.SubmitEvidence(
        evidence_id=uuid4(),
        method=Method.WORK_PRODUCT,
        title="Call log",
        environment=Environment.WORKPLACE,
        authenticity_declared=True,
    )
    result = world.app.execute(world.learner, command, target=portfolio)
    return result.position, time.perf_counter()


def frame_position(chunk: bytes) -> int | None:
    """The position of an event frame; None for heartbeats and the caught-up frame."""
    fields = dict(line.partition(b": ")[::2] for line in chunk.splitlines() if line)
    if b"id" not in fields or fields.get(b"event") == CAUGHT_UP.encode():
        return None
    return int(fields[b"id"])


async def collect(frames: AsyncIterator[bytes], count: int) -> list[tuple[int, float]]:
    """(position, arrival time) of the first `count` events."""
    got: list[tuple[int, float]] = []
    async for chunk in frames:
        position = frame_position(chunk)
        if position is not None:
            got.append((position, time.perf_counter()))
            if len(got) == count:
                break
    return got


def test_twenty_readers_get_every_event_while_a_reader_that_never_reads_is_cut_off(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    streams = make_streams(sse_queue=20, sse_heartbeat=0.05)
    portfolio = world.enrol()
    streams.start()
    writes = 120
    committed: dict[int, float] = {}

    def write() -> None:
        for _ in range(writes):
            position, at = submit(world, portfolio)
            committed[position] = at
            time.sleep(0.001)

    async def main() -> tuple[list[list[tuple[int, float]]], list[bytes]]:
        start = streams.tail.position
        slow = streams.broadcaster.frames(start)
        first = [await slow.__anext__()]  # caught up: registered, nothing to read yet
        stuck = asyncio.ensure_future(slow.__anext__())  # waits to be read
        await asyncio.sleep(0.05)
        readers = [collect(streams.broadcaster.frames(start), writes) for _ in range(20)]
        writing = asyncio.ensure_future(asyncio.to_thread(write))
        results = await asyncio.gather(*readers)
        await writing
        first.append(await stuck)
        rest = [chunk async for chunk in slow]
        return results, first + rest

    received, slow_frames = asyncio.run(main())
    expected = sorted(committed)
    assert expected == positions(app)[-writes:]
    for reader in received:
        assert [position for position, _ in reader] == expected
    assert slow_frames[-1].startswith(b": too slow")
    assert streams.broadcaster.subscribers == 0

    latencies = [at - committed[p] for reader in received for p, at in reader]
    p50, p99 = statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]
    print(f"commit -> SSE frame, 20 readers: p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms")
    assert p99 < 1.0


def test_idle_streams_send_heartbeat_comment_lines_that_end_no_frame(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    """`retry:` rides on the first frame and heartbeats are bare comment lines: a blank line
    after them would make httpx-sse dispatch an empty event carrying the last id."""
    streams = make_streams(sse_heartbeat=0.02)
    streams.start()
    head = positions(app)[-1]

    async def first_frames() -> list[bytes]:
        frames = streams.broadcaster.frames()
        got = [await frames.__anext__() for _ in range(3)]
        await frames.aclose()
        return got

    caught_up = b'retry: 1000\nid: %d\nevent: caught-up\ndata: {"position":%d}\n\n' % (head, head)
    assert asyncio.run(first_frames()) == [caught_up] + [b": keep-alive\n"] * 2


@dataclass(frozen=True)
class Sse:
    """One dispatched event, as either client library reported it."""

    event: str
    id: str
    data: str


Client = Callable[[httpx.Client, str], Iterator[Sse]]
"""Opens `/events/stream` resuming after the given Last-Event-ID; yields what it dispatches."""


def read_with_httpx_sse(client: httpx.Client, resume: str) -> Iterator[Sse]:
    headers = {"Last-Event-ID": resume}
    with connect_sse(client, "GET", "/events/stream", headers=headers) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for event in source.iter_sse():
            yield Sse(event.event, event.id, event.data)


def read_with_sseclient_py(client: httpx.Client, resume: str) -> Iterator[Sse]:
    headers = {"Last-Event-ID": resume, "Accept": "text/event-stream"}
    with client.stream("GET", "/events/stream", headers=headers) as response:
        assert response.status_code == 200
        for event in sseclient.SSEClient(response.iter_bytes()).events():
            assert event.id is not None  # every frame we send has an id
            yield Sse(event.event, event.id, event.data)


@pytest.mark.parametrize("read", [read_with_httpx_sse, read_with_sseclient_py])
def test_sse_clients_read_every_event_once_across_reconnects_with_no_empty_event(
    app: Eportfolio, world: World, make_streams: MakeStreams, read: Client
) -> None:
    """Heartbeats every 20 ms while 150 events commit: every dispatched event parses as JSON,
    is named, and the positions read across three connections are exactly the log's."""
    streams = make_streams(sse_heartbeat=0.02)
    portfolio = world.enrol()
    access = StreamAccess(actor_id=uuid4(), centres=frozenset({world.centre_id}))
    start = positions(app)[-1]
    writes, stop = 150, threading.Event()
    written: list[int] = []

    def write() -> None:
        time.sleep(0.1)  # idle first: heartbeats before any event
        for n in range(writes):
            if stop.is_set():
                return
            written.append(submit(world, portfolio)[0])
            time.sleep(0.03 if n % 25 == 0 else 0.002)  # pauses long enough for heartbeats

    seen: list[int] = []
    caught_up: list[int] = []
    connections = 0
    with (
        serve(stream_app(streams, {"t": access})) as url,
        httpx.Client(base_url=url, headers=bearer("t"), timeout=10) as client,
    ):
        writer = threading.Thread(target=write)
        writer.start()
        try:
            deadline = time.monotonic() + 30
            while len(seen) < writes and time.monotonic() < deadline:
                connections += 1
                for event in read(client, str(seen[-1] if seen else start)):
                    data = json.loads(event.data)  # never an empty event
                    if event.event == CAUGHT_UP:
                        assert data == {"position": int(event.id)}
                        caught_up.append(connections)
                        continue
                    assert event.event == data["type"] in TYPES
                    assert data["sequence"] == event.id.zfill(20)
                    seen.append(int(event.id))
                    if len(seen) in (40, 90) and connections < 3:
                        break  # hang up mid-stream, while the writer goes on
                    if len(seen) == writes:
                        break
        finally:
            stop.set()
            writer.join()
    assert connections == 3
    assert seen == written
    assert seen == positions(app, start)
    assert caught_up[0] == 1
    assert len(caught_up) == len(set(caught_up))  # at most once per connection


@pytest.mark.parametrize("read", [read_with_httpx_sse, read_with_sseclient_py])
def test_a_live_reader_is_told_it_caught_up_then_gets_the_next_event_after_idle_heartbeats(
    app: Eportfolio, world: World, make_streams: MakeStreams, read: Client
) -> None:
    streams = make_streams(sse_heartbeat=0.02)
    portfolio = world.enrol()
    access = StreamAccess(actor_id=uuid4(), centres=frozenset({world.centre_id}))
    head = positions(app)[-1]
    got: list[Sse] = []
    with (
        serve(stream_app(streams, {"t": access})) as url,
        httpx.Client(base_url=url, headers=bearer("t"), timeout=10) as client,
    ):
        writer = threading.Timer(0.3, lambda: submit(world, portfolio))  # ~15 heartbeats first
        for event in read(client, "0"):
            got.append(event)
            if event.event == CAUGHT_UP:
                writer.start()
            elif len(got) > 1 and got[-2].event == CAUGHT_UP:
                break
        writer.join()
    *history, live_mark, live = got
    assert [int(e.id) for e in history] == positions(app)[:-1]
    assert live_mark.event == CAUGHT_UP
    assert json.loads(live_mark.data) == {"position": int(live_mark.id)}
    assert int(live_mark.id) >= head
    assert live.event == "uk.eportfolio.evidence.submitted.v1"
    assert int(live.id) == positions(app)[-1]
