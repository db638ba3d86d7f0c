"""Query parameters shared by the read endpoints: the two clocks of time travel, bounded ints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from litestar.params import QueryParameter

from adapters.http.problems import problem

#: The largest integer both stores keep (signed 64-bit): the bound of every cursor.
MAX_INT64 = 2**63 - 1

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


def int_range(ge: int, le: int = MAX_INT64, *, description: str | None = None) -> QueryParameter:
    """An integer query parameter in [ge, le], its bounds written in /schema as integers.

    litestar writes `ge`/`le` as floats (`minimum: 0.0`; 2**63 - 1 becomes
    9.223372036854776e18, one past the real limit), so the exact bounds are set as well.
    """
    exact = {"minimum": ge, "maximum": le}
    return QueryParameter(ge=ge, le=le, description=description, schema_extra=exact)


def header_schema(pattern: str, **more: Any) -> dict[str, Any]:
    """`schema_extra` of an optional header: text matching `pattern`, never null.

    Documented, not enforced by litestar, whose error would name the Python argument: the
    handler checks the pattern itself and names the header.
    """
    return {"type": "string", "oneOf": None, "pattern": pattern, **more}
