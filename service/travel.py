"""Time travel without re-folding a whole stream: folded states held every few events.

`as_known_at` t is the fold of the events recorded by t. Events are appended, never
changed, and a stream is written one version at a time, so its recorded times normally
rise with its versions: what was known by t is then a prefix of the stream, found by
bisecting the times, and its fold is the nearest held state folded on by at most
`EVERY - 1` events. A stream whose times ever go back (a clock set back, events imported)
is folded from its first event, as before.

The held states are folds of facts (personal fields left sealed), so holding them keeps
no readable copy of personal data after a learner's key is destroyed.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from domain.centre import CentreState, fold_centre
from domain.events import CentreEvent, LearnerEnrolled, PortfolioEvent
from domain.portfolio import PortfolioState, fold_portfolio

CENTRES = 1_000  # centres whose latest fold is held (least recently used dropped)
EVERY = 16  # events between held states: a query folds at most EVERY - 1 on top of one
HELD = 300_000  # evidence items and decisions referenced by held states, across streams
STREAMS = 50_000  # streams with held times or states (least recently used dropped past it)


class _Timed(Protocol):
    @property
    def event_id(self) -> UUID: ...

    @property
    def recorded_at(self) -> datetime: ...


E = TypeVar("E", bound=_Timed)


@dataclass
class Times(Generic[E]):
    """A stream's recorded times in version order, and whether they never go back."""

    times: list[datetime] = field(default_factory=list)
    last: UUID | None = None  # the event the times end with: the same stream, grown
    ordered: bool = True

    def known(self, events: Sequence[E], as_known_at: datetime) -> int | None:
        """How many of `events` were recorded by `as_known_at`, if they are a prefix.

        `events` is the stream as read now: the times held are topped up with the events
        since, and started afresh if it is not the stream they were read from. Not
        thread-safe: callers hold their lock.
        """
        times = self.times
        if len(times) > len(events) or (times and events[len(times) - 1].event_id != self.last):
            times.clear()
            self.ordered = True
        for event in events[len(times) :]:
            at = event.recorded_at
            if times and at < times[-1]:
                self.ordered = False
            times.append(at)
        self.last = events[-1].event_id if events else None
        return bisect_right(times, as_known_at) if self.ordered else None


@dataclass
class _Stream:
    times: Times[PortfolioEvent] = field(default_factory=Times)
    held: list[PortfolioState] = field(default_factory=list)  # [i]: the first (i+1)*EVERY
    ends: list[UUID] = field(default_factory=list)  # [i]: the last event folded into held[i]
    size: int = 0  # items and decisions the held states reference (for the bound)


class Timeline:
    """Per portfolio stream, its folded state every `EVERY` events (least recently used
    streams dropped past `HELD` items): `known_at` folds at most `EVERY - 1` events."""

    def __init__(self, every: int = EVERY, held: int = HELD) -> None:
        if every < 2:  # the first held state is then past the enrolment
            msg = "hold a state every 2 events or more"
            raise ValueError(msg)
        self.every = every
        self.limit = held
        self._streams: OrderedDict[UUID, _Stream] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def known_at(
        self, stream_id: UUID, events: Sequence[PortfolioEvent], as_known_at: datetime
    ) -> tuple[PortfolioState | None, int | None]:
        """The fold of `events` recorded by `as_known_at`, and how many that is (None if
        they are not a prefix of the stream: then folded from the first, as before).

        The state may share items with held states: read it, never change it.
        """
        with self._lock:
            stream = self._stream(stream_id)
            count = stream.times.known(events, as_known_at)
            held, ends = list(stream.held), list(stream.ends)
        if count is None:
            return fold_portfolio([e for e in events if e.recorded_at <= as_known_at]), None
        return self._fold(stream_id, events, count, held, ends), count

    def latest(self, stream_id: UUID, events: Sequence[PortfolioEvent]) -> PortfolioState | None:
        """The fold of all of `events` (the stream as read now), from the nearest held
        state: what a write decides on, folding at most `EVERY - 1` events.

        The state may share items with held states: read it, never change it.
        """
        if len(events) < self.every:  # nothing to hold yet: no entry for a short stream
            return fold_portfolio(list(events))
        with self._lock:
            stream = self._stream(stream_id)
            held, ends = list(stream.held), list(stream.ends)
        return self._fold(stream_id, events, len(events), held, ends)

    def _stream(self, stream_id: UUID) -> _Stream:
        """The stream's entry, made if new (the least recently used dropped past
        `STREAMS`). The caller holds the lock."""
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = self._streams[stream_id] = _Stream()
            while len(self._streams) > STREAMS:
                _, dropped = self._streams.popitem(last=False)
                self._size -= dropped.size
        self._streams.move_to_end(stream_id)
        return stream

    def _fold(
        self,
        stream_id: UUID,
        events: Sequence[PortfolioEvent],
        count: int,
        held: list[PortfolioState],
        ends: list[UUID],
    ) -> PortfolioState | None:
        """The fold of `events[:count]`, from the nearest held state; holds the states
        passed on the way beyond the last one held."""
        every = self.every
        if count == 0 or not isinstance(events[0], LearnerEnrolled):
            return fold_portfolio(list(events[:count]))
        usable = min(count // every, len(held))
        if usable and events[usable * every - 1].event_id != ends[usable - 1]:
            held, ends, usable = [], [], 0  # not the stream these were folded from
        if usable:
            state, start = held[usable - 1].fork(), usable * every
        else:
            state, start = PortfolioState.enrolled(events[0]), 1
        made: list[PortfolioState] = []
        for n in range(start, count):
            state.apply(events[n])
            if (n + 1) % every == 0 and (n + 1) // every == len(held) + len(made) + 1:
                made.append(state)  # held as it is, folded on as its fork
                state = state.fork()
                ends.append(events[n].event_id)
        if made:
            self._hold(stream_id, [*held, *made], ends)
        return state

    def _hold(self, stream_id: UUID, held: list[PortfolioState], ends: list[UUID]) -> None:
        size = sum(len(s.evidence) + len(s.decisions) for s in held)
        with self._lock:
            stream = self._streams.get(stream_id)
            if stream is None or len(stream.held) >= len(held):
                return  # dropped meanwhile, or a racing query held as much
            self._size += size - stream.size
            stream.held, stream.ends, stream.size = held, ends[: len(held)], size
            self._streams.move_to_end(stream_id)
            while self._size > self.limit and len(self._streams) > 1:
                _, dropped = self._streams.popitem(last=False)
                self._size -= dropped.size


class Centres:
    """Per centre stream, its fold up to the newest event read (least recently used
    dropped past `CENTRES`): writes and access checks read a centre on every request, and
    a centre grows by an event per learner registered, so each fold goes on from the last
    on a fork (`CentreState.fork`) by the events since, or is the same state if none.

    A held state is frozen by its fork and never changed: read it, never change it.
    """

    def __init__(self, held: int = CENTRES) -> None:
        self.limit = held
        self._states: OrderedDict[UUID, tuple[int, UUID, CentreState]] = OrderedDict()
        self._lock = threading.Lock()

    def latest(self, centre_id: UUID, events: Sequence[CentreEvent]) -> CentreState | None:
        """The fold of `events`, the centre's stream as read now."""
        if not events:
            return None
        with self._lock:
            held = self._states.get(centre_id)
            if held is not None:
                self._states.move_to_end(centre_id)
        count = len(events)
        if held is not None and held[0] <= count and events[held[0] - 1].event_id == held[1]:
            if held[0] == count:
                return held[2]
            state = held[2].fork()
            for event in events[held[0] :]:
                state.apply(event)
        else:  # the first read, or not the stream the held state was folded from
            folded = fold_centre(list(events))
            if folded is None:
                return None
            state = folded
        with self._lock:
            now = self._states.get(centre_id)
            if now is None or now[0] < count:  # else a racing read held as much
                self._states[centre_id] = (count, events[-1].event_id, state)
                self._states.move_to_end(centre_id)
                while len(self._states) > self.limit:
                    self._states.popitem(last=False)
        return state
