"""Webhooks, end to end: a real server delivering to a real receiver on 127.0.0.1.

Every delivery is checked by independent clients: `standardwebhooks` verifies the
signature, the `cloudevents` SDK parses the body. A receiver that fails its first attempts
(503/429 with Retry-After, 500) still gets every event, in order, deduplicated by id.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from standardwebhooks import Webhook

from adapters.streams import Streams
from adapters.streams.endpoints import StreamAccess
from adapters.streams.feed import ANY
from adapters.streams.webhooks import DeliveryPolicy, backoff
from service.handlers import Eportfolio
from tests.e2e.streams.conftest import FAST, MakeStreams, bearer, positions, stream_app
from tests.e2e.streams.servers import Received, Receiver, Reply, serve
from tests.world import World

OK: Reply = (200, {})


def verified(requests: list[Received], secret: str) -> list[tuple[int, str]]:
    """(position, event id) of each request, after checking its signature and envelope."""
    out = []
    for request in requests:
        Webhook(secret).verify(request.body, request.headers)
        event = from_http(HTTPMessage(headers=request.headers, body=request.body), JSONFormat())
        attributes = event.get_attributes()
        assert attributes["id"] == request.headers["webhook-id"]
        out.append((int(attributes["sequence"]), attributes["id"]))
    return out


def delivered(requests: list[Received]) -> list[int]:
    """Positions of the requests answered 2xx, first time each event id was delivered."""
    seen: dict[str, int] = {}
    for r in requests:
        if 200 <= r.status < 300:
            seen.setdefault(r.headers["webhook-id"], json.loads(r.body)["sequence"])
    return [int(s) for s in seen.values()]


def wait(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_failing_receiver_gets_every_event_in_order_signed_and_deduplicable(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    def script(n: int, path: str) -> Reply:
        if n < 3:
            return 503, {"Retry-After": "0"}
        if n == 3:
            return 429, {"Retry-After": "1"}
        return (500, {}) if n % 7 == 0 else OK

    receiver = Receiver(script)
    streams = make_streams()
    access = StreamAccess(actor_id=uuid4(), centres=frozenset({world.centre_id}))
    portfolio = world.enrol()
    with (
        serve(receiver, lifespan="off") as hook_url,
        serve(stream_app(streams, {"t": access})) as api,
        httpx.Client(base_url=api, headers=bearer("t"), timeout=10) as client,
    ):
        created = client.post("/webhooks", json={"url": f"{hook_url}/hook", "from_position": 1})
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["secret"].startswith("whsec_")
        for _ in range(30):
            world.submit(portfolio)
        expected = positions(app)
        wait(lambda: delivered(receiver.requests) == expected)

        def shown() -> dict[str, Any]:
            found: dict[str, Any] = client.get(f"/webhooks/{hook['id']}").json()
            return found

        wait(lambda: shown()["position"] == expected[-1])  # it commits after the answer
        assert "secret" not in shown()
        attempts = client.get(f"/webhooks/{hook['id']}/deliveries", params={"limit": 1000})
        records = attempts.json()["attempts"]

    requests = receiver.requests
    sent = verified(requests, hook["secret"])
    assert [p for p, _ in sent] == sorted(p for p, _ in sent)  # never ahead of a retry
    assert len({i for _, i in sent}) == len(expected)
    assert [r["status_code"] for r in records] == [r.status for r in requests]
    assert {r["outcome"] for r in records} == {"retrying", "delivered"}
    assert all(r["duration_ms"] >= 0 for r in records)
    assert requests[4].at - requests[3].at >= 0.95  # Retry-After: 1 was honoured


def test_410_disables_the_endpoint_and_redelivery_resumes_from_a_chosen_position(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    gone = {"yes": True}

    def script(n: int, path: str) -> Reply:
        return (410, {}) if n == 4 and gone["yes"] else OK

    receiver = Receiver(script)
    streams = make_streams()
    streams.start()
    with serve(receiver, lifespan="off") as hook_url:
        hook, _ = streams.webhooks.register(uuid4(), f"{hook_url}/h", ANY, None, 1)
        expected = positions(app)
        wait(lambda: len(receiver.requests) == 5)
        wait(lambda: _status(streams, hook.id) == "disabled")
        time.sleep(0.2)
        assert len(receiver.requests) == 5  # nothing after the 410
        assert "410" in _reason(streams, hook.id)

        gone["yes"] = False
        again = expected[2]
        assert streams.webhooks.redeliver(hook.id, from_position=again) is not None
        wait(lambda: delivered(receiver.requests[5:]) == [p for p in expected if p >= again])
    assert delivered(receiver.requests[:5]) == expected[:4]


def test_the_cursor_survives_a_restart_and_nothing_delivered_is_sent_again(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    receiver = Receiver()
    with serve(receiver, lifespan="off") as hook_url:
        first = make_streams()
        first.start()
        first.webhooks.register(uuid4(), f"{hook_url}/h", ANY, None, 1)
        wait(lambda: delivered(receiver.requests) == positions(app))
        first.close()

        portfolio = world.enrol()
        world.submit(portfolio)
        assert len(receiver.requests) == len(positions(app)) - 2

        second = make_streams()
        second.start()
        wait(lambda: delivered(receiver.requests) == positions(app))
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == len(set(ids))


def test_redirects_are_not_followed_and_slow_endpoints_time_out(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    def script(n: int, path: str) -> Reply:
        return (307, {"Location": "/elsewhere"}) if n == 0 else OK

    receiver = Receiver(script, stall_first=1.0)
    streams = make_streams(policy=DeliveryPolicy(timeout=0.3, base_delay=0.01, allow_private=True))
    streams.start()
    with serve(receiver, lifespan="off", grace=1) as hook_url:
        hook, _ = streams.webhooks.register(uuid4(), f"{hook_url}/h", ANY, None, 1)
        wait(lambda: delivered(receiver.requests) == positions(app))
    assert {r.path for r in receiver.requests} == {"/h"}
    attempts = streams.webhooks.store.attempts(hook.id)
    assert attempts[0].status_code is None
    assert "Timeout" in attempts[0].error
    assert attempts[1].status_code == 307
    assert attempts[1].outcome == "retrying"


def test_the_http_api_guards_what_an_integrator_may_register_and_see(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    other_centre = World(app).centre_id
    mine = StreamAccess(actor_id=uuid4(), centres=frozenset({world.centre_id}))
    theirs = StreamAccess(actor_id=uuid4(), centres=frozenset({other_centre}))
    streams = make_streams(policy=DeliveryPolicy())  # https and public hosts only
    with (
        serve(stream_app(streams, {"me": mine, "them": theirs})) as api,
        httpx.Client(base_url=api, timeout=10) as client,
    ):
        post = client.post

        def refused(token: str, body: dict[str, object], status: int, field: str) -> None:
            response = post("/webhooks", json=body, headers=bearer(token))
            assert response.status_code == status, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json().get("field", field) == field

        refused("me", {"url": "http://127.0.0.1:9/x"}, 422, "url")
        refused("me", {"url": "https://example.com/x", "surprise": 1}, 400, "surprise")
        refused("me", {"url": "https://x.test/", "centre_ids": [str(other_centre)]}, 403, "")
        refused("me", {"url": "https://x.test/", "types": ["uk.eportfolio.no.v1"]}, 400, "type")
        # Registered from the log's head and nothing is written after: no delivery is tried.
        created = post("/webhooks", json={"url": "https://93.184.215.14/h"}, headers=bearer("me"))
        assert created.status_code == 201
        hook_id = created.json()["id"]
        assert client.get(f"/webhooks/{hook_id}", headers=bearer("them")).status_code == 404
        assert client.get("/webhooks", headers=bearer("them")).json() == []
        assert [h["id"] for h in client.get("/webhooks", headers=bearer("me")).json()] == [hook_id]
        assert client.delete(f"/webhooks/{hook_id}", headers=bearer("me")).status_code == 204
        assert client.get(f"/webhooks/{hook_id}", headers=bearer("me")).status_code == 404


def _status(streams: Streams, hook_id: UUID) -> str:
    found = streams.webhooks.store.get(hook_id)
    return found.status.value if found else "missing"


def _reason(streams: Streams, hook_id: UUID) -> str:
    found = streams.webhooks.store.get(hook_id)
    return found.status_reason if found else ""


@pytest.mark.parametrize("attempt", [1, 2, 5, 30])
def test_backoff_is_full_jitter_under_an_exponential_ceiling(attempt: int) -> None:
    rng = random.Random(attempt)
    delays = [backoff(attempt, FAST, rng) for _ in range(500)]
    ceiling = min(FAST.max_delay, FAST.base_delay * 2 ** (attempt - 1))
    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling * 0.9  # spread over the whole range, not clustered
    assert min(delays) < ceiling * 0.1
