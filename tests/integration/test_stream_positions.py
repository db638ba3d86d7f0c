"""A stream's positions in the log, read in one query, on both stores."""

from __future__ import annotations

from uuid import uuid4

from service.handlers import Eportfolio
from service.queries import Queries
from tests.world import World


def test_a_streams_positions_are_its_events_positions_in_version_order(app: Eportfolio) -> None:
    world = World(app)
    first = world.enrol()
    second = world.enrol("001")  # interleaved: the two streams' positions are not contiguous
    for portfolio_id in (first, second, first):
        world.submit(portfolio_id)
    ledger = app.ledger

    for stream in (world.centre_id, first, second):
        versions = [r.originator_version for r in ledger.recorded(stream)]
        one_by_one = {v: ledger.position_of(stream, v) for v in versions}
        positions = ledger.positions_of(stream)
        assert positions == one_by_one
        assert list(positions) == sorted(versions)
        assert list(positions.values()) == sorted(positions.values())
    assert ledger.positions_of(uuid4()) == {}


def test_history_shows_each_event_at_its_position(app: Eportfolio) -> None:
    world = World(app)
    portfolio_id = world.enrol()
    world.enrol("001")
    world.submit(portfolio_id)

    history = Queries(app).history(portfolio_id)

    positions = app.ledger.positions_of(portfolio_id)
    assert [row.position for row in history] == list(positions.values())
    events = app.ledger.portfolio_events(portfolio_id)
    assert [row.event_id for row in history] == [event.event_id for event in events]
