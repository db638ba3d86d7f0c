"""Runs projections over the ledger's log in batches, exactly once, and follows it live.

Why not eventsourcing's `ProjectionRunner`: it commits one transaction per event (~3.5k
events/s on SQLite, ~1.6k/s on PostgreSQL, measured here; docs/architecture.md), builds its
own application from env, and its `wait()` polls from 100 ms. Here a batch of events is
folded into one unit of work and committed with its tracking position in one transaction; a
follower thread reads whatever has arrived as one batch: on SQLite it reads the log itself
when a same-process writer nudges it (or its poll comes round), on PostgreSQL it subscribes
(LISTEN/NOTIFY); `wait()` sleeps on a condition notified after every commit. See
docs/adr/0003 and 0025.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING
from uuid import UUID

from adapters.store.sqlite import PollingSQLiteApplicationRecorder
from adapters.store.views import TrackingConflict
from domain.events import Event
from projections.base import LooksAhead, Projection

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder, Notification, Subscription

    from adapters.store.views import ViewStore
    from service.codec import Stored
    from service.ledger import Ledger

Progress = Callable[[int, int], None]
"""(positions done, positions to do) since the catch-up started."""
Alongside = Callable[[int, "Sequence[Notification]", "Sequence[Stored]"], object]
"""(position before the page, the page, its events decoded): a rebuild's read, shared with
another index of the log (the Merkle index) so the log is read and decoded once for both."""

log = logging.getLogger(__name__)


class ProjectionFailed(RuntimeError):
    """The projection's follower stopped on an error; waiting for it would never end."""


class _End:
    """What the subscription pump sends last: why the subscription ended."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class ProjectionRunner:
    """One projection over one stored view. The runner owns (and closes) the store."""

    idle_check: float = 0.25
    """Seconds of silence after which the follower compares the log head with its position.

    The library's PostgreSQL subscription pulls once, then LISTENs on another connection:
    a write committed in between sends a NOTIFY nobody hears, and would wait for the next
    write. Checking the head when idle bounds that delay. The gap is only at the start of a
    subscription, so the check backs off (doubling up to `idle_check_max`) while nothing
    arrives: an idle deployment queries nothing but that, a few times a minute.
    """
    idle_check_max: float = 15.0

    def __init__(
        self, ledger: Ledger, projection: Projection, store: ViewStore, *, batch_size: int = 1000
    ) -> None:
        self.ledger = ledger
        self.projection = projection
        self.store = store
        self.batch_size = batch_size
        self._batch_lock = threading.Lock()  # one batch at a time: follower vs. callers
        self._moved = threading.Condition()
        self._position = store.position()
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscription: Subscription[ApplicationRecorder] | None = None
        self._woken: threading.Event | None = None  # the SQLite follower's wake-up

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def position(self) -> int:
        """The last log position whose batch is committed to the view."""
        return self._position

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def head(self) -> int:
        """The log's last position now."""
        return self.ledger.recorder.max_notification_id() or 0

    # ---- batches -------------------------------------------------------------------

    def catch_up(self, batch_size: int | None = None, progress: Progress | None = None) -> int:
        """Apply everything after the tracked position, a batch per transaction.

        Returns the position reached.
        """
        return self._catch_up(batch_size or self.batch_size, progress, None)

    def rebuild(
        self,
        progress: Progress | None = None,
        batch_size: int | None = None,
        *,
        alongside: Alongside | None = None,
        pause_gc: bool = False,
    ) -> int:
        """Drop the view and catch up from zero; a running follower is stopped meanwhile.

        Bigger batches rewrite each touched document less often, so rebuilds may want them.
        `alongside` is handed every page once its batch is committed, with its events as
        decoded here (each one decoded, or the rebuild stops on it). `pause_gc`: see
        `_collected_per_batch`; for a process doing nothing else meanwhile (the CLI's).
        """
        was_running = self.running
        self.stop()
        with self._batch_lock:
            self.store.drop()
            self._set_position(self.store.position())
        size = batch_size or self.batch_size
        if not pause_gc:
            position = self._catch_up(size, progress, None, ahead=True, alongside=alongside)
        else:
            with _collected_per_batch() as collect:

                def then_collect(done: int, total: int) -> None:
                    if progress is not None:
                        progress(done, total)
                    collect()

                position = self._catch_up(size, then_collect, None, ahead=True, alongside=alongside)
        if was_running:
            self.start()
        return position

    def _catch_up(
        self,
        size: int,
        progress: Progress | None,
        stopping: threading.Event | None,
        *,
        ahead: bool = False,
        alongside: Alongside | None = None,
    ) -> int:
        """With `ahead` (a rebuild), each page is read before the one in front of it is
        flushed, and a projection that `LooksAhead` is told what it holds, so it can put
        off deriving what that page changes again. Not when following live: a batch's
        documents must be complete when its position is, for read-your-writes.
        """
        start, head = self._position, self.head()
        if stopping is not None and stopping.is_set():
            return self._position
        page = self._page(self._position, size)
        while page:
            stop = stopping is not None and stopping.is_set()
            look = ahead and not stop and len(page) == size
            upcoming = self._page(page[-1].id, size) if look else []
            try:
                self._process(page, upcoming=upcoming, alongside=alongside)
            except TrackingConflict:
                log.info("view %s moved under this runner; resuming from it", self.store.name)
                page = self._page(self._position, size)
                continue
            if progress is not None:
                progress(self._position - start, max(head, self._position) - start)
            if len(page) < size:
                break
            if upcoming:  # what was put off is its batch's to derive: applied even if stopping
                page = upcoming
            elif stop or (stopping is not None and stopping.is_set()):
                break
            else:
                page = self._page(self._position, size)
        return self._position

    def _page(self, after: int, size: int) -> list[Notification]:
        return list(islice(self.ledger.notifications(after=after, batch=size), size))

    def _process(
        self,
        notifications: Sequence[Notification],
        after: int | None = None,
        upcoming: Sequence[Notification] = (),
        alongside: Alongside | None = None,
    ) -> None:
        """Fold a batch and commit it with its last position, or leave the view untouched.

        `after` is where a contiguous feed (the subscription) had got to: if the tracked
        position is behind it, events between were never applied, so the feed must restart.
        `upcoming` is the next batch of a rebuild, told to a projection that `LooksAhead`.
        """
        with self._batch_lock:
            if after is not None and self._position < after:
                msg = f"view {self.store.name} is at {self._position}, behind its feed at {after}"
                raise TrackingConflict(msg)
            fresh = [n for n in notifications if n.id > self._position]
            if not fresh:
                return
            docs = self.store.begin(self._position)
            decoded: list[Stored] = []
            try:
                for notification in fresh:
                    event = self.ledger.decode(notification).event
                    if alongside is not None:
                        decoded.append(event)
                    if isinstance(event, Event):
                        self.projection.apply(notification.id, event, docs)
                if upcoming and isinstance(self.projection, LooksAhead):
                    self.projection.upcoming((_stream(n), n.topic) for n in upcoming)
                self.projection.flush(docs)
                docs.commit(fresh[-1].id)
            except Exception as error:
                self._moved_under(docs.start, error)
                raise
            self._set_position(fresh[-1].id)
        if alongside is not None:
            alongside(docs.start, fresh, decoded)

    def _moved_under(self, start: int, error: Exception) -> None:
        """Turn a failed batch into a TrackingConflict if the view moved meanwhile.

        A batch that read documents a rival runner had already advanced folds events twice
        into its working copies; whatever that raised, its commit could only have failed.
        """
        stored = self.store.position()
        if stored == start and not isinstance(error, TrackingConflict):
            return
        self._set_position(stored)
        if not isinstance(error, TrackingConflict):
            msg = f"view {self.store.name} moved from {start} to {stored} during a batch"
            raise TrackingConflict(msg) from error

    def _set_position(self, position: int) -> None:
        with self._moved:
            self._position = position
            self._moved.notify_all()

    # ---- read-your-writes ------------------------------------------------------------

    def reached(self, position: int) -> bool:
        """Whether the view already includes `position` (tracked by whichever process).

        While this process follows the log its follower's position answers, with no read:
        every write's answer asks (`visible`). A view another runner moved further only
        reads as not yet visible until this follower catches up: late, never wrong.
        """
        if self.running:
            return self._position >= position
        return self.store.position() >= position

    def wait(self, position: int, timeout: float) -> bool:
        """Whether the view reaches `position` within `timeout` seconds.

        While this process follows the log, its own commits wake the wait; otherwise (an
        API-only process, a role held elsewhere) the stored position is watched, whichever
        process moves it. Raises ProjectionFailed if the follower here has stopped on an
        error before then.
        """
        deadline = time.monotonic() + timeout
        with self._moved:
            self._moved.wait_for(
                lambda: self._position >= position or self._error is not None or not self.running,
                timeout,
            )
            if self._position >= position:
                return True
            if self._error is not None:
                msg = f"projection {self.name} stopped at {self._position}: {self._error!r}"
                raise ProjectionFailed(msg) from self._error
        return self.store.wait(position, max(0.0, deadline - time.monotonic()))

    # ---- following the log -----------------------------------------------------------

    def start(self) -> None:
        """Catch up, then follow the log in a background thread until `stop()`."""
        if self.running:
            return
        self._stopping.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=f"projection-{self.name}")
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._batch_lock:  # pairs with the check before subscribing
            subscription, woken = self._subscription, self._woken
        if subscription is not None:
            subscription.stop()
        if woken is not None:
            woken.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._moved:  # waiters turn to the stored position
            self._moved.notify_all()

    def close(self) -> None:
        self.stop()
        self.store.close()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._catch_up(self.batch_size, None, self._stopping)
                    self._follow()
                except TrackingConflict:
                    log.info("view %s moved under its follower; catching up again", self.store.name)
        except BaseException as error:
            log.exception("projection %s stopped", self.name)
            with self._moved:
                self._error = error
                self._moved.notify_all()

    def _follow(self) -> None:
        recorder = self.ledger.recorder
        if isinstance(recorder, PollingSQLiteApplicationRecorder):
            self._follow_sqlite(recorder)
        else:
            self._follow_subscription()

    def _follow_sqlite(self, recorder: PollingSQLiteApplicationRecorder) -> None:
        """SQLite: read the log here whenever a writer in this process commits, else poll.

        The same nudges and backoff as `PollingSQLiteSubscription`, but read a batch at a
        time rather than a notification at a time: each wake-up folds everything committed
        since as one batch, and no pump thread or queue (as `_follow_subscription` needs)
        stands between the log and the view. The writers' nudge wakes this thread; a write
        from another process is found by the poll (`poll_interval_min`, doubling to
        `poll_interval_max` while nothing comes). The
        event is cleared before each read, so a commit during a batch wakes the next one.
        """
        woken = threading.Event()
        with self._batch_lock:
            if self._stopping.is_set():
                return
            self._woken = woken
        recorder.watch(woken)
        interval = recorder.poll_interval_min
        try:
            while not self._stopping.is_set():
                woken.clear()
                before = self._position
                self._read_on()
                if self._position != before:
                    interval = recorder.poll_interval_min
                else:
                    interval = min(interval * 2, recorder.poll_interval_max)
                if not self._stopping.is_set():
                    woken.wait(interval)
        finally:
            recorder.unwatch(woken)
            with self._batch_lock:
                self._woken = None

    def _read_on(self) -> None:
        """Apply everything after the position, a batch at a time (no head query)."""
        while not self._stopping.is_set():
            page = list(
                islice(self.ledger.notifications(self._position, self.batch_size), self.batch_size)
            )
            if page:
                try:
                    self._process(page)
                except TrackingConflict:
                    log.info("view %s moved under its follower; resuming", self.store.name)
                    continue
            if len(page) < self.batch_size:
                return

    def _follow_subscription(self) -> None:
        """PostgreSQL: the library's LISTEN/NOTIFY subscription, fed through a pump."""
        with self._batch_lock:
            if self._stopping.is_set():
                return
            after = self._position
            subscription = self._subscription = self.ledger.recorder.subscribe(gt=after)
        feed: queue.Queue[Notification | _End] = queue.Queue(maxsize=4 * self.batch_size)
        pump = threading.Thread(target=_pump, args=(subscription, feed), name=f"feed-{self.name}")
        ended = False
        idle = [self.idle_check]  # the next silence to wait for; doubles while nothing comes
        try:
            with subscription:
                pump.start()
                for batch, end in _batches(feed, self.batch_size, lambda: idle[0]):
                    if batch:
                        self._process(batch, after=after)
                        after = batch[-1].id
                        idle[0] = self.idle_check
                    elif end is None and self.head() > self._position:
                        self._catch_up(self.batch_size, None, self._stopping)
                        idle[0] = self.idle_check
                    elif end is None:
                        idle[0] = min(idle[0] * 2, self.idle_check_max)
                    if end is not None:
                        ended = True
                        if end.error is not None:
                            raise end.error
        finally:
            subscription.stop()
            while not ended and pump.is_alive():  # unblock a pump stuck on a full feed
                ended = isinstance(feed.get(), _End)
            if pump.ident is not None:
                pump.join()
            with self._batch_lock:
                self._subscription = None


FULL_COLLECTION_EVERY = 20
"""Batches between full collections while the collector is paused for a rebuild."""


@contextmanager
def _collected_per_batch() -> Iterator[Callable[[], None]]:
    """The cyclic garbage collector paused (process-wide), with a `collect()` to call after
    each batch: the young generations then, everything every `FULL_COLLECTION_EVERY`.

    Left to itself the collector ran ~2,500 times per 100k events, traversing the held
    states, caches and catalogue again and again: ~25 % of a rebuild's CPU. Objects are
    freed by reference counting as before; only cycles wait, for a batch or, once old, for
    the next full collection, so memory stays bounded (peak RSS unchanged at 100k events).
    """
    enabled = gc.isenabled()
    gc.disable()
    batches = 0

    def collect() -> None:
        nonlocal batches
        batches += 1
        gc.collect(2 if batches % FULL_COLLECTION_EVERY == 0 else 1)

    try:
        yield collect
    finally:
        if enabled:
            gc.enable()


def _stream(notification: Notification) -> UUID:
    originator_id = notification.originator_id
    return originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))


def _pump(subscription: Iterable[Notification], feed: queue.Queue[Notification | _End]) -> None:
    """Move the subscription's notifications onto the feed, then say how it ended."""
    try:
        for notification in subscription:
            feed.put(notification)
    except BaseException as error:
        feed.put(_End(error))
    else:
        feed.put(_End(None))


def _batches(
    feed: queue.Queue[Notification | _End], size: int, idle: Callable[[], float]
) -> Iterator[tuple[list[Notification], _End | None]]:
    """Whatever has arrived, up to `size`, waiting only for the first of each batch.

    An empty batch says nothing arrived for `idle()` seconds.
    """
    while True:
        batch: list[Notification] = []
        try:
            item = feed.get(timeout=idle())
        except queue.Empty:
            yield batch, None
            continue
        while not isinstance(item, _End):
            batch.append(item)
            if len(batch) >= size:
                break
            try:
                item = feed.get_nowait()
            except queue.Empty:
                break
        end = item if isinstance(item, _End) else None
        yield batch, end
        if end is not None:
            return


class Projections:
    """The deployment's runners, started, stopped and waited on together."""

    def __init__(self, runners: Iterable[ProjectionRunner]) -> None:
        self.runners = {runner.name: runner for runner in runners}

    def __getitem__(self, name: str) -> ProjectionRunner:
        return self.runners[name]

    def __iter__(self) -> Iterator[ProjectionRunner]:
        return iter(self.runners.values())

    def __enter__(self) -> Projections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        for runner in self:
            runner.start()

    def stop(self) -> None:
        for runner in self:
            runner.stop()

    def close(self) -> None:
        for runner in self:
            runner.close()

    def wait_all(self, position: int, timeout: float) -> bool:
        """Whether every view reaches `position` within `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        return all(r.wait(position, max(0.0, deadline - time.monotonic())) for r in self)
