"""Query parameters shared by the read endpoints: the two clocks of time travel."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from litestar.params import QueryParameter

from adapters.http.problems import problem

AsKnownAt = Annotated[
    datetime | None,
    QueryParameter(
        description="What the system knew then: events recorded up to this instant "
        "(RFC 3339 with an offset, e.g. 2026-09-01T12:00:00Z)."
    ),
]
EffectiveAt = Annotated[
    date | None,
    QueryParameter(
        description="What was true on this day: events effective up to it, among those known."
    ),
]


def aware(value: datetime | None, field: str) -> datetime | None:
    """Refuse a time without an offset: recorded times are UTC instants, never local guesses."""
    if value is not None and value.utcoffset() is None:
        raise problem(400, f"{field}: give a time zone offset (e.g. Z)", field=field)
    return value
