"""What a projection is here: a pure fold from events to documents, behind a small port.

A projection never touches storage itself. The runner (in adapters) hands it a batch of
events and a `Documents` port that buffers reads and writes; at the end of the batch the
runner commits the documents and the tracking position in one transaction, so a crash
never double-counts and a rebuild from zero commits many events per transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Protocol, TypeVar, runtime_checkable
from uuid import UUID

from domain.events import Event

E = TypeVar("E", bound=Event)


class Documents(Protocol):
    """The view port: JSON documents by (kind, key), each optionally tagged with a centre."""

    def get(self, kind: str, key: str) -> bytes | None: ...

    def put(self, kind: str, key: str, body: bytes, *, centre_id: str = "") -> None: ...

    def delete(self, kind: str, key: str) -> None: ...


class Projection(Protocol):
    """A named read model. `apply` folds one event; `flush` derives what a batch changed."""

    name: str

    def apply(self, position: int, event: Event, docs: Documents) -> None: ...

    def flush(self, docs: Documents) -> None: ...


@runtime_checkable
class LooksAhead(Protocol):
    """A projection that can put off work a later batch of a rebuild would redo.

    Before `flush`, a rebuild tells it what the next batch holds: (stream id, topic) of
    each notification. What it puts off must be done by the next batch's `flush` (or
    left so that any later batch touching that stream does it), so the view after the
    last batch is what it would have been without being told.
    """

    def upcoming(self, events: Iterable[tuple[UUID, str]]) -> None: ...


def known_at(events: Sequence[E], as_known_at: datetime | None) -> Iterator[E]:
    """What the system knew at a time: events recorded up to then."""
    return (e for e in events if as_known_at is None or e.recorded_at <= as_known_at)


def effective_at(events: Sequence[E], on: date | None) -> Iterator[E]:
    """What was true on a date: events whose effective date is up to then."""
    return (e for e in events if on is None or e.effective_on <= on)
