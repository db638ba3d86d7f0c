"""Integrator streams: one ordered log, many cursors into it (ADR 0006).

`build_streams` wires every channel over one ledger; `Streams.start()` follows the log and
starts the delivery workers (webhooks, and xAPI to each centre's LRS: ADR 0018), `close()`
stops them all and closes what they opened (not the ledger, which belongs to the application).
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.roles import Role, RoleRunner
from adapters.store.leases import schema_setup
from adapters.store.views import open_view_store
from adapters.streams.feed import EventLog
from adapters.streams.lrs_delivery import XapiDelivery
from adapters.streams.lrs_store import open_lrs_store
from adapters.streams.nats import NatsPublisher, NatsSettings
from adapters.streams.settings import StreamSettings
from adapters.streams.sse import Broadcaster
from adapters.streams.tail import LogTail
from adapters.streams.webhook_store import open_webhook_store
from adapters.streams.webhooks import DeliveryPolicy, Webhooks

if TYPE_CHECKING:
    from adapters.config import Config
    from service.ledger import Ledger

__all__ = ["Streams", "build_streams"]


def nats_cursor_name(stream: str) -> str:
    """The tracked cursor of the publisher to `stream` (one per stream, named as views are)."""
    return "nats_" + re.sub(r"[^a-z0-9_]", "_", stream.lower())[:30]


@dataclass
class Streams:
    settings: StreamSettings
    log: EventLog
    tail: LogTail
    broadcaster: Broadcaster
    webhooks: Webhooks
    xapi: XapiDelivery
    nats: NatsPublisher | None = None
    roles: RoleRunner | None = None

    def start(self, roles: RoleRunner | None = None) -> None:
        """Follow the log and deliver: every channel here, or (given `roles`) the
        deliveries as roles, each run where its lease is held (docs/adr/0020)."""
        self.tail.start()
        if roles is None:
            self.webhooks.start()
            self.xapi.start()
            if self.nats is not None:
                self.nats.start()
            return
        self.roles = roles
        for role in self.delivery_roles():
            roles.add(role)

    def delivery_roles(self) -> list[Role]:
        """The cursor-keeping deliveries; each `tick` finds what other processes added."""
        roles = [
            Role("webhooks", self.webhooks.start, self.webhooks.stop, self.webhooks.refresh),
            Role("xapi", self.xapi.start, self.xapi.stop, self.xapi.refresh),
        ]
        if self.nats is not None:
            roles.append(Role("nats", self.nats.start, self.nats.stop))
        return roles

    def close(self) -> None:
        self.broadcaster.close()
        try:
            if self.roles is not None:
                for role in self.delivery_roles():
                    self.roles.remove(role.name)
            self.webhooks.stop()
            self.xapi.stop()
            if self.nats is not None:
                self.nats.close()
            self.tail.stop()
        finally:
            self.webhooks.store.close()
            self.xapi.store.close()


def build_streams(
    config: Config,
    ledger: Ledger,
    settings: StreamSettings | None = None,
    *,
    policy: DeliveryPolicy | None = None,
) -> Streams:
    """Every channel over `ledger`, not yet started."""
    settings = settings or StreamSettings.from_env()
    log = EventLog(ledger, settings.public_url)
    tail = LogTail(log)
    broadcaster = Broadcaster(
        log, tail, queue_size=settings.sse_queue, heartbeat=settings.sse_heartbeat
    )
    policy = policy or DeliveryPolicy(allow_private=settings.webhooks_allow_private)
    setup = schema_setup(config.eventsourcing_env() if config.uses_postgres else None)
    with setup, ExitStack() as opened:  # closed again only if something below fails
        store = open_webhook_store(config)
        opened.callback(store.close)
        lrs_store = open_lrs_store(config)
        opened.callback(lrs_store.close)
        nats = None
        if settings.nats_url is not None:
            nats_settings = NatsSettings(
                url=settings.nats_url,
                stream=settings.nats_stream,
                subject_prefix=settings.nats_subject_prefix,
            )
            cursor = open_view_store(config, nats_cursor_name(settings.nats_stream))
            nats = NatsPublisher(log, cursor, nats_settings, tail=tail)
        opened.pop_all()
    webhooks = Webhooks(store, log, tail, policy=policy)
    xapi = XapiDelivery(lrs_store, ledger, tail, settings.public_url, policy=policy)
    return Streams(settings, log, tail, broadcaster, webhooks, xapi, nats)
