"""Request and response bodies of the stream endpoints (kept apart from domain events)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from adapters.streams.feed import MAX_POSITION, Filters
from adapters.streams.webhook_store import Attempt, Subscription

Position = Annotated[int, msgspec.Meta(ge=1, le=MAX_POSITION)]


class FeedPage(msgspec.Struct, frozen=True, kw_only=True):
    events: list[msgspec.Raw]  # CloudEvents 1.0, structured JSON
    next_after: int  # pass as `after` to continue


class NewWebhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2_000)]
    centre_ids: frozenset[UUID] = frozenset()
    portfolio_ids: frozenset[UUID] = frozenset()
    types: frozenset[str] = frozenset()
    from_position: Position | None = None  # default: new events only


class Redelivery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    from_position: Position


class WebhookView(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    url: str
    filters: Filters
    position: int  # the last position delivered (or skipped by the filters)
    status: str
    status_reason: str

    @classmethod
    def of(cls, s: Subscription) -> WebhookView:
        r = s.registration
        return cls(
            id=s.id, url=r.url, filters=r.filters, position=s.position,
            status=s.status.value, status_reason=s.status_reason,
        )  # fmt: skip


class WebhookCreated(WebhookView, frozen=True, kw_only=True):
    secret: str  # whsec_…: shown only in this response


class Deliveries(msgspec.Struct, frozen=True, kw_only=True):
    attempts: list[Attempt]
    next_after: int  # pass as `after` to continue
