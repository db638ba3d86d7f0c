"""Which fields of an event hold personal data, and how the event reads once they are erased.

The service seals exactly `sealable(event)` with the data subject's key; once that key is
destroyed those fields decode as `ERASED`. `redacted(event)` gives the same result without
any key, so a read model can prepare, while it still has the text, what it will show after
an erasure — and match byte for byte what a rebuild from the shredded log shows.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

import msgspec

from domain.events import ERASED, Event

E = TypeVar("E", bound=Event)


@cache
def _defaults(cls: type[Event]) -> dict[str, Any]:
    """Each personal field's default (NODEFAULT if required)."""
    return {f.name: f.default for f in msgspec.structs.fields(cls) if f.name in cls.PERSONAL}


def sealable(event: Event) -> list[str]:
    """The personal fields holding something: a field at its default (an empty note) says
    nothing about anyone, so it is stored as it is."""
    return [
        name
        for name, default in _defaults(type(event)).items()
        if default is msgspec.NODEFAULT or getattr(event, name) != default
    ]


def redacted(event: E) -> E:
    """The event as it decodes once its subject's key is destroyed."""
    changes: dict[str, Any] = {}
    for name in sealable(event):
        value = getattr(event, name)
        changes[name] = tuple(ERASED for _ in value) if isinstance(value, tuple) else ERASED
    return msgspec.structs.replace(event, **changes) if changes else event
