"""The rules' and coverage's view of a stream: its events with personal fields sealed.

It is held decoded between calls (so a write or a time-travel query does not re-decode a
whole stream), which is only sound if it equals a fresh read apart from the personal
fields, sees what other processes write, and never holds anything personal.
"""

from __future__ import annotations

import msgspec

from adapters.bootstrap import build
from adapters.config import Config
from domain.events import Event
from service.handlers import Eportfolio
from service.personal_data import SEALED
from tests.world import World


def _without_personal(event: object) -> dict[str, object]:
    assert isinstance(event, Event)
    fields = msgspec.to_builtins(event)
    return {k: v for k, v in fields.items() if k not in type(event).PERSONAL}


def test_facts_are_the_stream_with_only_its_personal_fields_sealed(app: Eportfolio) -> None:
    world = World(app)
    portfolio = world.enrol()
    world.submit(portfolio)
    world.observe(portfolio, ("PC3",))
    for stream in (world.centre_id, portfolio):
        facts = app.ledger.facts(stream)
        opened = app.ledger.recorded(stream)
        assert [(f.originator_version, _without_personal(f.event)) for f in facts] == [
            (o.originator_version, _without_personal(o.event)) for o in opened
        ]
        personal = [
            getattr(f.event, name)
            for f in facts
            if isinstance(f.event, Event)
            for name in type(f.event).PERSONAL
        ]
        assert personal
        assert set(personal) <= {SEALED, "", None, ()}, personal


def test_facts_held_by_one_process_see_what_another_process_wrote(
    app: Eportfolio, config: Config
) -> None:
    world = World(app)
    portfolio = world.enrol()
    before = [(f.originator_version, f.event) for f in app.ledger.facts(portfolio)]
    other = build(config)  # a second server process on the same store
    try:
        world.app = other
        evidence = world.submit(portfolio)
    finally:
        world.app = app
        other.ledger.close()
    after = [(f.originator_version, f.event) for f in app.ledger.facts(portfolio)]
    assert after[: len(before)] == before
    assert [getattr(e, "evidence_id", None) for _, e in after[len(before) :]] == [evidence]
    assert len(app.ledger.recorded(portfolio)) == len(after)
