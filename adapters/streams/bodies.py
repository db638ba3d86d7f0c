"""Request and response bodies of the stream endpoints (kept apart from domain events)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from adapters.streams.envelope import TYPES
from adapters.streams.feed import MAX_POSITION, Filters
from adapters.streams.webhook_store import Attempt, ContentMode, Subscription

Position = Annotated[int, msgspec.Meta(ge=1, le=MAX_POSITION)]
#: Where deliveries go: an absolute URI (whether it may be reached is checked at once: 422).
Url = Annotated[
    str, msgspec.Meta(min_length=1, max_length=2_000, extra_json_schema={"format": "uri"})
]
#: A published CloudEvents type; the filters refuse any other (400).
EventType = Annotated[str, msgspec.Meta(extra_json_schema={"enum": sorted(TYPES)})]
PerSecond = Annotated[
    float,
    msgspec.Meta(gt=0, le=1_000, description="Deliveries (requests, retries included) a second"),
]
OVERLAP_DEFAULT = 86_400  # seconds: a day, as Svix keeps a rotated secret
OVERLAP_MAX = 7 * 86_400


class FeedPage(msgspec.Struct, frozen=True, kw_only=True):
    events: list[msgspec.Raw]  # CloudEvents 1.0, structured JSON
    next_after: int  # pass as `after` to continue


class NewWebhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Url
    centre_ids: frozenset[UUID] = frozenset()
    portfolio_ids: frozenset[UUID] = frozenset()
    types: frozenset[EventType] = frozenset()
    from_position: Position | None = None  # default: new events only
    content_mode: ContentMode = ContentMode.STRUCTURED  # binary: ce-* headers, data as body
    rate_limit_per_second: PerSecond | None = None  # default: no limit


class WebhookChanges(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`PATCH /webhooks/{id}`: only the fields given change; the cursor never does.

    A filter field given replaces that filter; `rate_limit_per_second: null` lifts the limit;
    `status: "active"` re-enables a disabled endpoint after its cursor, where it stopped.
    """

    url: Url | msgspec.UnsetType = msgspec.UNSET
    centre_ids: frozenset[UUID] | msgspec.UnsetType = msgspec.UNSET
    portfolio_ids: frozenset[UUID] | msgspec.UnsetType = msgspec.UNSET
    types: frozenset[EventType] | msgspec.UnsetType = msgspec.UNSET
    content_mode: ContentMode | msgspec.UnsetType = msgspec.UNSET
    rate_limit_per_second: PerSecond | msgspec.UnsetType | None = msgspec.UNSET
    status: Literal["active", "disabled"] | msgspec.UnsetType = msgspec.UNSET


class SecretRotation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How long the secret being replaced keeps signing too (0: stop at once)."""

    old_secret_expires_in: Annotated[int, msgspec.Meta(ge=0, le=OVERLAP_MAX)] = OVERLAP_DEFAULT


class Redelivery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    from_position: Position


class WebhookView(msgspec.Struct, frozen=True, kw_only=True):
    """An endpoint as its owner sees it: never its secrets, only when the old one expires."""

    id: UUID
    url: str
    filters: Filters
    position: int  # the last position delivered (or skipped by the filters)
    status: str
    status_reason: str
    content_mode: ContentMode
    rate_limit_per_second: float | None  # None: no limit
    old_secret_expires_at: datetime | None  # while set and ahead, two signatures are sent
    version: int  # also the ETag; send it back as If-Match

    @classmethod
    def of(cls, s: Subscription, now: datetime) -> WebhookView:
        r = s.registration
        overlap = r.old_secret_expires_at if len(r.secrets_at(now)) > 1 else None
        return cls(
            id=s.id, url=r.url, filters=r.filters, position=s.position,
            status=s.status.value, status_reason=s.status_reason, content_mode=r.content_mode,
            rate_limit_per_second=r.rate_limit, old_secret_expires_at=overlap, version=s.version,
        )  # fmt: skip


class WebhookCreated(WebhookView, frozen=True, kw_only=True):
    secret: str  # whsec_…: shown only in this response (creation or rotation)


class Deliveries(msgspec.Struct, frozen=True, kw_only=True):
    attempts: list[Attempt]
    next_after: int  # pass as `after` to continue
