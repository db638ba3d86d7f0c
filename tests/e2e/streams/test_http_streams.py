"""The stream endpoints over HTTP: the pull feed, scoping, schemas and AsyncAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import jsonschema
import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1.http import from_dict
from litestar.testing import TestClient

from adapters.streams.endpoints import StreamAccess
from adapters.streams.envelope import TYPES
from adapters.streams.schemas import asyncapi_document
from adapters.streams.settings import StreamSettings
from service.handlers import Eportfolio
from tests.e2e.streams.conftest import BASE_URL, MakeStreams, bearer, positions, stream_app
from tests.world import World

Client = TestClient[Any]
HOOK = "https://example.com/hook"  # IANA's: resolvable and public, never called here


@pytest.fixture
def two_centres(app: Eportfolio) -> tuple[World, World]:
    north, south = World(app), World(app)
    for world in (north, south):
        portfolio = world.enrol()
        world.submit(portfolio)
    return north, south


@pytest.fixture
def client(
    app: Eportfolio, two_centres: tuple[World, World], make_streams: MakeStreams
) -> Iterator[Client]:
    north, _ = two_centres
    tokens = {
        "north": StreamAccess(actor_id=uuid4(), centres=frozenset({north.centre_id})),
        "admin": StreamAccess(actor_id=uuid4(), centres=None),
    }
    with TestClient(stream_app(make_streams(), tokens)) as client:
        yield client


def pages(client: Client, token: str, **params: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    for _ in range(1_000):
        response = client.get("/events", params={**params, "after": after}, headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        if not body["events"]:
            return events
        events += body["events"]
        after = body["next_after"]
    raise AssertionError("the feed did not end")


def test_the_feed_over_http_is_the_log_scoped_to_the_callers_centres(
    app: Eportfolio, two_centres: tuple[World, World], client: Client
) -> None:
    north, _ = two_centres
    everything = pages(client, "admin", limit=4)
    assert [int(e["sequence"]) for e in everything] == positions(app)
    for event in everything:
        parsed = from_dict(event)
        assert parsed["id"] == event["id"]

    theirs = pages(client, "north", limit=3)
    assert theirs == [e for e in everything if e["source"] == f"/centres/{north.centre_id}"]
    assert len(theirs) < len(everything)

    submitted = pages(client, "north", type="uk.eportfolio.evidence.submitted.v1")
    assert [e["type"] for e in submitted] == ["uk.eportfolio.evidence.submitted.v1"]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"limit": 0}, 400, "limit"),
        ({"after": -1}, 400, "after"),
        ({"type": "uk.eportfolio.nothing.v1"}, 400, "type"),
        ({"centre_id": "not-a-uuid"}, 400, "centre_id"),
    ],
)
def test_the_feed_refuses_bad_queries_with_problem_details(
    client: Client, params: dict[str, Any], status: int, field: str
) -> None:
    response = client.get("/events", params=params, headers=bearer("north"))
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text


def test_out_of_scope_centres_and_unknown_tokens_are_refused(
    two_centres: tuple[World, World], client: Client
) -> None:
    _, south = two_centres
    asked = client.get(
        "/events", params={"centre_id": str(south.centre_id)}, headers=bearer("north")
    )
    assert asked.status_code == 403
    assert client.get("/events", headers=bearer("nobody")).status_code == 401
    stream = client.get("/events/stream", headers={**bearer("north"), "Last-Event-ID": "x1"})
    assert stream.status_code == 400


def test_every_dataschema_url_serves_the_schema_its_data_satisfies(client: Client) -> None:
    for event in pages(client, "admin"):
        path = event["dataschema"].removeprefix(BASE_URL)
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/schema+json")
        schema = response.json()
        assert schema["$id"] == event["dataschema"]
        jsonschema.Draft202012Validator(schema).validate(event["data"])
    assert len({f"/schemas/events/{t}.json" for t in TYPES}) == len(TYPES)
    assert client.get("/schemas/events/uk.eportfolio.nothing.v1.json").status_code == 404


def test_the_asyncapi_document_is_served(client: Client) -> None:
    response = client.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(
        json.dumps(asyncapi_document(StreamSettings(public_url=BASE_URL)))
    )


def test_the_feed_answers_a_cloudevents_batch_when_asked_and_pages_the_same(
    client: Client,
) -> None:
    """`Accept: application/cloudevents-batch+json`: a JSON array of structured CloudEvents,
    each read by the SDK; the cursor rides in a header, and following it pages the log."""
    expected = pages(client, "admin", limit=4)
    batch = {**bearer("admin"), "Accept": "application/cloudevents-batch+json"}
    read: list[dict[str, Any]] = []
    url: str | None = "/events?limit=4"
    while url is not None:
        response = client.get(url, headers=batch)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/cloudevents-batch+json")
        events = response.json()
        assert isinstance(events, list)
        for raw in events:
            parsed = JSONFormat().read(None, json.dumps(raw).encode())
            assert parsed.get_id() == raw["id"]
        read += events
        cursor = response.headers["Eportfolio-Next-After"]
        link = response.headers["Link"]
        assert link.endswith('>; rel="next"')
        assert f"after={cursor}" in link
        assert "limit=4" in link
        url = link[link.index("<") + 1 : link.index(">")] if events else None
    assert read == expected
    plain = client.get("/events", params={"limit": 4}, headers=bearer("admin"))
    assert plain.headers["content-type"].startswith("application/json")


def test_a_cursor_past_the_end_of_the_log_is_refused_not_an_empty_page(
    app: Eportfolio, client: Client
) -> None:
    """A client restored from a backup newer than the server's log learns it is ahead on
    the feed, SSE and webhook registration; at the end itself it gets an empty page."""
    end = positions(app)[-1]
    at_end = client.get("/events", params={"after": end}, headers=bearer("admin"))
    assert at_end.status_code == 200
    assert at_end.json() == {"events": [], "next_after": end}
    asks: list[tuple[str, str, dict[str, Any], str]] = [
        ("GET", "/events", {"params": {"after": end + 5}}, "after"),
        ("GET", "/events/stream", {"params": {"after": end + 5}}, "after"),
        ("GET", "/events/stream", {"headers": {"Last-Event-ID": str(end + 1)}}, "Last-Event-ID"),
        ("POST", "/webhooks", {"json": {"url": HOOK, "from_position": end + 1}}, "from_position"),
    ]
    for method, path, extra, field in asks:
        headers = {**bearer("admin"), **extra.pop("headers", {})}
        response = client.request(method, path, headers=headers, **extra)
        assert response.status_code == 409, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert (problem["rule"], problem["field"], problem["log_end"]) == (
            "cursor_ahead",
            field,
            end,
        )
        assert f"resume from {end}" in problem["detail"]
