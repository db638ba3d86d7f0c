"""CloudEvents 1.0 envelopes: the one published shape of a ledger event, on every channel.

Each event is enveloped once, when it is read from the log, and the same JSON bytes go to
the pull feed, SSE, webhooks and NATS, so every channel says exactly the same thing. The
CloudEvents `type` is derived from the event's stable TOPIC (never its class name) plus its
`class_version`, so renaming code cannot change a published type; tests pin the full list.

`time` is the instant the service recorded the event (the occurrence, as CloudEvents means
it); the date the act took effect, which may be earlier (an observation written up the next
day), is the `effectivedate` extension (and `effective_on` in `data`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import msgspec

from domain.events import EVENT_TYPES, CentreEvent, Event, LearnerEnrolled, PortfolioEvent

SPEC_VERSION = "1.0"
TYPE_PREFIX = "uk.eportfolio."
CONTENT_TYPE = "application/cloudevents+json"
SEQUENCE_DIGITS = 20  # int64 fits; fixed width keeps `sequence` sortable as a string
NO_CENTRE = "global"  # source/partition of events that belong to no centre (checkpoints)


def short_type(cls: type[Event]) -> str:
    """`eportfolio.portfolio.evidence_submitted` (v1) -> `evidence.submitted.v1`.

    The last `_` splits what changed from the past-tense verb; a bare verb takes the stream
    name (`eportfolio.centre.registered` -> `centre.registered.v1`).
    """
    _, stream, name = cls.TOPIC.split(".")
    noun, _, verb = name.rpartition("_")
    return f"{noun or stream}.{verb}.v{cls.class_version}"


def cloud_type(cls: type[Event]) -> str:
    return TYPE_PREFIX + short_type(cls)


TYPES: dict[str, type[Event]] = {cloud_type(cls): cls for cls in EVENT_TYPES.values()}
"""Every published CloudEvents type and the event class it carries."""
TOPICS: dict[str, str] = {name: cls.TOPIC for name, cls in TYPES.items()}


class Envelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A CloudEvent in structured JSON mode; `data` is the event as msgspec encodes it."""

    specversion: str
    id: str
    source: str
    type: str
    time: datetime
    datacontenttype: str
    dataschema: str
    recordedtime: datetime
    effectivedate: str  # YYYY-MM-DD; extension names are lower-case letters and digits only
    sequence: str
    partitionkey: str
    data: msgspec.Raw
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """An enveloped event and what channels filter on, without decoding the JSON again."""

    position: int
    event_id: UUID
    type: str
    centre_id: UUID | None
    portfolio_id: UUID | None
    body: bytes

    @property
    def partition(self) -> str:
        key = self.portfolio_id or self.centre_id
        return str(key) if key is not None else NO_CENTRE


CentreOf = Callable[[UUID], "UUID | None"]
"""Which centre a portfolio belongs to (portfolio events other than enrolment omit it)."""

_encoder = msgspec.json.Encoder()


def schema_url(base_url: str, type_name: str) -> str:
    return f"{base_url.rstrip('/')}/schemas/events/{type_name}.json"


def envelope(position: int, event: Event, centre_of: CentreOf, base_url: str) -> StreamEvent:
    """The CloudEvent for `event` stored at `position`."""
    portfolio_id = event.portfolio_id if isinstance(event, PortfolioEvent) else None
    centre_id: UUID | None = None
    if isinstance(event, CentreEvent | LearnerEnrolled):
        centre_id = event.centre_id
    elif portfolio_id is not None:
        centre_id = centre_of(portfolio_id)
    type_name = cloud_type(type(event))
    partition = portfolio_id or centre_id
    body = _encoder.encode(
        Envelope(
            specversion=SPEC_VERSION,
            id=str(event.event_id),
            source=f"/centres/{centre_id}" if centre_id is not None else f"/{NO_CENTRE}",
            type=type_name,
            subject=str(portfolio_id) if portfolio_id is not None else None,
            time=_aware(event.recorded_at),
            datacontenttype="application/json",
            dataschema=schema_url(base_url, type_name),
            recordedtime=_aware(event.recorded_at),
            effectivedate=event.effective_on.isoformat(),
            sequence=f"{position:0{SEQUENCE_DIGITS}d}",
            partitionkey=str(partition) if partition is not None else NO_CENTRE,
            data=msgspec.Raw(_encoder.encode(event)),
        )
    )
    return StreamEvent(position, event.event_id, type_name, centre_id, portfolio_id, body)


def _aware(moment: datetime) -> datetime:
    """RFC 3339 needs an offset; the service records UTC, so a naive time is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
