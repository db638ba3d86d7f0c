"""Managing a webhook endpoint over HTTP, delivering to a real receiver on 127.0.0.1.

Signatures are checked by `standardwebhooks`, binary-mode requests parsed by the
`cloudevents` SDK: a rotation signs with both secrets until the old one expires, then only
with the new; an update, a disable and a re-enable keep the cursor, so every event reaches
the endpoint once, in order, whichever URL it had then; a rate limit spaces requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from adapters.streams import Streams
from adapters.streams.endpoints import StreamAccess
from adapters.streams.webhooks import DeliveryPolicy
from service.handlers import Eportfolio
from tests.e2e.streams.conftest import MakeStreams, bearer, positions, stream_app
from tests.e2e.streams.servers import Received, Receiver, Reply, serve
from tests.e2e.streams.test_webhooks import delivered, wait
from tests.world import World


@dataclass
class Served:
    api: httpx.Client
    hook_url: str
    receiver: Receiver
    streams: Streams


@contextmanager
def served(world: World, streams: Streams, receiver: Receiver | None = None) -> Iterator[Served]:
    """The streams' API on a real server for two integrators ("me" of the world's centre,
    "them" of another), and a real receiver."""
    receiver = receiver or Receiver()
    mine = StreamAccess(actor_id=uuid4(), centres=frozenset({world.centre_id}))
    theirs = StreamAccess(actor_id=uuid4(), centres=frozenset({uuid4()}))
    with (
        serve(receiver, lifespan="off") as hook_url,
        serve(stream_app(streams, {"me": mine, "them": theirs})) as api,
        httpx.Client(base_url=api, headers=bearer("me"), timeout=10) as client,
    ):
        yield Served(client, hook_url, receiver, streams)


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: httpx.Response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field


def verifies(request: Received, secret: str) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


def test_a_rotated_secret_signs_beside_the_old_one_until_it_expires_then_alone(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    streams = make_streams()
    now = [datetime.now(UTC)]
    streams.webhooks.clock = lambda: now[0]  # the overlap's end, without waiting for it
    streams.start()
    portfolio = world.enrol()
    with served(world, streams) as s:
        created = ok(s.api.post("/webhooks", json={"url": f"{s.hook_url}/h"}), 201)
        hook, old = f"/webhooks/{created['id']}", created["secret"]
        assert created["old_secret_expires_at"] is None

        def one_more() -> Received:
            count = len(s.receiver.requests)
            world.submit(portfolio)
            wait(lambda: len(s.receiver.requests) == count + 1)
            return s.receiver.requests[-1]

        before = one_more()
        assert verifies(before, old)

        version = s.api.get(hook).headers["ETag"]
        refused(s.api.post(f"{hook}/rotate-secret", headers={"If-Match": '"99"'}), 412, "If-Match")
        rotation = s.api.post(
            f"{hook}/rotate-secret",
            json={"old_secret_expires_in": 3_600},
            headers={"If-Match": version},
        )
        answer = ok(rotation)
        new = answer["secret"]
        assert new.startswith("whsec_")
        assert new != old
        assert rotation.headers["ETag"] != version
        shown = ok(s.api.get(hook))
        assert "secret" not in shown
        assert shown["old_secret_expires_at"] == answer["old_secret_expires_at"]
        assert datetime.fromisoformat(shown["old_secret_expires_at"]) == now[0] + timedelta(hours=1)

        during = one_more()
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        assert verifies(during, old)
        assert verifies(during, new)

        now[0] += timedelta(hours=1, seconds=1)
        assert ok(s.api.get(hook))["old_secret_expires_at"] is None
        after = one_more()
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        assert verifies(after, new)
        assert not verifies(after, old)

        immediate = ok(s.api.post(f"{hook}/rotate-secret", json={"old_secret_expires_in": 0}))
        assert immediate["old_secret_expires_at"] is None
        last = one_more()
        assert verifies(last, immediate["secret"])
        assert not verifies(last, new)
        refused(
            s.api.post(f"{hook}/rotate-secret", json={"old_secret_expires_in": -1}),
            400,
            "old_secret_expires_in",
        )
    assert delivered(s.receiver.requests) == positions(app)[-4:]


def test_an_update_keeps_the_cursor_nothing_resent_nothing_skipped(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    portfolio = world.enrol()
    streams = make_streams()
    streams.start()
    with served(world, streams) as s:
        body = {"url": f"{s.hook_url}/a", "from_position": 1, "rate_limit_per_second": 50}
        hook = f"/webhooks/{ok(s.api.post('/webhooks', json=body), 201)['id']}"
        for _ in range(20):
            world.submit(portfolio)
        wait(lambda: len(s.receiver.requests) >= 5)  # delivering, at most 50 a second

        tag = s.api.get(hook).headers["ETag"]
        moved = s.api.patch(hook, json={"url": f"{s.hook_url}/b"}, headers={"If-Match": tag})
        view = ok(moved)
        assert view["url"] == f"{s.hook_url}/b"
        assert view["rate_limit_per_second"] == 50
        assert moved.headers["ETag"] != tag
        stale = s.api.patch(hook, json={"url": f"{s.hook_url}/c"}, headers={"If-Match": tag})
        refused(stale, 412, "If-Match")
        for _ in range(5):
            world.submit(portfolio)  # after the change: to /b
        expected = positions(app)
        wait(lambda: delivered(s.receiver.requests) == expected)
        wait(lambda: ok(s.api.get(hook))["position"] == expected[-1])  # committed after the 200

    requests = s.receiver.requests
    ids = [r.headers["webhook-id"] for r in requests]
    assert len(ids) == len(set(ids)) == len(expected)  # nothing sent twice
    paths = [r.path for r in requests]
    assert paths == sorted(paths)  # every /a before every /b
    assert paths[-5:] == ["/b"] * 5


def test_new_filters_apply_from_the_cursor_on(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    kept, dropped = world.enrol(), world.enrol()
    streams = make_streams()
    streams.start()
    with served(world, streams) as s:
        body = {"url": f"{s.hook_url}/h", "from_position": 1}
        hook = f"/webhooks/{ok(s.api.post('/webhooks', json=body), 201)['id']}"
        before = positions(app)
        wait(lambda: ok(s.api.get(hook))["position"] == before[-1])

        view = ok(s.api.patch(hook, json={"portfolio_ids": [str(kept)]}))
        assert view["filters"]["portfolio_ids"] == [str(kept)]
        assert view["position"] == before[-1]
        world.submit(dropped)
        skipped = positions(app)[-1]
        world.submit(kept)
        last = positions(app)[-1]
        wait(lambda: ok(s.api.get(hook))["position"] == last)
    assert delivered(s.receiver.requests) == [*before, last]  # not `skipped`, nothing again
    assert skipped not in delivered(s.receiver.requests)
    ids = [r.headers["webhook-id"] for r in s.receiver.requests]
    assert len(ids) == len(set(ids))


def test_bad_changes_are_problems_naming_the_field_and_others_endpoints_are_not_found(
    world: World, make_streams: MakeStreams
) -> None:
    streams = make_streams(policy=DeliveryPolicy())  # https and public hosts only
    with served(world, streams) as s:
        made = ok(s.api.post("/webhooks", json={"url": "https://93.184.215.14/h"}), 201)
        hook = f"/webhooks/{made['id']}"
        patch = s.api.patch
        refused(patch(hook, json={"url": "http://127.0.0.1:9/x"}), 422, "url")
        refused(patch(hook, json={"surprise": 1}), 400, "surprise")
        refused(patch(hook, json={"rate_limit_per_second": 0}), 400, "rate_limit_per_second")
        refused(patch(hook, json={"content_mode": "sideways"}), 400, "content_mode")
        refused(patch(hook, json={"status": "paused"}), 400, "status")
        refused(patch(hook, json={"types": ["uk.eportfolio.no.v1"]}), 400, "type")
        refused(patch(hook, json={}, headers={"If-Match": "7"}), 400, "If-Match")
        response = patch(hook, json={"centre_ids": [str(uuid4())]})  # not my centre
        assert response.status_code == 403, response.text
        assert ok(s.api.get(hook))["version"] == made["version"]  # nothing changed

        theirs = bearer("them")
        calls: list[tuple[str, str, dict[str, Any] | None]] = [
            ("GET", "", None),
            ("PATCH", "", {"status": "disabled"}),
            ("POST", "/rotate-secret", {}),
        ]
        for method, tail, json_body in calls:
            for webhook_id in (made["id"], uuid4()):
                url = f"/webhooks/{webhook_id}{tail}"
                answer = s.api.request(method, url, json=json_body, headers=theirs)
                refused(answer, 404, "webhook_id")
                assert "whsec_" not in answer.text
                assert "93.184.215.14" not in answer.text
        assert ok(s.api.get(hook))["status"] == "active"


def test_a_rate_limit_is_stated_and_spaces_the_requests(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    portfolio = world.enrol()
    for _ in range(10):
        world.submit(portfolio)
    streams = make_streams()
    streams.start()
    with served(world, streams) as s:
        body = {"url": f"{s.hook_url}/h", "from_position": 1, "rate_limit_per_second": 10}
        made = ok(s.api.post("/webhooks", json=body), 201)
        assert made["rate_limit_per_second"] == 10
        assert ok(s.api.get(f"/webhooks/{made['id']}"))["rate_limit_per_second"] == 10
        expected = positions(app)
        wait(lambda: delivered(s.receiver.requests) == expected)
    times = [r.at for r in s.receiver.requests]
    # 1/10 s between the starts of requests; arrival jitter moves only the first and last
    assert times[-1] - times[0] >= (len(times) - 1) / 10 - 0.05


@pytest.mark.parametrize("how", ["by its owner", "after failing too long"])
def test_a_disabled_endpoint_re_enabled_resumes_where_it_stopped(
    app: Eportfolio, world: World, make_streams: MakeStreams, how: str
) -> None:
    failing = {"from": 0 if how == "by its owner" else 4}

    def script(n: int, path: str) -> Reply:
        return (500, {}) if failing["from"] and n >= failing["from"] else (200, {})

    portfolio = world.enrol()
    streams = make_streams(policy=DeliveryPolicy(max_attempts=3, base_delay=0.01, timeout=5.0,
                                                 allow_private=True))  # fmt: skip
    streams.start()
    with served(world, streams, Receiver(script)) as s:
        body = {"url": f"{s.hook_url}/h", "from_position": 1}
        hook = f"/webhooks/{ok(s.api.post('/webhooks', json=body), 201)['id']}"
        if how == "by its owner":
            wait(lambda: ok(s.api.get(hook))["position"] == positions(app)[-1])
            shown = ok(s.api.patch(hook, json={"status": "disabled"}))
            assert (shown["status"], shown["status_reason"]) == (
                "disabled",
                "disabled by its owner",
            )
        else:
            wait(lambda: ok(s.api.get(hook))["status"] == "disabled")
            shown = ok(s.api.get(hook))
            assert "3 failed attempts" in shown["status_reason"]
        stopped_at, sent = shown["position"], len(s.receiver.requests)
        for _ in range(5):
            world.submit(portfolio)
        time.sleep(0.3)
        assert len(s.receiver.requests) == sent  # nothing while disabled
        assert ok(s.api.get(hook))["position"] == stopped_at

        failing["from"] = 0
        enabled = ok(s.api.patch(hook, json={"status": "active"}))
        assert (enabled["status"], enabled["position"]) == ("active", stopped_at)
        expected = positions(app)
        wait(lambda: delivered(s.receiver.requests) == expected)
    resumed = s.receiver.requests[sent:]
    assert int(json.loads(resumed[0].body)["sequence"]) == min(
        p for p in expected if p > stopped_at
    )
    ok_ids = [r.headers["webhook-id"] for r in s.receiver.requests if r.status == 200]
    assert len(ok_ids) == len(set(ok_ids)) == len(expected)  # nothing twice, nothing skipped


def test_binary_mode_puts_the_attributes_in_headers_and_the_data_in_the_body(
    app: Eportfolio, world: World, make_streams: MakeStreams
) -> None:
    world.enrol()
    streams = make_streams()
    streams.start()
    with served(world, streams) as s:
        body = {"url": f"{s.hook_url}/h", "from_position": 1, "content_mode": "binary"}
        made = ok(s.api.post("/webhooks", json=body), 201)
        assert made["content_mode"] == "binary"
        expected = positions(app)
        wait(lambda: len(s.receiver.requests) == len(expected))
        feed = ok(s.api.get("/events", params={"limit": 1000}))["events"]

        ok(s.api.patch(f"/webhooks/{made['id']}", json={"content_mode": "structured"}))
        world.submit(world.enrol())
        wait(lambda: len(s.receiver.requests) == len(positions(app)))

    requests = s.receiver.requests
    assert len(feed) == len(expected)
    for request, structured in zip(requests[: len(expected)], feed, strict=True):
        assert verifies(request, made["secret"])
        assert request.headers["content-type"] == "application/json"
        assert request.headers["ce-id"] == request.headers["webhook-id"]
        event = from_http(HTTPMessage(headers=request.headers, body=request.body), JSONFormat())
        attributes = event.get_attributes()
        names = ("specversion", "id", "source", "type", "subject", "dataschema", "sequence",
                 "partitionkey", "recordedtime", "effectivedate")  # fmt: skip
        for name in names:
            assert attributes.get(name) == structured.get(name), name
        assert attributes["time"] == datetime.fromisoformat(structured["time"])
        assert event.get_data() == structured["data"]
    assert "ce-id" not in requests[-1].headers  # structured again after the change
    assert requests[-1].headers["content-type"] == "application/cloudevents+json"
    assert int(json.loads(requests[-1].body)["sequence"]) == positions(app)[-1]
