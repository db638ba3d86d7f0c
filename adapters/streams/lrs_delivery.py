"""xAPI delivery to each registered Learning Record Store: in order, retried, resumable.

Modelled on the webhook delivery (adapters/streams/webhooks.py): one worker thread per
active LRS reads the log from the LRS's stored cursor, keeps its centre's observations,
questioning, decisions, countersignatures and certifications, and POSTs each event's
statements (adapters/streams/xapi.py) in one request, never following a redirect. A 2xx
moves the cursor in the transaction that records the attempt; 409 means the LRS already
holds those statement ids (ours, derived from the event: an earlier attempt got through but
its answer was lost), so it counts as delivered; anything else is retried with backoff,
and after `max_attempts` failures of one event the LRS is disabled rather than skipping it.

The statements are built again for every attempt, after reading which subjects are erased,
so an attempt made after an erasure carries none of that person's data.
`XapiDelivery` is started and stopped as a whole, like `Webhooks`.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import httpx

from adapters.streams.lrs_store import Attempt, Lrs, LrsStore, Registration, Secrets, Status
from adapters.streams.signing import BadEndpoint, check_endpoint, check_resolved
from adapters.streams.webhooks import DeliveryPolicy, backoff, retry_after
from adapters.streams.xapi import MAPPED_TOPICS, XAPI_VERSION, Mapper, Statement, pseudonymiser
from domain.events import Event, LearnerEnrolled, PortfolioEvent, SubjectErased
from service.codec import Recorded

if TYPE_CHECKING:
    from eventsourcing.persistence import Notification

    from adapters.streams.tail import LogTail
    from service.ledger import Ledger

Clock = Callable[[], datetime]
PSEUDONYM_KEY_BYTES = 32


class ErasedSubjects:
    """Who has been erased, read from the log's `SubjectErased` events as they arrive."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._after = 0
        self._erased: set[UUID] = set()
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            while True:
                found = self.ledger.recorder.select_notifications(
                    start=self._after, limit=1_000, topics=[SubjectErased.TOPIC],
                    inclusive_of_start=False,
                )  # fmt: skip
                for notification in found:
                    event = self.ledger.decode(notification).event
                    if isinstance(event, SubjectErased):
                        self._erased.add(event.subject_id)
                    self._after = notification.id
                if len(found) < 1_000:
                    return

    def __call__(self, subject_id: UUID) -> bool:
        return subject_id in self._erased


class XapiDelivery:
    """Registration of a centre's LRSs, and the delivery workers of every active one."""

    def __init__(
        self,
        store: LrsStore,
        ledger: Ledger,
        tail: LogTail,
        home_page: str,
        *,
        policy: DeliveryPolicy | None = None,
        clock: Clock = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.store, self.ledger, self.tail, self.home_page = store, ledger, tail, home_page
        self.policy = policy or DeliveryPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self.erased = ErasedSubjects(ledger)
        self.enrolment = lru_cache(maxsize=100_000)(self._enrolment)
        self._workers: dict[UUID, _Worker] = {}
        self._lock = threading.Lock()
        self._running = False

    def register(
        self,
        centre_id: UUID,
        owner_id: UUID,
        endpoint: str,
        username: str,
        password: str,
        *,
        from_position: int | None = None,
    ) -> Lrs:
        """A new LRS for `centre_id`; events from `from_position` on (default: the start)."""
        check_endpoint(endpoint, allow_private=self.policy.allow_private)
        endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        registration = Registration(
            centre_id=centre_id,
            owner_id=owner_id,
            endpoint=endpoint,
            username=username,
            created_at=self.clock(),
        )
        key = secrets.token_bytes(PSEUDONYM_KEY_BYTES)
        start = 0 if from_position is None else max(0, from_position - 1)
        lrs = Lrs(
            id=uuid4(),
            registration=registration,
            secrets=Secrets(password=password, pseudonym_key=key),
            position=start,
        )
        self.store.add(lrs)
        self._ensure_worker(lrs.id)
        return lrs

    def delete(self, lrs_id: UUID) -> bool:
        with self._lock:
            worker = self._workers.pop(lrs_id, None)
        if worker is not None:
            worker.stop()
            worker.join()
        return self.store.delete(lrs_id)

    def start(self) -> None:
        """Start a worker for every active LRS (each resumes from its cursor)."""
        with self._lock:
            self._running = True
        for lrs in self.store.active():
            self._ensure_worker(lrs.id)

    def refresh(self) -> None:
        """Catch up with what other processes changed (they run no workers).

        Starts workers for active LRSs without one (registered elsewhere) and wakes any
        worker whose LRS is no longer as it last read it, so an idle worker need not poll.
        """
        active = {lrs.id: lrs for lrs in self.store.active()}
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            if active.get(worker.id) != worker.seen:
                worker.poke()
        for lrs_id in active:
            self._ensure_worker(lrs_id)

    def stop(self) -> None:
        with self._lock:
            self._running = False
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join()

    def _ensure_worker(self, lrs_id: UUID) -> None:
        with self._lock:
            if not self._running:
                return
            current = self._workers.get(lrs_id)
            if current is not None and current.is_alive():
                return
            worker = self._workers[lrs_id] = _Worker(self, lrs_id)
            worker.start()

    def _enrolment(self, portfolio_id: UUID) -> LearnerEnrolled | None:
        """A portfolio's enrolment: the first event of its stream (it never changes)."""
        for item in self.ledger.events.get(portfolio_id, lte=1):
            if isinstance(item, Recorded) and isinstance(item.event, LearnerEnrolled):
                return item.event
        return None


class _Worker(threading.Thread):
    """Delivers one LRS's statements, one event at a time, in log order."""

    def __init__(self, delivery: XapiDelivery, lrs_id: UUID) -> None:
        super().__init__(name=f"xapi-{lrs_id}", daemon=True)
        self.delivery, self.id = delivery, lrs_id
        self.policy = delivery.policy
        self.stopping = threading.Event()
        self.woken = threading.Event()  # stopping, or the LRS changed elsewhere
        self.seen: Lrs | None = None  # the LRS as this worker last read it

    def stop(self) -> None:
        self.stopping.set()
        self.poke()

    def poke(self) -> None:
        """Make the worker read its LRS again now, not at its next idle look."""
        self.woken.set()
        self.delivery.tail.wake()

    def run(self) -> None:
        with httpx.Client(
            timeout=self.policy.timeout, follow_redirects=False, trust_env=False
        ) as client:
            while not self.stopping.is_set():
                self.woken.clear()
                lrs = self.seen = self.delivery.store.get(self.id)
                if lrs is None or lrs.status is not Status.ACTIVE:
                    return
                self._pass(client, lrs)

    def _pass(self, client: httpx.Client, lrs: Lrs) -> None:
        """Send one page of events after the cursor, or wait for the log to move."""
        ledger, store = self.delivery.ledger, self.delivery.store
        expected = lrs.position
        head = ledger.recorder.max_notification_id() or 0
        page = ledger.recorder.select_notifications(
            start=expected, limit=self.policy.batch, stop=head, topics=sorted(MAPPED_TOPICS),
            inclusive_of_start=False,
        )  # fmt: skip
        mapper = Mapper(self.delivery.home_page, pseudonymiser(lrs.secrets.pseudonym_key))
        for notification in page:
            if self.stopping.is_set():
                return
            event, enrolment = self._ours(notification, lrs.registration.centre_id)
            if event is not None and enrolment is not None:
                sent = self._deliver(
                    client, lrs, mapper, (expected, notification.id), event, enrolment
                )
                if not sent:
                    return
                expected = notification.id
        reached = page[-1].id if len(page) == self.policy.batch else max(head, expected)
        if reached > expected:
            store.advance(self.id, expected, reached)
        if len(page) < self.policy.batch:
            self.delivery.tail.wait_beyond(head, self.policy.idle_wait, cancel=self.woken)

    def _ours(
        self, notification: Notification, centre_id: UUID
    ) -> tuple[Event | None, LearnerEnrolled | None]:
        event = self.delivery.ledger.decode(notification).event
        if not isinstance(event, PortfolioEvent):
            return None, None
        enrolment = self.delivery.enrolment(event.portfolio_id)
        if enrolment is None or enrolment.centre_id != centre_id:
            return None, None
        return event, enrolment

    def _deliver(  # noqa: PLR0917 - one event's delivery, all of its parts
        self,
        client: httpx.Client,
        lrs: Lrs,
        mapper: Mapper,
        move: tuple[int, int],
        event: Event,
        enrolment: LearnerEnrolled,
    ) -> bool:
        """Send until delivered (True) or disabled or stopping (False); `move` is the
        cursor's (from, to) on delivery."""
        delivery, store, policy = self.delivery, self.delivery.store, self.policy
        position = move[1]
        for attempt in range(1, policy.max_attempts + 1):
            if self.stopping.is_set():
                return False
            delivery.erased.refresh()  # built now, as the erasures now stand
            statements = mapper.statements(event, enrolment, delivery.erased)
            if not statements:  # nothing to say (no criteria): nothing to send
                return store.advance(self.id, *move)
            status, error, duration, wait = self._post(client, lrs, statements)
            delivered = status is not None and (200 <= status < 300 or status == 409)
            last = attempt == policy.max_attempts
            outcome = "delivered" if delivered else "disabled" if last else "retrying"
            record = Attempt(
                position=position,
                event_id=event.event_id,
                statement_ids=[UUID(s["id"]) for s in statements],
                attempt=attempt,
                at=delivery.clock(),
                status_code=status,
                error=error,
                duration_ms=round(duration * 1000, 3),
                outcome=outcome,
            )
            if not store.record(self.id, record, moved=move if delivered else None):
                return False  # removed meanwhile
            if delivered:
                return True
            if last:
                reason = f"{attempt} failed attempts at position {position}"
                store.set_status(self.id, Status.DISABLED, reason)
                return False
            delay = wait if wait is not None else backoff(attempt, policy, delivery.rng)
            if self.stopping.wait(min(delay, policy.max_delay)):
                return False
        return False

    def _post(
        self, client: httpx.Client, lrs: Lrs, statements: list[Statement]
    ) -> tuple[int | None, str, float, float | None]:
        """One request: (status, error, seconds taken, Retry-After seconds)."""
        registration = lrs.registration
        url = registration.endpoint + "statements"
        headers: dict[str, Any] = {
            "X-Experience-API-Version": XAPI_VERSION,
            "user-agent": "eportfolio-xapi/1",
        }
        started = time.perf_counter()
        try:
            check_resolved(url, allow_private=self.policy.allow_private)
            response = client.post(
                url,
                json=statements,
                headers=headers,
                auth=(registration.username, lrs.secrets.password),
            )
            wait = None
            if response.status_code in (429, 503):
                wait = retry_after(response.headers.get("retry-after"), time.time())
            ok = response.is_success or response.status_code == 409
            error = "" if ok else f"HTTP {response.status_code} {response.reason_phrase}"
            if response.status_code == 409:
                error = "already stored (409): these statement ids are in the LRS"
            return response.status_code, error, time.perf_counter() - started, wait
        except (httpx.HTTPError, BadEndpoint) as failure:
            error = f"{type(failure).__name__}: {failure}"[:500]
            return None, error, time.perf_counter() - started, None
