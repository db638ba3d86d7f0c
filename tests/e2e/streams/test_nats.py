"""NATS JetStream: every event once, in log order, across publisher restarts.

Each test publishes to a stream and subject prefix of its own on the shared server and
deletes the stream afterwards; `nats-py` reads it back as an independent client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from uuid import uuid4

import nats
import pytest
from cloudevents.v1.http import from_http

from adapters.config import Config
from adapters.store.views import open_view_store
from adapters.streams import Streams, nats_cursor_name
from adapters.streams.envelope import CONTENT_TYPE
from adapters.streams.nats import POSITION_HEADER
from service.handlers import Eportfolio
from tests.conftest import NATS_ADDRESS, require_service
from tests.e2e.streams.conftest import MakeStreams, positions
from tests.world import World

NATS_URL = f"nats://{NATS_ADDRESS[0]}:{NATS_ADDRESS[1]}"
Message = tuple[str, dict[str, str], bytes]


@pytest.fixture
def stream_name() -> Iterator[str]:
    require_service("NATS", *NATS_ADDRESS)
    name = f"T{uuid4().hex[:12].upper()}"
    yield name

    async def delete() -> None:
        client = await nats.connect(NATS_URL)
        try:
            await client.jetstream().delete_stream(name)
        except nats.js.errors.NotFoundError:
            pass
        finally:
            await client.close()

    asyncio.run(delete())


def read_stream(name: str) -> list[Message]:
    """Every message in the stream, in stream order: (subject, headers, body)."""

    async def read() -> list[Message]:
        client = await nats.connect(NATS_URL)
        try:
            js = client.jetstream()
            info = await js.stream_info(name)
            messages = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                raw = await js.get_msg(name, seq)
                messages.append((raw.subject or "", dict(raw.headers or {}), raw.data or b""))
            return messages
        finally:
            await client.close()

    return asyncio.run(read())


def publisher(make_streams: MakeStreams, stream: str) -> Streams:
    streams = make_streams(
        nats_url=NATS_URL, nats_stream=stream, nats_subject_prefix=stream.lower()
    )
    assert streams.nats is not None
    return streams


@pytest.mark.nats
def test_jetstream_holds_every_event_once_in_log_order_with_its_cloudevent(
    app: Eportfolio, world: World, make_streams: MakeStreams, stream_name: str
) -> None:
    portfolio = world.enrol()
    streams = publisher(make_streams, stream_name)
    assert streams.nats is not None
    streams.start()
    for _ in range(5):
        world.submit(portfolio)
    assert streams.nats.wait(positions(app)[-1], timeout=10)

    messages = read_stream(stream_name)
    assert [int(h[POSITION_HEADER]) for _, h, _ in messages] == positions(app)
    for subject, headers, body in messages:
        event = from_http({"content-type": CONTENT_TYPE}, body)
        assert headers["Nats-Msg-Id"] == event["id"]
        centre = event["source"].removeprefix("/centres/")
        short = event["type"].removeprefix("uk.eportfolio.")
        assert subject == f"{stream_name.lower()}.{centre}.{short}"


@pytest.mark.nats
def test_a_restarted_publisher_resumes_without_loss_or_duplicate(
    config: Config, app: Eportfolio, world: World, make_streams: MakeStreams, stream_name: str
) -> None:
    portfolio = world.enrol()
    first = publisher(make_streams, stream_name)
    first.start()
    assert first.nats is not None
    assert first.nats.wait(positions(app)[-1], timeout=10)
    first.close()

    for _ in range(3):
        world.submit(portfolio)  # written while no publisher runs

    # A crash after JetStream acknowledged but before the cursor committed: rewind it.
    cursor = open_view_store(config, nats_cursor_name(stream_name))
    try:
        cursor.write(cursor.position(), 2, [])
    finally:
        cursor.close()
    second = publisher(make_streams, stream_name)
    assert second.nats is not None
    assert second.nats.position == 2
    second.start()
    assert second.nats.wait(positions(app)[-1], timeout=10)
    second.close()

    messages = read_stream(stream_name)
    ids = [h["Nats-Msg-Id"] for _, h, _ in messages]
    assert len(ids) == len(set(ids))
    assert [int(h[POSITION_HEADER]) for _, h, _ in messages] == positions(app)
