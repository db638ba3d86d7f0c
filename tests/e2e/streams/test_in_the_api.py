"""The streams inside the real API (`create_app`): its tokens, its policy, its scoping.

A real uvicorn server; two centres built through the API alone; each integrator token sees
its own centre's events on every channel, the administrator sees both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from standardwebhooks import Webhook

from adapters.config import Config
from adapters.http.app import create_app
from tests.e2e.http.conftest import ADMIN_TOKEN, HttpCentre, settings
from tests.e2e.streams.conftest import bearer
from tests.e2e.streams.servers import Receiver, serve


def sources(events: list[dict[str, Any]]) -> set[str]:
    return {e["source"] for e in events}


def test_each_integrator_sees_only_its_centre_on_the_feed_sse_and_webhooks(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPORTFOLIO_WEBHOOKS_ALLOW_PRIVATE", "1")  # the receiver is local
    receiver = Receiver()
    app = create_app(config, settings(tmp_path / "blobs"))
    with (
        serve(receiver, lifespan="off") as hook_url,
        serve(app) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        north, south = HttpCentre.create(client, "North"), HttpCentre.create(client, "South")
        token = north.people["integrator"].token
        hook = client.post(
            "/webhooks", json={"url": f"{hook_url}/h", "from_position": 1}, headers=bearer(token)
        )
        assert hook.status_code == 201, hook.text

        feed = client.get("/events", params={"limit": 1000}, headers=bearer(token)).json()
        assert sources(feed["events"]) == {f"/centres/{north.id}"}
        everything = client.get("/events", params={"limit": 1000}, headers=bearer(ADMIN_TOKEN))
        assert sources(everything.json()["events"]) == {
            f"/centres/{north.id}",
            f"/centres/{south.id}",
        }

        south.enrol()
        portfolio = north.enrol()
        headers = {**bearer(token), "Last-Event-ID": str(feed["next_after"])}
        with connect_sse(client, "GET", "/events/stream", headers=headers) as source:
            live = next(json.loads(e.data) for e in source.iter_sse() if e.event != "caught-up")
        assert live["type"] == "uk.eportfolio.learner.enrolled.v1"
        assert live["subject"] == str(portfolio)

        deadline = time.monotonic() + 10
        while len(receiver.requests) <= len(feed["events"]) and time.monotonic() < deadline:
            time.sleep(0.01)
    secret = hook.json()["secret"]
    bodies = [Webhook(secret).verify(r.body, r.headers) for r in receiver.requests]
    assert [b["id"] for b in bodies] == [e["id"] for e in feed["events"]] + [live["id"]]
