"""Reading the log as CloudEvents: the pull feed, and every other channel's catch-up.

Positions only go up, but they may skip (a rolled-back insert takes a number), so a cursor is
"the last position looked at", never a count. Commit order equals position order on both
stores (PostgreSQL locks the table per insert, SQLite has one writer), so a reader that has
seen position p has seen every event that will ever sit before p: no late commit is skipped.

A filtered read scans at most `scan_limit` positions, then returns what it found with the
cursor it reached, so a narrow filter over a long log still answers quickly and moves on.
Receipts (idempotency records) never leave the service: only event topics are selected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from adapters.streams.envelope import TOPICS, TYPES, StreamEvent, envelope
from domain.events import EVENT_TYPES, Event, LearnerEnrolled
from service.codec import Recorded

if TYPE_CHECKING:
    from eventsourcing.persistence import Notification

    from service.ledger import Ledger

Visible = Callable[[StreamEvent], bool]
"""What the caller may see; the HTTP layer decides, the channels apply it to every event."""

MAX_LIMIT = 1_000
MAX_POSITION = 2**63 - 1  # both stores keep positions as signed 64-bit integers


def everything(event: StreamEvent) -> bool:
    return True


class UnknownType(ValueError):
    """A filter names a CloudEvents type that is not published."""


class Filters(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a consumer asked for; an empty set means "any"."""

    centre_ids: frozenset[UUID] = frozenset()
    portfolio_ids: frozenset[UUID] = frozenset()
    types: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = sorted(self.types - TYPES.keys())
        if unknown:
            msg = f"unknown event type(s): {', '.join(unknown)}"
            raise UnknownType(msg)

    def matches(self, event: StreamEvent) -> bool:
        return (
            (not self.centre_ids or event.centre_id in self.centre_ids)
            and (not self.portfolio_ids or event.portfolio_id in self.portfolio_ids)
            and (not self.types or event.type in self.types)
        )

    def topics(self) -> list[str]:
        """The stored topics to select: only published events, only the asked-for types."""
        return sorted(TOPICS[name] for name in (self.types or TYPES.keys()))


ANY = Filters()


@dataclass(frozen=True, slots=True)
class Page:
    events: list[StreamEvent]
    next_after: int
    """Where to continue from: the last position looked at (matching or not)."""
    at_end: bool
    """Whether the read reached the end of the log (or `stop`) as it was then."""


class EventLog:
    """The ledger's notification log, read as enveloped events."""

    def __init__(
        self,
        ledger: Ledger,
        base_url: str,
        *,
        scan_limit: int = 10_000,
        cached_portfolios: int = 100_000,
    ) -> None:
        self.ledger = ledger
        self.base_url = base_url
        self.scan_limit = scan_limit
        self.centre_of = lru_cache(maxsize=cached_portfolios)(self._centre_of)

    def head(self) -> int:
        """The last position now in the log (0 when empty)."""
        return self.ledger.recorder.max_notification_id() or 0

    def enveloped(self, notification: Notification) -> StreamEvent | None:
        """The CloudEvent for a notification, or None for what is never published."""
        if notification.topic not in EVENT_TYPES:
            return None
        event = self.ledger.decode(notification).event
        if not isinstance(event, Event):
            return None
        return envelope(notification.id, event, self.centre_of, self.base_url)

    def read(
        self,
        after: int,
        limit: int,
        filters: Filters = ANY,
        visible: Visible = everything,
        *,
        stop: int | None = None,
    ) -> Page:
        """Up to `limit` matching events after `after` (and up to `stop`), in log order."""
        limit = max(1, min(limit, MAX_LIMIT))
        chunk, topics = min(max(limit, 100), self.scan_limit), filters.topics()
        events: list[StreamEvent] = []
        cursor, scanned = after, 0
        while True:
            notifications = self.ledger.recorder.select_notifications(
                start=cursor, limit=chunk, stop=stop, topics=topics, inclusive_of_start=False
            )
            for notification in notifications:
                cursor = notification.id
                event = self.enveloped(notification)
                if event is not None and filters.matches(event) and visible(event):
                    events.append(event)
                    if len(events) == limit:
                        return Page(events, cursor, at_end=False)
            scanned += len(notifications)
            if len(notifications) < chunk:
                return Page(events, cursor, at_end=True)
            if scanned >= self.scan_limit:
                return Page(events, cursor, at_end=False)

    def _centre_of(self, portfolio_id: UUID) -> UUID | None:
        """A portfolio's centre, from its enrolment: the first event of its stream."""
        for item in self.ledger.events.get(portfolio_id, lte=1):
            if isinstance(item, Recorded) and isinstance(item.event, LearnerEnrolled):
                return item.event.centre_id
        return None
