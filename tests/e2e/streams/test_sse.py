"""Server-Sent Events: many readers, none held up by a slow one; resumable with no gap.

The fan-out is tested in process (20 readers and one that never reads); the wire protocol
through a real uvicorn server with `httpx-sse` as an independent client, across a forced
reconnect while writers keep committing.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import httpx
from httpx_sse import connect_sse

from adapters.streams.endpoints import StreamAccess
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
    if not chunk.startswith(b"id: "):
        return None
    return int(chunk[4 : chunk.index(b"\n")])


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
        first = [await slow.__anext__()]  # the retry field
        stuck = asyncio.ensure_future(slow.__anext__())  # registers, then waits to be read
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


def test_idle_streams_send_heartbeat_comments(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    streams = make_streams(sse_heartbeat=0.02)
    streams.start()

    async def first_frames() -> list[bytes]:
        frames = streams.broadcaster.frames()
        got = [await frames.__anext__() for _ in range(3)]
        await frames.aclose()
        return got

    assert asyncio.run(first_frames()) == [b"retry: 1000\n\n"] + [b": heartbeat\n\n"] * 2


def test_httpx_sse_reads_across_a_forced_reconnect_with_no_gap_and_no_duplicate(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    streams = make_streams(sse_heartbeat=0.2)
    portfolio = world.enrol()
    access = StreamAccess(actor_id=uuid4(), centres=frozenset({world.centre_id}))
    start = positions(app)[-1]
    writes, stop = 150, threading.Event()
    written: list[int] = []

    def write() -> None:
        for _ in range(writes):
            if stop.is_set():
                return
            written.append(submit(world, portfolio)[0])
            time.sleep(0.002)

    seen: list[int] = []
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
                resume = {"Last-Event-ID": str(seen[-1] if seen else start)}
                with connect_sse(client, "GET", "/events/stream", headers=resume) as source:
                    assert source.response.status_code == 200
                    for event in source.iter_sse():
                        if not event.data:
                            continue  # the `retry:` field alone
                        assert json.loads(event.data)["sequence"] == event.id.zfill(20)
                        seen.append(int(event.id))
                        if connections == 1 and len(seen) == 40:
                            break  # hang up mid-stream, while the writer goes on
                        if len(seen) == writes:
                            break
        finally:
            stop.set()
            writer.join()
    assert connections >= 2
    assert seen == written
    assert seen == positions(app, start)
