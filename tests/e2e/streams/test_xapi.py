"""xAPI to a centre's LRS, end to end: a real Ralph LRS, read back through its xAPI API.

What a centre relies on: every observation, questioning, decision, countersignature and
certification of its own learners arrives, in log order, as statements whose actor is a
pseudonymous account; a retry or a restart never stores a statement twice; and once a
learner is erased nothing sent afterwards carries their data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import msgspec
import pytest

from adapters.config import Config
from adapters.http.app import create_app
from adapters.streams import Streams
from adapters.streams.lrs_store import Lrs
from adapters.streams.xapi import ERASED_NAME, MAPPED, statement_id
from domain import commands as c
from domain.events import (
    DecisionCountersigned,
    DecisionRecorded,
    LearnerEnrolled,
    ObservationRecorded,
    Outcome,
    PortfolioEvent,
    QuestioningRecorded,
    UnitCertified,
)
from service.erasure import erase_learner
from service.handlers import Eportfolio
from tests.e2e.http.conftest import SEED_000, HttpCentre, settings
from tests.e2e.streams.conftest import BASE_URL, MakeStreams
from tests.e2e.streams.ralph import PASSWORD, USERNAME, Ralph, ralph
from tests.e2e.streams.servers import serve
from tests.world import World

__all__ = ["ralph"]  # the fixture

ADL = "http://adlnet.gov/expapi/verbs/"
FEEDBACK = "Lee handled the angry customer calmly and kept notes"


def mapped_events(app: Eportfolio, centre_id: UUID) -> list[PortfolioEvent]:
    """The centre's events an LRS receives, in log order, straight from the log."""
    centres: dict[UUID, UUID] = {}
    found: list[PortfolioEvent] = []
    for notification in app.ledger.notifications():
        event = app.ledger.decode(notification).event
        if isinstance(event, LearnerEnrolled):
            centres[event.portfolio_id] = event.centre_id
        if isinstance(event, MAPPED) and centres.get(event.portfolio_id) == centre_id:
            found.append(event)
    return found


def expected_ids(events: list[PortfolioEvent]) -> list[str]:
    ids: list[str] = []
    for event in events:
        criteria = getattr(event, "criteria", None)
        if isinstance(event, DecisionCountersigned | UnitCertified) or criteria is None:
            ids.append(str(statement_id(event.event_id)))
        else:
            ids += [str(statement_id(event.event_id, x)) for x in criteria]
    return ids


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        time.sleep(0.05)


def delivered_to_head(streams: Streams, lrs: Lrs, app: Eportfolio) -> Callable[[], bool]:
    head = app.ledger.recorder.max_notification_id() or 0

    def done() -> bool:
        now = streams.xapi.store.get(lrs.id)
        return now is not None and now.position >= head

    return done


def register(streams: Streams, ralph: Ralph, world: World) -> Lrs:
    return streams.xapi.register(
        world.centre_id, world.centre_admin.id, ralph.url, USERNAME, PASSWORD
    )


def test_every_assessment_event_reaches_the_lrs_in_order_as_pseudonymous_statements(
    app: Eportfolio, world: World, make_streams: MakeStreams, ralph: Ralph
) -> None:
    world.complete(world.trainee, sign_off=False)  # a trainee's decision, countersigned
    portfolio = world.certified()
    other = World(app)  # another centre: none of its events may reach this LRS
    other.observe(other.enrol(), ("PC3",))
    streams = make_streams()
    lrs = register(streams, ralph, world)
    streams.start()
    wait_until(delivered_to_head(streams, lrs, app), "the LRS's cursor at the log's head")

    events = mapped_events(app, world.centre_id)
    assert {type(e) for e in events} == set(MAPPED)
    statements = ralph.statements()
    assert [s["id"] for s in statements] == expected_ids(events)  # all, once, in log order

    pseudonyms = {s["actor"]["account"]["name"] for s in statements}
    assert len(pseudonyms) == 1  # one learner, one stable pseudonym
    for s in statements:
        assert set(s["actor"]) <= {"objectType", "account"}  # no name, no mbox
        assert s["actor"]["account"]["homePage"] == BASE_URL
        assert s["context"]["registration"] in {str(e.portfolio_id) for e in events}
        assert s["context"]["instructor"]["account"]["name"] not in pseudonyms
    raw = ralph.stored_bytes()
    for name in (b"Lee Learner", b"Alex Assessor", b"Pat Admin", b"Northgate", b"mailto:"):
        assert name not in raw.replace(b"mailto:lrs@example.org", b"")

    by_event = {str(e.event_id): e for e in events}
    for s in statements:
        event = by_event[s["context"]["extensions"]["urn:eportfolio:xapi:ext:event"]]
        assert (
            s["verb"]["id"]
            == {
                ObservationRecorded: "urn:eportfolio:xapi:verb:observed",
                QuestioningRecorded: ADL + "answered",
                DecisionRecorded: ADL + "passed",
                DecisionCountersigned: "urn:eportfolio:xapi:verb:countersigned",
                UnitCertified: ADL + "completed",
            }[type(event)]
        )
    unit = f"{BASE_URL}/units/{app.portfolio(portfolio).unit_code}"
    certified = statements[-1]
    assert certified["object"]["id"] == unit
    assert certified["result"] == {"completion": True, "success": True}
    decision = next(s for s in statements if s["verb"]["id"] == ADL + "passed")
    assert decision["object"]["id"].startswith(unit + "#")
    assert decision["context"]["contextActivities"]["parent"][0]["id"] == unit
    assert decision["result"]["success"] is True

    attempts = streams.xapi.store.attempts(lrs.id)
    assert [a.outcome for a in attempts] == ["delivered"] * len(events)
    assert [a.position for a in attempts] == sorted(a.position for a in attempts)


def test_a_retry_or_a_restart_from_the_start_never_stores_a_statement_twice(
    app: Eportfolio, world: World, make_streams: MakeStreams, ralph: Ralph
) -> None:
    world.complete()
    streams = make_streams()
    lrs = register(streams, ralph, world)
    streams.start()
    wait_until(delivered_to_head(streams, lrs, app), "the first delivery")
    first = ralph.statements()
    streams.close()

    rewound = make_streams()  # a restart, its cursor rewound: everything is sent again
    store = rewound.xapi.store
    current = store.get(lrs.id)
    assert current is not None
    assert store.advance(lrs.id, current.position, 0)
    rewound.start()
    wait_until(delivered_to_head(rewound, lrs, app), "the second delivery")

    again = ralph.statements()
    assert [s["id"] for s in again] == [s["id"] for s in first]  # the same ids, none twice
    attempts = store.attempts(lrs.id)
    half = len(attempts) // 2
    assert {a.outcome for a in attempts} == {"delivered"}
    assert [a.statement_ids for a in attempts[half:]] == [a.statement_ids for a in attempts[:half]]
    assert [a.status_code for a in attempts[half:]] == [204] * half  # "identical: kept once"


class LosingProxy:
    """In front of the LRS: passes every request on, but loses the answer to the first
    `lose` of them (503 instead), as a dropped connection after the LRS stored them would."""

    def __init__(self, target: str, lose: int) -> None:
        self.target, self.lose, self.seen = target, lose, 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"]
        url = self.target + scope["path"].removeprefix("/xAPI/")
        async with httpx.AsyncClient(trust_env=False) as client:
            answer = await client.request(scope["method"], url, content=body, headers=headers)
        self.seen += 1
        status = 503 if self.seen <= self.lose else answer.status_code
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": answer.content})


def test_an_answer_lost_after_the_lrs_stored_the_statements_is_retried_without_a_copy(
    app: Eportfolio, world: World, make_streams: MakeStreams, ralph: Ralph
) -> None:
    world.complete()
    proxy = LosingProxy(ralph.url, lose=2)
    streams = make_streams()
    with serve(proxy, lifespan="off") as url:
        lrs = streams.xapi.register(
            world.centre_id, world.centre_admin.id, url + "/xAPI/", USERNAME, PASSWORD
        )
        streams.start()
        wait_until(delivered_to_head(streams, lrs, app), "delivery through the lossy proxy")

    statements = ralph.statements()
    assert [s["id"] for s in statements] == expected_ids(mapped_events(app, world.centre_id))
    attempts = streams.xapi.store.attempts(lrs.id)
    assert [(a.attempt, a.status_code, a.outcome) for a in attempts[:3]] == [
        (1, 503, "retrying"),
        (2, 503, "retrying"),
        (3, 204, "delivered"),  # the LRS had it already: identical, so kept once
    ]
    assert len({a.position for a in attempts}) == len(attempts) - 2


def test_statements_built_after_an_erasure_carry_none_of_the_learners_data(
    app: Eportfolio, world: World, make_streams: MakeStreams, ralph: Ralph, config: Config
) -> None:
    portfolio = world.enrol()
    evidence = world.observe(portfolio, ("PC3",))
    streams = make_streams()
    lrs = register(streams, ralph, world)
    streams.start()
    wait_until(delivered_to_head(streams, lrs, app), "the observation before the erasure")
    before = ralph.statements()
    pseudonym = before[0]["actor"]["account"]["name"]
    streams.close()  # the LRS is unreachable a while: what follows waits, unsent

    decision = c.RecordDecision(
        decision_id=UUID(int=7), outcome=Outcome.NOT_YET, criteria=("PC3",),
        evidence_ids=(evidence,), feedback=FEEDBACK,
    )  # fmt: skip
    app.execute(world.assessor, decision, target=portfolio)
    world.centre_cmd(c.SetRetentionPolicy(records_years=0))
    app.execute(world.centre_admin, c.WithdrawLearner(reason="left"), target=portfolio)
    erase = c.EraseLearner(learner_id=world.learner.id, reason="Art. 17 request")
    erase_learner(app, world.centre_admin, world.centre_id, erase)

    resumed = make_streams()
    resumed.start()
    wait_until(delivered_to_head(resumed, lrs, app), "the pending decision after the erasure")

    after = ralph.statements()[len(before) :]
    assert [s["verb"]["id"] for s in after] == [ADL + "failed"]
    sent = msgspec.json.encode(after)
    assert pseudonym.encode() not in sent
    assert str(portfolio).encode() not in sent
    assert FEEDBACK.encode() not in ralph.stored_bytes()
    assert after[0]["actor"]["account"]["name"] == ERASED_NAME
    assert after[0]["result"] == {"success": False}  # the outcome, without the feedback


def test_a_centre_admin_registers_the_lrs_over_http_and_sees_what_was_sent(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ralph: Ralph
) -> None:
    monkeypatch.setenv("EPORTFOLIO_WEBHOOKS_ALLOW_PRIVATE", "1")  # the LRS is local
    monkeypatch.setenv("EPORTFOLIO_PUBLIC_URL", BASE_URL)
    app = create_app(config, settings(tmp_path / "blobs"))
    with serve(app) as url, httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        north, south = HttpCentre.create(client, "North"), HttpCentre.create(client, "South")
        portfolio = north.enrol()
        seen = {"environment": "workplace", "criteria": ["PC3"]}
        north.as_("assessor").ok("POST", f"/portfolios/{portfolio}/observations", seen)
        admin = north.as_("centre_admin")
        body = {"endpoint": ralph.url, "username": USERNAME, "password": PASSWORD}
        made = admin.request("POST", "/lrs", json=body)
        assert made.status_code == 201, made.text
        lrs = made.json()
        assert PASSWORD not in made.text
        assert lrs["centre_id"] == str(north.id)
        assert admin.ok("GET", "/lrs") == [lrs]
        assert south.as_("centre_admin").ok("GET", "/lrs") == []
        other = south.as_("centre_admin").request("GET", f"/lrs/{lrs['id']}")
        assert other.status_code == 404  # another centre's LRS does not exist for them
        refused = north.as_("integrator").request("GET", "/lrs")
        assert refused.status_code == 403

        deliveries: list[dict[str, Any]] = []

        def sent() -> bool:
            deliveries[:] = admin.ok("GET", f"/lrs/{lrs['id']}/deliveries")["attempts"]
            return bool(deliveries)

        wait_until(sent, "the observation's delivery")
        statements = ralph.statements()
        assert [str(i) for i in deliveries[0]["statement_ids"]] == [s["id"] for s in statements]
        assert deliveries[0]["outcome"] == "delivered"
        assert statements[0]["object"]["id"] == f"{BASE_URL}/units/{SEED_000}#PC3"
        assert PASSWORD not in admin.request("GET", f"/lrs/{lrs['id']}").text

        gone = admin.request("DELETE", f"/lrs/{lrs['id']}")
        assert gone.status_code == 204
        assert admin.request("GET", f"/lrs/{lrs['id']}").status_code == 404
