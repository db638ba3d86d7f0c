"""An erased learner's trail row is the row with its actor's name and summary recomputed
(`TrailDeriver.rows`): that holds only while no event field a row copies is personal."""

from __future__ import annotations

from domain.events import EVENT_TYPES
from projections.derivers import ROW_FIELDS


def test_no_field_a_trail_row_copies_from_its_event_is_personal() -> None:
    copied = {topic: cls.PERSONAL & ROW_FIELDS for topic, cls in EVENT_TYPES.items()}
    assert {topic: fields for topic, fields in copied.items() if fields} == {}
