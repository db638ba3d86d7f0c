"""The ledger: one eventsourcing application, one global notification log.

Centres and portfolios are the consistency boundaries (one stream each); a single
application keeps every stream in one ordered log, which streams and the Merkle tree need.
Given a key store, the ledger seals personal fields per subject (`service.personal_data`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Protocol, TypeVar, runtime_checkable
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Mapper, Notification

from domain.events import CentreEvent, Event, LearnerEnrolled, LearnerRegistered, PortfolioEvent
from domain.portfolio import PortfolioState, fold_portfolio
from service.codec import EventMapper, Receipt, Recorded
from service.personal_data import Sealer, SubjectKeys

LEARNERS_CACHED = 10_000
FACTS_CACHED = 200_000  # events held decoded (personal fields sealed), across streams
T = TypeVar("T", bound=Event)


@runtime_checkable
class KnowsPositions(Protocol):
    """A recorder that can say where stored events sit in the log."""

    def notification_position(self, originator_id: UUID, originator_version: int) -> int | None:
        raise NotImplementedError

    def stream_positions(self, originator_id: UUID) -> dict[int, int]:
        """Every stored version of the stream -> its position, in version order."""
        raise NotImplementedError


class Ledger(Application[UUID]):
    """Without `subject_keys` personal fields are stored in clear (tests of other things);
    the composition root always gives the configured key store, which the ledger closes.
    """

    name = "eportfolio"

    def __init__(
        self, env: Mapping[str, str] | None = None, *, subject_keys: SubjectKeys | None = None
    ) -> None:
        self.subject_keys = subject_keys
        self._learners: OrderedDict[UUID, LearnerEnrolled] = OrderedDict()
        self._facts: OrderedDict[UUID, tuple[Recorded, ...]] = OrderedDict()
        self._facts_held = 0
        self._facts_lock = threading.Lock()
        super().__init__(env=env)

    def construct_mapper(self) -> Mapper[UUID]:
        mapper = self.factory.mapper(transcoder=JSONTranscoder(), mapper_class=EventMapper)
        if isinstance(mapper, EventMapper) and self.subject_keys is not None:
            mapper.sealer = Sealer(self.subject_keys, self.learner_of)
        return mapper

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.subject_keys is not None:
                self.subject_keys.close()

    # ---- personal data ---------------------------------------------------------------

    def learner_of(self, portfolio_id: UUID) -> UUID:
        """The learner a portfolio belongs to: whose key seals its personal fields."""
        enrolment = self.enrolment(portfolio_id)
        if enrolment is None:
            msg = f"no enrolment opens stream {portfolio_id}: whose data would it hold?"
            raise LookupError(msg)
        return enrolment.learner_id

    def enrolment(self, portfolio_id: UUID) -> LearnerEnrolled | None:
        """A portfolio's enrolment (its first event), or None if no enrolment opens it.

        Held once read (bounded, least recently used first out): stored events never change
        and an enrolment holds no personal field, so who may touch a portfolio and whose key
        seals it cost no read per request.
        """
        with self._facts_lock:
            held = self._learners.get(portfolio_id)
            if held is not None:
                self._learners.move_to_end(portfolio_id)
                return held
        first = next(iter(self.recorder.select_events(portfolio_id, limit=1)), None)
        event = self._mapper().to_facts(first).event if first is not None else None
        if not isinstance(event, LearnerEnrolled):
            return None
        with self._facts_lock:
            self._learners[portfolio_id] = event
            if len(self._learners) > LEARNERS_CACHED:
                self._learners.popitem(last=False)
        return event

    def held_enrolment(self, portfolio_id: UUID) -> LearnerEnrolled | None:
        """The enrolment `enrolment` holds, without a read; None: not held (ask it)."""
        with self._facts_lock:
            return self._learners.get(portfolio_id)

    def of_topic(self, cls: type[T], *, sealed: bool = False) -> Iterator[T]:
        """Every event of one class in log order, read by topic (not the whole log);
        `sealed`: with personal fields left sealed, as the rules read them."""
        decode = self.fact if sealed else self.decode
        after = 0
        while True:
            page = self.recorder.select_notifications(
                start=after + 1, limit=1_000, topics=[cls.TOPIC]
            )
            for notification in page:
                event = decode(notification).event
                if isinstance(event, cls):
                    yield event
            if len(page) < 1_000:
                return
            after = page[-1].id

    def learner_centres(self, learner_id: UUID) -> list[UUID]:
        """Every centre that registered a learner, in log order: one, since ids are claimed
        (`service.claims`); more only in a store written before claims existed."""
        registered = self.of_topic(LearnerRegistered, sealed=True)
        return list(dict.fromkeys(e.centre_id for e in registered if e.learner_id == learner_id))

    def enrolments(self) -> Iterator[LearnerEnrolled]:
        """Every enrolment in the log: one per portfolio."""
        return self.of_topic(LearnerEnrolled)

    def learner_portfolios(self, learner_id: UUID) -> list[PortfolioState]:
        """Every portfolio of a learner, folded from its stream."""
        states = (
            fold_portfolio(self.portfolio_events(enrolment.portfolio_id))
            for enrolment in self.enrolments()
            if enrolment.learner_id == learner_id
        )
        return [state for state in states if state is not None]

    def destroy_key(self, subject_id: UUID) -> bool:
        """Crypto-shred a subject: their sealed fields read as ERASED from now on."""
        if self.subject_keys is None:
            return False
        return self.subject_keys.destroy(subject_id)

    def recorded(self, stream_id: UUID) -> list[Recorded]:
        return [_as_recorded(item) for item in self.events.get(stream_id)]

    def facts(self, stream_id: UUID) -> tuple[Recorded, ...]:
        """A stream's events with personal fields left sealed: what rules and coverage read.

        Held decoded between calls and topped up with only the versions stored since, so a
        write or a time-travel query does not re-read and re-decode a whole stream. Safe to
        hold: nothing personal is opened, so an erasure leaves no readable copy behind, and
        stored events never change.
        """
        with self._facts_lock:
            held = self._facts.get(stream_id, ())
        after = held[-1].originator_version if held else None
        newer = self.recorder.select_events(stream_id, gt=after)
        if not newer:
            return held
        mapper = self._mapper()
        events = held + tuple(mapper.to_facts(stored) for stored in newer)
        self._hold(stream_id, events)
        return events

    def fact(self, notification: Notification) -> Recorded:
        """A notification as its record, personal fields left sealed (no key is used)."""
        return self._mapper().to_facts(notification)

    def _mapper(self) -> EventMapper:
        mapper = self.mapper
        if not isinstance(mapper, EventMapper):  # pragma: no cover - construct_mapper's own
            msg = f"expected the EventMapper, got {type(mapper).__name__}"
            raise TypeError(msg)
        return mapper

    def centre_facts(self, centre_id: UUID) -> list[CentreEvent]:
        return [r.event for r in self.facts(centre_id) if isinstance(r.event, CentreEvent)]

    def portfolio_facts(self, portfolio_id: UUID) -> list[PortfolioEvent]:
        return [r.event for r in self.facts(portfolio_id) if isinstance(r.event, PortfolioEvent)]

    def _hold(self, stream_id: UUID, events: tuple[Recorded, ...]) -> None:
        with self._facts_lock:
            held = self._facts.get(stream_id, ())
            if len(held) >= len(events):  # a racing reader got further
                return
            self._facts[stream_id] = events
            self._facts.move_to_end(stream_id)
            self._facts_held += len(events) - len(held)
            while self._facts_held > FACTS_CACHED and len(self._facts) > 1:
                _, dropped = self._facts.popitem(last=False)
                self._facts_held -= len(dropped)

    def centre_events(self, centre_id: UUID) -> list[CentreEvent]:
        return [r.event for r in self.recorded(centre_id) if isinstance(r.event, CentreEvent)]

    def portfolio_events(self, portfolio_id: UUID) -> list[PortfolioEvent]:
        return [r.event for r in self.recorded(portfolio_id) if isinstance(r.event, PortfolioEvent)]

    def receipt(self, receipt_id: UUID) -> Receipt | None:
        for item in self.recorded(receipt_id):
            if isinstance(item.event, Receipt):
                return item.event
        return None

    def position_of(self, stream_id: UUID, version: int) -> int:
        position = self._positions().notification_position(stream_id, version)
        if position is None:
            msg = f"no stored event {stream_id} v{version}"
            raise LookupError(msg)
        return position

    def positions_of(self, stream_id: UUID) -> dict[int, int]:
        """Each stored version of a stream -> its position in the log: one query per stream."""
        return self._positions().stream_positions(stream_id)

    def _positions(self) -> KnowsPositions:
        recorder = self.recorder
        if not isinstance(recorder, KnowsPositions):
            msg = f"{type(recorder).__name__} cannot look up positions; use adapters' factories"
            raise TypeError(msg)
        return recorder

    def at(self, position: int) -> Recorded | None:
        """The event stored at a position of the log, or None if none is."""
        page = self.recorder.select_notifications(start=position, limit=1)
        return self.decode(page[0]) if page and page[0].id == position else None

    def decode(self, notification: Notification) -> Recorded:
        """A notification read from the log, as the event it stores."""
        return _as_recorded(self.mapper.to_domain_event(notification))

    def notifications(self, after: int = 0, batch: int = 1_000) -> Iterator[Notification]:
        """Every notification after a position, in log order, read in batches."""
        while True:
            page = self.recorder.select_notifications(start=after + 1, limit=batch)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].id


def _as_recorded(item: object) -> Recorded:
    if not isinstance(item, Recorded):
        msg = f"expected a Recorded event, got {type(item).__name__}"
        raise TypeError(msg)
    return item
