"""The pull feed: every event once, in log order, resumable, filtered and scoped."""

from __future__ import annotations

import json
from uuid import UUID, uuid5

import pytest

from adapters.streams.envelope import StreamEvent
from adapters.streams.feed import ANY, EventLog, Filters, UnknownType, Visible, everything
from domain import commands as c
from domain.events import Environment
from domain.spec import Method
from service.codec import Receipt
from service.handlers import Eportfolio
from tests.e2e.streams.conftest import BASE_URL, positions
from tests.world import World


def drain(
    log: EventLog, limit: int, filters: Filters = ANY, visible: Visible = everything
) -> list[StreamEvent]:
    """Follow the cursor until the log's end, as a client would (bounded in rounds)."""
    events: list[StreamEvent] = []
    after = 0
    for _ in range(10_000):
        page = log.read(after, limit, filters, visible)
        events += page.events
        assert page.next_after >= after
        after = page.next_after
        if page.at_end:
            return events
    raise AssertionError("the feed did not reach the end")


def submit_with_key(world: World, portfolio_id: UUID, key: str) -> None:
    command = c.SubmitEvidence(
        evidence_id=uuid5(portfolio_id, key),
        method=Method.WORK_PRODUCT,
        title="Rota",
        environment=Environment.WORKPLACE,
        authenticity_declared=True,
    )
    world.app.execute(world.learner, command, target=portfolio_id, idempotency_key=key)


def test_the_feed_pages_through_every_event_in_log_order_without_receipts(
    app: Eportfolio, world: World
) -> None:
    portfolio = world.enrol()
    world.submit(portfolio)
    submit_with_key(world, portfolio, "once")
    submit_with_key(world, portfolio, "once")  # a replay: no new event
    world.observe(portfolio, ("PC1",))
    stored = app.ledger.recorder.select_notifications(start=1, limit=10_000)
    assert any(n.topic == Receipt.TOPIC for n in stored)

    log = EventLog(app.ledger, BASE_URL)
    for limit in (1, 3, 1000):
        events = drain(log, limit)
        assert [e.position for e in events] == positions(app)
        assert len({e.event_id for e in events}) == len(events)
        assert all(json.loads(e.body)["type"] == e.type for e in events)


def test_the_feed_filters_by_centre_portfolio_and_type_within_the_callers_scope(
    app: Eportfolio,
) -> None:
    north, south = World(app), World(app)
    north_portfolio, south_portfolio = north.enrol(), south.enrol()
    for world, portfolio in ((north, north_portfolio), (south, south_portfolio)):
        world.submit(portfolio)
        world.submit(portfolio)
    log = EventLog(app.ledger, BASE_URL)

    by_centre = drain(log, 7, Filters(centre_ids=frozenset({north.centre_id})))
    assert by_centre
    assert {e.centre_id for e in by_centre} == {north.centre_id}
    assert len(by_centre) == len([e for e in drain(log, 50) if e.centre_id == north.centre_id])

    by_portfolio = drain(log, 7, Filters(portfolio_ids=frozenset({south_portfolio})))
    assert [e.type for e in by_portfolio] == [
        "uk.eportfolio.learner.enrolled.v1",
        "uk.eportfolio.evidence.submitted.v1",
        "uk.eportfolio.evidence.submitted.v1",
    ]
    submitted = Filters(types=frozenset({"uk.eportfolio.evidence.submitted.v1"}))
    assert len(drain(log, 2, submitted)) == 4

    def north_only(event: StreamEvent) -> bool:
        return event.centre_id == north.centre_id

    assert drain(log, 5, submitted, north_only) == [
        e for e in drain(log, 5, submitted) if e.centre_id == north.centre_id
    ]


def test_a_narrow_filter_over_a_long_log_answers_promptly_and_moves_the_cursor(
    app: Eportfolio, world: World
) -> None:
    portfolio = world.enrol()
    for _ in range(6):
        world.submit(portfolio)
    log = EventLog(app.ledger, BASE_URL, scan_limit=100)
    log_narrow = EventLog(app.ledger, BASE_URL, scan_limit=1)
    wanted = Filters(portfolio_ids=frozenset({portfolio}))

    first = log_narrow.read(0, 10, wanted)
    assert not first.at_end
    assert 0 < first.next_after < positions(app)[-1]
    assert drain(log_narrow, 10, wanted) == drain(log, 10, wanted)


def test_unknown_types_are_refused_by_name() -> None:
    with pytest.raises(UnknownType, match=r"uk\.eportfolio\.nothing\.v9"):
        Filters(types=frozenset({"uk.eportfolio.nothing.v9"}))
