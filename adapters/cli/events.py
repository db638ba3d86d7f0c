"""`eportfolio events`: the log's events, as a table for people or JSON for scripts.

Only events are listed: the service's own records in the log (idempotency receipts, id
claims) say nothing a reader of the log asked about. The count says how many were shown
of how many there are after `--after`, and where to go on from, so a truncated page is
never mistaken for the whole log.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

import msgspec
from eventsourcing.persistence import Notification
from rich.console import Console
from rich.table import Table

from adapters.bootstrap import open_system
from adapters.config import Config
from domain.events import EVENT_TYPES, Event
from service.ledger import Ledger

TOPICS = sorted(EVENT_TYPES)
BATCH = 5_000
console = Console()


class Listed(msgspec.Struct, frozen=True, kw_only=True):
    """One event as `--json` prints it."""

    position: int
    type: str
    recorded_at: datetime
    effective_on: str
    actor_role: str
    actor_id: str
    stream_id: str
    version: int


class Listing(msgspec.Struct, frozen=True, kw_only=True):
    """What `--json` prints: the page, how many events there are, where to go on from."""

    after: int
    shown: int
    total: int
    next_after: int | None
    events: list[Listed]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = commands.add_parser(
        "events", help="print the event log (not the idempotency receipts or id claims)"
    )
    events.add_argument(
        "--after", type=int, default=0, metavar="POSITION", help="start after this position"
    )
    events.add_argument(
        "--limit", type=int, default=50, help="show at most this many events (default 50)"
    )
    events.add_argument(
        "--json", action="store_true", help="print one JSON document for scripts, not a table"
    )


def run(config: Config, args: argparse.Namespace) -> int:
    with open_system(config) as system:
        listing = listing_of(system.app.ledger, args.after, max(args.limit, 0))
    if args.json:
        sys.stdout.write(msgspec.json.encode(listing).decode() + "\n")
        return 0
    table = Table(title="Event log")
    for column in ("position", "recorded", "effective", "type", "actor role", "stream"):
        table.add_column(column)
    for item in listing.events:
        table.add_row(
            str(item.position),
            item.recorded_at.strftime("%Y-%m-%d %H:%M"),
            item.effective_on,
            item.type,
            item.actor_role,
            item.stream_id[:8],
        )
    console.print(table)
    more = f"; more with --after {listing.next_after}" if listing.next_after is not None else ""
    console.print(
        f"Showed {listing.shown} of {listing.total} events after position {listing.after}{more}"
    )
    return 0


def listing_of(ledger: Ledger, after: int, limit: int) -> Listing:
    """Up to `limit` events after `after`, counting every event after it too."""
    events: list[Listed] = []
    total, cursor = 0, after
    while True:
        page = ledger.recorder.select_notifications(
            start=cursor, limit=BATCH, topics=TOPICS, inclusive_of_start=False
        )
        for notification in page:
            total += 1
            if len(events) < limit:
                events.append(_listed(ledger, notification))
        if len(page) < BATCH:
            break
        cursor = page[-1].id
    last = events[-1].position if events else after
    next_after = last if total > len(events) else None
    return Listing(
        after=after, shown=len(events), total=total, next_after=next_after, events=events
    )


def _listed(ledger: Ledger, notification: Notification) -> Listed:
    event = ledger.decode(notification).event
    if not isinstance(event, Event):  # pragma: no cover - only event topics are selected
        msg = f"position {notification.id} is not an event"
        raise TypeError(msg)
    return Listed(
        position=notification.id,
        type=notification.topic.removeprefix("eportfolio."),
        recorded_at=event.recorded_at,
        effective_on=event.effective_on.isoformat(),
        actor_role=event.actor_role.value,
        actor_id=str(event.actor_id),
        stream_id=str(notification.originator_id),
        version=notification.originator_version,
    )
