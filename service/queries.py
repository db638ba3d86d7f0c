"""Queries: coverage, sufficiency, history and the EV audit view, now or as they stood.

Without time travel a query reads the stored view (one document, whatever the size of
the store; the EV audit view of a centre reads its stored centre, trail rows and decision
chains, and the EV sample events at the positions the view indexed). With `as_known_at`
(events recorded up to then) or `effective_at` (events effective up to a date, among
those known) it folds the portfolio's own stream, cut at that point, through the same
pure functions the view uses — so "what the EV saw on the day of the sample" is the
projection of exactly the events recorded by then.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Generic, Protocol, TypeVar
from uuid import UUID

import msgspec

from domain.centre import CentreState, fold_centre
from domain.errors import NotFound
from domain.events import CentreEvent, Event, EvSampleRecorded, PortfolioEvent
from domain.portfolio import PortfolioState, fold_portfolio
from projections import audit as audit_view
from projections.base import effective_at as effective_filter
from projections.base import known_at
from projections.coverage import CoverageMemo, CoverageReport
from projections.documents import (
    CENTRE,
    CENTRE_PORTFOLIOS,
    CHAINS,
    COVERAGE,
    EV_SAMPLE,
    SUFFICIENCY,
    TRAIL,
    decode_centre,
    position_key,
)
from projections.judgement import coverage_of, sufficiency_of
from projections.sampling import SamplingCompliance, sampling_compliance
from projections.sufficiency import SufficiencyReport
from service.codec import Recorded
from service.handlers import Eportfolio
from service.travel import Times

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
REPORTS_HELD = 1_024  # coverage reports as known then (~16 kB each at 1,000 events)
CENTRES_HELD = 4_096  # centres as known at a moment (facts: names sealed), their times
STREAMS_HELD = 256  # portfolio streams' events, as the ledger's facts hold them
E = TypeVar("E", bound=Event)
DecisionChainWithContext = audit_view.DecisionChainWithContext
_decode_chains = msgspec.json.Decoder(list[DecisionChainWithContext]).decode
_decode_id = msgspec.json.Decoder(UUID).decode
_decode_trail_entry = msgspec.json.Decoder(audit_view.TrailEntry).decode


class StoredDoc(Protocol):
    """A stored document as a view lists it (read-only: a NamedTuple row will do)."""

    @property
    def key(self) -> str: ...

    @property
    def body(self) -> bytes: ...


class ViewReader(Protocol):
    """The read side of a stored view (adapters provide it)."""

    def get(self, kind: str, key: str) -> bytes | None: ...

    def list(
        self, kind: str, centre_id: str | None = None, after_key: str = "", limit: int = 100
    ) -> Sequence[StoredDoc]: ...


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    """The EV audit view of a centre: a page of the trail, decisions and sampling."""

    centre_id: UUID
    as_known_at: datetime | None
    trail: tuple[audit_view.TrailEntry, ...]
    next_after: int | None
    decisions: tuple[audit_view.DecisionChain, ...]
    sampling: SamplingCompliance
    ev_samples: tuple[audit_view.EvSampleView, ...]


_CentreAudit = tuple[
    CentreState, list[audit_view.DecisionChainWithContext], list[audit_view.EvSampleView]
]
"""A centre's audit view but its trail: the centre, its decision chains, its EV samples."""


class _Held(Generic[K, V]):
    """A bounded map, least recently used out first, safe to share between threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._held.get(key)
            if value is not None:
                self._held.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._held[key] = value
            self._held.move_to_end(key)
            if len(self._held) > self.limit:
                self._held.popitem(last=False)
        return value


_Cut = tuple[UUID, int, UUID, int]
"""What a time-travel answer folds: a portfolio's first n events and its centre's first m."""


class Queries:
    def __init__(self, app: Eportfolio, view: ViewReader | None = None) -> None:
        self.app = app
        self.view = view
        # Time travel (`as_known_at`): the events known at a moment are, almost always, a
        # prefix of each stream, and the answer for a prefix never changes (events are
        # appended, never changed): folded states held along each portfolio's stream, the
        # centres and coverage reports held by the prefixes they fold. None of it holds
        # personal data (facts: personal fields sealed; a report names no one).
        self.timeline = app.timeline  # the held states writes fold on from too
        self._centre_times: _Held[UUID, Times[CentreEvent]] = _Held(CENTRES_HELD)
        self._centre_lock = threading.Lock()
        self._centres: _Held[tuple[UUID, int], CentreState] = _Held(CENTRES_HELD)
        self._reports: _Held[tuple[_Cut, str, int, str], CoverageReport] = _Held(REPORTS_HELD)
        self._events: _Held[UUID, tuple[tuple[Recorded, ...], tuple[PortfolioEvent, ...]]]
        self._events = _Held(STREAMS_HELD)
        self._coverage_memo = CoverageMemo()  # folds' items never change (copy on write)

    # ---- a portfolio -------------------------------------------------------------------

    def portfolio_at(
        self,
        portfolio_id: UUID,
        *,
        as_known_at: datetime | None = None,
        effective_at: date | None = None,
    ) -> tuple[PortfolioState, CentreState]:
        """The portfolio and its centre, folded from events known by `as_known_at`.

        Facts only (personal fields sealed): what coverage and sufficiency read. The
        states may share parts with states held for later queries: read, never change them.
        """
        portfolio, centre, _ = self._known(portfolio_id, as_known_at, effective_at)
        return portfolio, centre

    def _known(
        self, portfolio_id: UUID, as_known_at: datetime | None, effective_at: date | None
    ) -> tuple[PortfolioState, CentreState, _Cut | None]:
        """`portfolio_at`, and the prefixes it folds where they are prefixes."""
        events = self._portfolio_facts(portfolio_id)
        count: int | None = None
        if as_known_at is not None and effective_at is None:
            portfolio, count = self.timeline.known_at(portfolio_id, events, as_known_at)
        else:
            portfolio = fold_portfolio(_cut(events, as_known_at, effective_at))
        if portfolio is None:
            raise NotFound(f"no portfolio {portfolio_id} at that time", field="portfolio_id")
        centre_id = portfolio.centre_id
        if as_known_at is None:
            return portfolio, self.centre_at(centre_id, personal=False), None
        centre, known = self._centre_facts_at(centre_id, as_known_at)
        cut = None if count is None or known is None else (portfolio_id, count, centre_id, known)
        return portfolio, centre, cut

    def _portfolio_facts(self, portfolio_id: UUID) -> Sequence[PortfolioEvent]:
        """`Ledger.portfolio_facts`, its list kept while the stream's facts stay the same."""
        facts = self.app.ledger.facts(portfolio_id)
        held = self._events.get(portfolio_id)
        if held is not None and held[0] is facts:
            return held[1]
        events = tuple(r.event for r in facts if isinstance(r.event, PortfolioEvent))
        return self._events.put(portfolio_id, (facts, events))[1]

    def _centre_facts_at(
        self, centre_id: UUID, as_known_at: datetime
    ) -> tuple[CentreState, int | None]:
        """The centre as known then, names sealed; held by the prefix it folds, if one."""
        events = self.app.ledger.centre_facts(centre_id)
        with self._centre_lock:
            times = self._centre_times.get(centre_id)
            if times is None:
                times = self._centre_times.put(centre_id, Times())
            count = times.known(events, as_known_at)
        if count is None:
            return self.centre_at(centre_id, as_known_at=as_known_at, personal=False), None
        if (held := self._centres.get((centre_id, count))) is not None:
            return held, count
        centre = fold_centre(events[:count])
        if centre is None:
            raise NotFound(f"no centre {centre_id} at that time", field="centre_id")
        return self._centres.put((centre_id, count), centre), count

    def centre_at(
        self, centre_id: UUID, *, as_known_at: datetime | None = None, personal: bool = True
    ) -> CentreState:
        """The centre as known by `as_known_at`; with `personal=False`, its names sealed."""
        ledger = self.app.ledger
        events = ledger.centre_events(centre_id) if personal else ledger.centre_facts(centre_id)
        centre = fold_centre(list(known_at(events, as_known_at)))
        if centre is None:
            raise NotFound(f"no centre {centre_id} at that time", field="centre_id")
        return centre

    def coverage(
        self,
        portfolio_id: UUID,
        *,
        as_known_at: datetime | None = None,
        effective_at: date | None = None,
    ) -> CoverageReport:
        if as_known_at is None and effective_at is None:
            stored = self._stored(COVERAGE, portfolio_id, CoverageReport)
            if stored is not None:
                return stored
        portfolio, centre, cut = self._known(portfolio_id, as_known_at, effective_at)
        spec = self.app.spec_of(portfolio)
        if cut is None:
            return coverage_of(portfolio, centre, spec)
        key = (cut, spec.code, spec.version, spec.content_hash)
        if (held := self._reports.get(key)) is not None:
            return held
        report = coverage_of(portfolio, centre, spec, memo=self._coverage_memo)
        return self._reports.put(key, report)

    def sufficiency(
        self,
        portfolio_id: UUID,
        *,
        as_known_at: datetime | None = None,
        effective_at: date | None = None,
    ) -> SufficiencyReport:
        if as_known_at is None and effective_at is None:
            stored = self._stored(SUFFICIENCY, portfolio_id, SufficiencyReport)
            if stored is not None:
                return stored
        portfolio, centre = self.portfolio_at(
            portfolio_id, as_known_at=as_known_at, effective_at=effective_at
        )
        return sufficiency_of(portfolio, centre, self.app.spec_of(portfolio))

    def history(
        self, portfolio_id: UUID, *, as_known_at: datetime | None = None
    ) -> list[audit_view.TrailEntry]:
        """Every event of the portfolio, in order, as a trail row."""
        recorded = self.app.ledger.recorded(portfolio_id)
        events = [r for r in recorded if isinstance(r.event, PortfolioEvent)]
        if not events:
            raise NotFound(f"no portfolio {portfolio_id}", field="portfolio_id")
        first = events[0].event
        assert isinstance(first, PortfolioEvent)
        centre = self.centre_at(_centre_of(first), as_known_at=as_known_at)
        names = audit_view.names(centre)
        positions = self.app.ledger.positions_of(portfolio_id)  # read after: holds every version
        return [
            audit_view.trail_entry(
                positions[r.originator_version],
                r.event,
                audit_view.name_of(names, r.event.actor_id, r.event.actor_role),
                centre.centre_id,
                names=names,
            )
            for r in events
            if isinstance(r.event, Event)
            and (as_known_at is None or r.event.recorded_at <= as_known_at)
        ]

    def decisions(
        self, portfolio_id: UUID, *, as_known_at: datetime | None = None
    ) -> list[audit_view.DecisionChain]:
        """The portfolio's decision chains as known then: the audit view's, for one portfolio."""
        if as_known_at is None and (stored := self._stored_chains(portfolio_id)) is not None:
            return [c.chain for c in stored]
        events = list(known_at(self.app.ledger.portfolio_events(portfolio_id), as_known_at))
        portfolio = fold_portfolio(events)
        if portfolio is None:
            raise NotFound(f"no portfolio {portfolio_id} at that time", field="portfolio_id")
        centre = self.centre_at(portfolio.centre_id, as_known_at=as_known_at)
        return audit_view.decision_chains(portfolio, audit_view.names(centre))

    # ---- a centre (the EV audit view) ----------------------------------------------------

    def centre_portfolios(self, centre_id: UUID) -> list[UUID]:
        """The centre's portfolios, in the order they were enrolled (from the stored view)."""
        return self._centre_portfolios(centre_id)

    def audit(
        self,
        centre_id: UUID,
        *,
        as_known_at: datetime | None = None,
        after: int = 0,
        limit: int = 100,
        event_type: str | None = None,
        portfolio_id: UUID | None = None,
        person_id: UUID | None = None,
    ) -> AuditPage:
        """A page of the centre's trail and, as of `as_known_at`, its decisions and sampling.

        Now: from the stored view, no fold (`_stored_audit`). With `as_known_at`: the
        centre and each of its portfolios folded from the events known then.
        """
        stored = self._stored_audit(centre_id) if as_known_at is None else None
        centre, chains, samples = stored or self._folded_audit(centre_id, as_known_at)
        trail, next_after = self._trail(
            centre_id,
            as_known_at=as_known_at,
            after=after,
            limit=limit,
            event_type=event_type,
            portfolio_id=portfolio_id,
            person_id=person_id,
        )
        return AuditPage(
            centre_id=centre_id,
            as_known_at=as_known_at,
            trail=tuple(trail),
            next_after=next_after,
            decisions=tuple(c.chain for c in chains),
            sampling=sampling_compliance(centre.sampling_plan, chains),
            ev_samples=tuple(samples),
        )

    def _folded_audit(self, centre_id: UUID, as_known_at: datetime | None) -> _CentreAudit:
        centre = self.centre_at(centre_id, as_known_at=as_known_at)
        names = audit_view.names(centre)
        chains: list[audit_view.DecisionChainWithContext] = []
        samples: list[audit_view.EvSampleView] = []
        for pid in self._centre_portfolios(centre_id):
            events = self.app.ledger.portfolio_events(pid)
            known = list(known_at(events, as_known_at))
            portfolio = fold_portfolio(known)
            if portfolio is None:
                continue
            chains.extend(audit_view.chains_with_context(portfolio, names))
            samples.extend(audit_view.ev_samples(known, names))
        return centre, chains, samples

    def _stored_audit(self, centre_id: UUID) -> _CentreAudit | None:
        """The centre as stored, each portfolio's stored chains and the EV sample events at
        the positions the view indexed, in the fold's order (portfolios as enrolled, each
        stream's samples in order). None if the view lacks any of it: the caller folds.

        The sample events are read from the log, not copied into the view, so feedback
        reads as erased once the learner's key is destroyed, as in the fold. Every sample
        a chain names must be among them, or the view is not the standard one.
        """
        if self.view is None or (body := self.view.get(CENTRE, str(centre_id))) is None:
            return None
        centre = decode_centre(body).state()
        portfolios = self._centre_portfolios(centre_id)
        chains: list[audit_view.DecisionChainWithContext] = []
        for pid in portfolios:
            if (stored := self._stored_chains(pid)) is None:
                return None
            chains.extend(stored)
        enrolled = {pid: n for n, pid in enumerate(portfolios)}
        indexed: list[tuple[int, EvSampleRecorded]] = []
        for doc in self._listed(EV_SAMPLE, centre_id):
            if (n := enrolled.get(_decode_id(doc.body))) is None:
                continue
            recorded = self.app.ledger.at(int(doc.key))
            if recorded is not None and isinstance(recorded.event, EvSampleRecorded):
                indexed.append((n, recorded.event))
        indexed.sort(key=lambda pair: pair[0])  # stable: log order within a portfolio
        events = [event for _, event in indexed]
        named = {s.sample_id for c in chains for s in c.chain.ev_samples}
        if not named <= {event.sample_id for event in events}:
            return None
        return centre, chains, audit_view.ev_samples(events, audit_view.names(centre))

    def _stored_chains(
        self, portfolio_id: UUID
    ) -> list[audit_view.DecisionChainWithContext] | None:
        if self.view is None or (body := self.view.get(CHAINS, str(portfolio_id))) is None:
            return None
        return _decode_chains(body)

    def _listed(self, kind: str, centre_id: UUID) -> Iterator[StoredDoc]:
        """Every document of a kind tagged with the centre, in key order."""
        view, key = self._require_view(), ""
        while True:
            page = view.list(kind, str(centre_id), after_key=key, limit=500)
            yield from page
            if len(page) < 500:
                return
            key = page[-1].key

    def _trail(
        self,
        centre_id: UUID,
        *,
        as_known_at: datetime | None,
        after: int,
        limit: int,
        event_type: str | None,
        portfolio_id: UUID | None,
        person_id: UUID | None = None,
    ) -> tuple[list[audit_view.TrailEntry], int | None]:
        view = self._require_view()
        entries: list[audit_view.TrailEntry] = []
        key = position_key(after)
        # Unfiltered, every row is wanted: read the page asked for, not 500 rows for 100.
        filtered = any(x is not None for x in (as_known_at, event_type, portfolio_id, person_id))
        size = 500 if filtered else min(limit, 500)
        while len(entries) < limit:
            page = view.list(TRAIL, str(centre_id), after_key=key, limit=size)
            for doc in page:
                entry = _decode_trail_entry(doc.body)
                if _wanted(entry, as_known_at, event_type, portfolio_id) and _about(
                    entry, person_id
                ):
                    entries.append(entry)
                    if len(entries) == limit:
                        return entries, entry.position
            if len(page) < size:
                return entries, None
            key = page[-1].key
        return entries, entries[-1].position if entries else None

    def _centre_portfolios(self, centre_id: UUID) -> list[UUID]:
        body = self._require_view().get(CENTRE_PORTFOLIOS, str(centre_id))
        return [] if body is None else msgspec.json.decode(body, type=list[UUID])

    def _stored(self, kind: str, key: UUID, type_: type[T]) -> T | None:
        if self.view is None:
            return None
        body = self.view.get(kind, str(key))
        return None if body is None else msgspec.json.decode(body, type=type_)

    def _require_view(self) -> ViewReader:
        if self.view is None:
            msg = "the audit view needs the stored projections; build them with the service"
            raise RuntimeError(msg)
        return self.view


def _cut(events: Sequence[E], as_known_at: datetime | None, effective_at: date | None) -> list[E]:
    return list(effective_filter(list(known_at(events, as_known_at)), effective_at))


def _centre_of(event: PortfolioEvent) -> UUID:
    centre_id = getattr(event, "centre_id", None)
    if not isinstance(centre_id, UUID):
        msg = "a portfolio's first event is its enrolment, which names the centre"
        raise TypeError(msg)
    return centre_id


def _wanted(
    entry: audit_view.TrailEntry,
    as_known_at: datetime | None,
    event_type: str | None,
    portfolio_id: UUID | None,
) -> bool:
    return (
        (as_known_at is None or entry.recorded_at <= as_known_at)
        and (event_type is None or entry.event_type == event_type)
        and (portfolio_id is None or entry.portfolio_id == portfolio_id)
    )


def _about(entry: audit_view.TrailEntry, person_id: UUID | None) -> bool:
    """By that person, or about them (a learner enrolled, a member of staff registered)."""
    return person_id is None or person_id == entry.actor_id or person_id in entry.subject_ids
