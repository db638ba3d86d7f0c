"""Webhook deliveries following Standard Webhooks: signed, retried, in order, resumable.

One worker thread per active subscription reads the log from the subscription's stored
cursor and sends one event at a time to the registered URL, never anywhere else (no
redirects are followed, no proxy settings are read), each request with a timeout. A 2xx
moves the cursor in the same transaction as the attempt's record; 410 disables the
endpoint; 429 and 503 wait as `Retry-After` says; anything else waits for an exponential
backoff with full jitter. After `max_attempts` failures of one event the endpoint is
disabled rather than skipping it, because skipping would break "every event, in order";
`redeliver` rewinds the cursor and re-enables it. Delivery is at-least-once: a crash after
the request but before the commit sends that event again, with the same `webhook-id`.

An owner's change (URL, filters, content mode, rate limit, status, secret) replaces the
worker: the new one starts only after the old one has finished its request in flight, from
the cursor that request left, so a change sends nothing twice and skips nothing. A rate
limit spaces the starts of requests (retries included) by 1/rate seconds. During a secret
rotation's overlap each request carries two signatures, the new secret's first.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import httpx
import msgspec

from adapters.streams.binary_mode import binary_message
from adapters.streams.envelope import CONTENT_TYPE, StreamEvent
from adapters.streams.feed import Filters, Visible
from adapters.streams.signing import BadEndpoint, check_endpoint, check_resolved, new_secret, sign
from adapters.streams.webhook_store import (
    Attempt,
    ContentMode,
    Registration,
    Status,
    Subscription,
    WebhookStore,
)

if TYPE_CHECKING:
    from adapters.streams.feed import EventLog
    from adapters.streams.tail import LogTail

Clock = Callable[[], datetime]
Change = Callable[[Subscription], Subscription]


class DeliveryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    timeout: float = 10.0  # seconds per request: connect, write, read
    max_attempts: int = 20  # per event; then the endpoint is disabled
    base_delay: float = 1.0  # first backoff ceiling, doubling per attempt
    max_delay: float = 3_600.0  # ceiling of any wait, Retry-After included
    batch: int = 100  # events read from the log at a time
    idle_wait: float = 30.0  # an idle worker's fallback look: new events and changes wake it
    allow_private: bool = False  # http and private hosts: tests and local development


def scope_of(subscription: Subscription) -> Visible:
    scope = subscription.registration.scope
    if scope is None:
        return lambda event: True
    return lambda event: event.centre_id is not None and event.centre_id in scope


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def backoff(attempt: int, policy: DeliveryPolicy, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max_delay, base_delay * 2^(attempt-1))]."""
    return rng.uniform(0, min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)))


class Webhooks:
    """Registration, inspection and the delivery workers of every subscription."""

    def __init__(
        self,
        store: WebhookStore,
        log: EventLog,
        tail: LogTail,
        *,
        policy: DeliveryPolicy | None = None,
        clock: Clock = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.store, self.log, self.tail = store, log, tail
        self.policy = policy or DeliveryPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self._workers: dict[UUID, _Worker] = {}
        self._lock = threading.Lock()
        self._running = False

    def register(
        self,
        owner_id: UUID,
        url: str,
        filters: Filters,
        scope: frozenset[UUID] | None,
        from_position: int | None = None,
        *,
        content_mode: ContentMode = ContentMode.STRUCTURED,
        rate_limit: float | None = None,
    ) -> tuple[Subscription, str]:
        """A new subscription and its secret (shown once); events from `from_position` on."""
        check_endpoint(url, allow_private=self.policy.allow_private)
        secret = new_secret()
        start = self.log.head() if from_position is None else max(0, from_position - 1)
        registration = Registration(
            owner_id=owner_id,
            url=url,
            secret=secret,
            filters=filters,
            scope=scope,
            created_at=self.clock(),
            content_mode=content_mode,
            rate_limit=rate_limit,
        )
        subscription = Subscription(id=uuid4(), registration=registration, position=start)
        self.store.add(subscription)
        self._ensure_worker(subscription.id)
        return subscription, secret

    def redeliver(self, webhook_id: UUID, from_position: int) -> Subscription | None:
        """Deliver again from `from_position` (inclusive); re-enables a disabled endpoint."""
        if not self.store.rewind(webhook_id, max(0, from_position - 1)):
            return None
        self._ensure_worker(webhook_id, restart=True)
        return self.store.get(webhook_id)

    def check_url(self, url: str) -> None:
        """BadEndpoint unless deliveries may go to `url` (as at registration)."""
        check_endpoint(url, allow_private=self.policy.allow_private)

    def change(
        self, webhook_id: UUID, change: Change, expected_version: int | None = None
    ) -> Subscription | None:
        """Apply an owner's change, keeping the cursor (None: no such webhook; Stale).

        An active endpoint's worker is replaced (after its request in flight), a disabled
        one's stopped; enabling one resumes after its cursor, where it stopped.
        """
        changed = self.store.update(webhook_id, change, expected_version)
        if changed is None:
            return None
        if changed.status is Status.ACTIVE:
            self._ensure_worker(webhook_id, restart=True)
        else:
            self._halt(webhook_id)
        return changed

    def rotate_secret(
        self, webhook_id: UUID, overlap: timedelta, expected_version: int | None = None
    ) -> tuple[Subscription, str] | None:
        """A new secret (shown once); the current one keeps signing too for `overlap`.

        Only the secret just replaced overlaps: rotating again during an overlap ends the
        earlier old secret's at once.
        """
        secret, now = new_secret(), self.clock()

        def rotated(subscription: Subscription) -> Subscription:
            r = subscription.registration
            overlapping = overlap > timedelta(0)
            return msgspec.structs.replace(
                subscription,
                registration=msgspec.structs.replace(
                    r,
                    secret=secret,
                    old_secret=r.secret if overlapping else "",
                    old_secret_expires_at=now + overlap if overlapping else None,
                ),
            )

        changed = self.change(webhook_id, rotated, expected_version)
        return None if changed is None else (changed, secret)

    def delete(self, webhook_id: UUID) -> bool:
        with self._lock:
            worker = self._workers.pop(webhook_id, None)
        if worker is not None:
            worker.stop()
        return self.store.delete(webhook_id)

    def start(self) -> None:
        """Start a worker for every active subscription (each resumes from its cursor)."""
        with self._lock:
            self._running = True
        for subscription in self.store.active():
            self._ensure_worker(subscription.id)

    def refresh(self) -> None:
        """Catch up with what other processes changed (they run no workers: docs/adr/0020).

        Starts workers for active subscriptions without one (registered or re-enabled
        elsewhere) and wakes any worker whose subscription is no longer as it last read it
        (rewound, changed, disabled, deleted), so an idle worker need not poll its row.
        """
        active = {subscription.id: subscription for subscription in self.store.active()}
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            if active.get(worker.id) != worker.seen:
                worker.poke()
        for webhook_id in active:
            self._ensure_worker(webhook_id)

    def stop(self) -> None:
        with self._lock:
            self._running = False
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join()

    def _halt(self, webhook_id: UUID) -> None:
        """Stop the worker but keep it known, so a later one waits for its request in flight."""
        with self._lock:
            current = self._workers.get(webhook_id)
        if current is not None:
            current.stop()

    def _ensure_worker(self, webhook_id: UUID, *, restart: bool = False) -> None:
        with self._lock:
            if not self._running:
                return
            current = self._workers.get(webhook_id)
            if current is not None and current.is_alive() and not restart:
                return
            if current is not None:
                current.stop()
            worker = self._workers[webhook_id] = _Worker(self, webhook_id, after=current)
            worker.start()


class _Worker(threading.Thread):
    """Delivers one subscription's events, one at a time, in log order."""

    def __init__(self, hooks: Webhooks, webhook_id: UUID, *, after: _Worker | None) -> None:
        super().__init__(name=f"webhook-{webhook_id}")
        self.hooks, self.id, self.previous = hooks, webhook_id, after
        self.policy = hooks.policy
        self.stopping = threading.Event()
        self.woken = threading.Event()  # stopping, or the subscription changed elsewhere
        self.seen: Subscription | None = None  # the subscription as this worker last read it
        self.next_at = 0.0  # monotonic time the rate limit allows the next request at

    def stop(self) -> None:
        self.stopping.set()
        self.poke()

    def poke(self) -> None:
        """Make the worker read its subscription again now, not at its next idle look."""
        self.woken.set()
        self.hooks.tail.wake()

    def run(self) -> None:
        if self.previous is not None:  # a restart must not overlap the worker it replaces
            self.previous.join()
            self.next_at, self.previous = self.previous.next_at, None
        with httpx.Client(
            timeout=self.policy.timeout, follow_redirects=False, trust_env=False
        ) as client:
            while not self.stopping.is_set():
                self.woken.clear()
                subscription = self.seen = self.hooks.store.get(self.id)
                if subscription is None or subscription.status is not Status.ACTIVE:
                    return
                self._pass(client, subscription)

    def _pass(self, client: httpx.Client, subscription: Subscription) -> None:
        """Deliver one page of events after the cursor, or wait for the log to move."""
        store, expected = self.hooks.store, subscription.position
        filters, scope = subscription.registration.filters, scope_of(subscription)
        page = self.hooks.log.read(expected, self.policy.batch, filters, scope)
        for event in page.events:
            if not self._deliver(client, subscription, event, expected):
                return
            expected = event.position
        if page.next_after > expected:
            store.advance(self.id, expected, page.next_after)
        elif page.at_end:
            self.hooks.tail.wait_beyond(expected, self.policy.idle_wait, cancel=self.woken)

    def _deliver(
        self, client: httpx.Client, subscription: Subscription, event: StreamEvent, expected: int
    ) -> bool:
        """Send until delivered (True) or disabled, rewound or stopping (False)."""
        store, policy = self.hooks.store, self.policy
        for attempt in range(1, policy.max_attempts + 1):
            if self.stopping.is_set() or not self._pace(subscription.registration.rate_limit):
                return False
            status, error, duration, wait = self._post(client, subscription, event)
            delivered = status is not None and 200 <= status < 300
            gone = status == 410
            last = attempt == policy.max_attempts
            outcome = "delivered" if delivered else "disabled" if gone or last else "retrying"
            record = Attempt(
                position=event.position,
                event_id=event.event_id,
                attempt=attempt,
                at=self.hooks.clock(),
                status_code=status,
                error=error,
                duration_ms=round(duration * 1000, 3),
                outcome=outcome,
            )
            moved = (expected, event.position) if delivered else None
            if not store.record(self.id, record, moved=moved):
                return False  # rewound meanwhile: start again from the new cursor
            if delivered:
                return True
            if gone or last:
                reason = "the endpoint answered 410 Gone" if gone else ""
                reason = reason or f"{attempt} failed attempts at position {event.position}"
                store.set_status(self.id, Status.DISABLED, reason)
                return False
            delay = wait if wait is not None else backoff(attempt, policy, self.hooks.rng)
            if self.stopping.wait(min(delay, policy.max_delay)):
                return False
        return False

    def _pace(self, rate: float | None) -> bool:
        """Wait until the rate limit allows a request; False if stopped meanwhile."""
        if rate is None:
            return True
        now = time.monotonic()
        if self.next_at > now and self.stopping.wait(self.next_at - now):
            return False
        self.next_at = max(now, self.next_at) + 1.0 / rate
        return True

    def _post(
        self, client: httpx.Client, subscription: Subscription, event: StreamEvent
    ) -> tuple[int | None, str, float, float | None]:
        """One signed request: (status, error, seconds taken, Retry-After seconds)."""
        registration, msg_id = subscription.registration, str(event.event_id)
        timestamp = int(time.time())
        body, headers = event.body, {"content-type": CONTENT_TYPE}
        if registration.content_mode is ContentMode.BINARY:
            headers, body = binary_message(event.body)
        signatures = [
            sign(secret, msg_id, timestamp, body)
            for secret in registration.secrets_at(self.hooks.clock())
        ]
        headers |= {
            "user-agent": "eportfolio-webhooks/1",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(signatures),
        }
        started = time.perf_counter()
        try:
            check_resolved(registration.url, allow_private=self.policy.allow_private)
            with client.stream("POST", registration.url, content=body, headers=headers) as r:
                _drain(r)
                wait = None
                if r.status_code in (429, 503):
                    wait = retry_after(r.headers.get("retry-after"), time.time())
                error = "" if r.is_success else f"HTTP {r.status_code} {r.reason_phrase}"
                return r.status_code, error, time.perf_counter() - started, wait
        except (httpx.HTTPError, BadEndpoint) as failure:
            error = f"{type(failure).__name__}: {failure}"[:500]
            return None, error, time.perf_counter() - started, None


def _drain(response: httpx.Response, limit: int = 65_536) -> None:
    """Read a little of the body so the connection can be reused; never all of a big one."""
    read = 0
    for chunk in response.iter_raw():
        read += len(chunk)
        if read > limit:
            return
