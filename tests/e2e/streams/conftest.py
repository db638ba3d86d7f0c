"""Fixtures for the stream tests: an app on each store, its streams, and helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from litestar import Litestar, Request

from adapters.bootstrap import build
from adapters.config import Config
from adapters.http.problems import exception_handlers, problem, problem_plugin
from adapters.streams import Streams, build_streams
from adapters.streams.endpoints import StreamAccess, StreamsPlugin
from adapters.streams.settings import StreamSettings
from adapters.streams.webhooks import DeliveryPolicy
from service.handlers import Eportfolio
from tests.world import World

BASE_URL = "https://eportfolio.test"
FAST = DeliveryPolicy(timeout=5.0, base_delay=0.01, max_delay=2.0, allow_private=True)

MakeStreams = Callable[..., Streams]


@pytest.fixture
def app(config: Config) -> Iterator[Eportfolio]:
    app = build(config)
    yield app
    app.ledger.close()


@pytest.fixture
def world(app: Eportfolio) -> World:
    return World(app)


@pytest.fixture
def make_streams(config: Config, app: Eportfolio) -> Iterator[MakeStreams]:
    """Streams over the app's ledger (not started), closed at the end of the test."""
    with ExitStack() as stack:

        def make(policy: DeliveryPolicy = FAST, **settings: Any) -> Streams:
            defaults: dict[str, Any] = {"public_url": BASE_URL, "webhooks_allow_private": True}
            streams = build_streams(
                config, app.ledger, StreamSettings(**{**defaults, **settings}), policy=policy
            )
            stack.callback(streams.close)
            return streams

        yield make


def positions(app: Eportfolio, after: int = 0) -> list[int]:
    """Every published position in the log after `after`, straight from the recorder."""
    from adapters.streams.feed import ANY

    topics = ANY.topics()
    notes = app.ledger.recorder.select_notifications(
        start=after, limit=1_000_000, topics=topics, inclusive_of_start=False
    )
    return [n.id for n in notes]


def stream_app(streams: Streams, tokens: dict[str, StreamAccess]) -> Litestar:
    """A litestar app serving only the stream endpoints, with bearer tokens from `tokens`."""

    def access(request: Request[Any, Any, Any]) -> StreamAccess:
        _, _, token = request.headers.get("authorization", "").partition(" ")
        if token not in tokens:
            raise problem(401, "unknown token")
        return tokens[token]

    handlers: dict[int | type[Exception], Any] = dict(exception_handlers().items())
    return Litestar(
        plugins=[problem_plugin(), StreamsPlugin(lambda _: streams, access)],
        exception_handlers=handlers,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
