"""The state view: every centre and portfolio folded into stored documents.

Read models answer from these documents instead of replaying streams. The fold is the
domain's own (`CentreState.apply`, `PortfolioState.apply`), so a view can never disagree
with the rules about what happened. States touched in a batch stay decoded in memory and
are encoded once, in `flush`, however many of the batch's events they saw.

Erasure: for each event about a learner, the trail row that event will show once the
learner is erased (`domain.personal.redacted`, their name read as ERASED) is kept beside
the row where the two differ, with an index per learner. `SubjectErased` swaps those rows
in and deletes the rest, so the live view holds no personal text of theirs and equals a
rebuild from the shredded log, which derives the redacted rows directly.

Derived documents (`projections.derivers`) are computed in `flush` for every touched
portfolio from the stored (canonical) form of its state, and per event for the audit
trail, so what they hold never depends on where a batch boundary fell. A `Selective`
deriver is skipped for a portfolio whose events in the batch cannot change its document
(coverage after a sign-off, the decision chains after evidence no decision cites); a
centre change re-derives every document of its portfolios; coverage and sufficiency are
refreshed from their stored documents where the events allow (`Selective.refresh`: only
the rows an event touches are judged again), and a held state's unchanged items keep
their JSON (`encode_portfolio`) (ADR 0021). A rebuild, which
reads a batch ahead, puts off deriving a portfolio with no derived document yet that the
next batch touches again (`upcoming`, ADR 0022).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar
from uuid import UUID

from domain import events as e
from domain.centre import CentreState
from domain.portfolio import PortfolioState
from domain.spec import SpecCatalogue
from projections.base import Documents
from projections.canonical import normalise_sets
from projections.centre_snapshot import CentreSnapshot
from projections.derivers import (
    EVIDENCE_ADDED,
    Deriver,
    EventDeriver,
    Selective,
    TrailDeriver,
    standard_derivers,
    standard_event_derivers,
)
from projections.documents import (
    CENTRE,
    CENTRE_PORTFOLIOS,
    DECISION,
    ERASABLE_INDEX,
    PORTFOLIO,
    TRAIL,
    TRAIL_ERASABLE,
    DecisionPlace,
    decode_centre,
    decode_ids,
    decode_portfolio,
    decode_positions,
    encode_doc,
    encode_portfolio,
    position_key,
)
from projections.recent import Recent

_PORTFOLIO_TOPICS = frozenset(
    topic for topic, cls in e.EVENT_TYPES.items() if issubclass(cls, e.PortfolioEvent)
)


class PortfolioStateProjection:
    """Stores kind "centre" (CentreSnapshot), "portfolio" (PortfolioState, which names its
    centre), "centre_portfolios" (a centre's portfolio ids, so a centre change can re-derive
    them), "decision" (DecisionPlace), whatever the derivers return and, with the trail
    deriver, the rows to show after an erasure ("trail_erasable", "erasable_index").
    """

    name = "portfolio_state"
    #: Centre events that may change a derived document of the centre's existing portfolios
    #: (thresholds, observed criteria, qualifications, names of staff, witnesses and EVs).
    #: Learners are registered before they are enrolled, so LearnerRegistered can't.
    rederive_on: ClassVar[tuple[type[e.CentreEvent], ...]] = (
        e.StaffRegistered,
        e.StaffQualificationChanged,
        e.WitnessAdded,
        e.EvAllocated,
        e.ObservedCriteriaSet,
        e.SufficiencyPolicySet,
        e.SamplingPlanSet,
        e.SubjectErased,
        e.RealisticEnvironmentApproved,
    )

    def __init__(
        self,
        specs: SpecCatalogue,
        *,
        derivers: Sequence[Deriver] | None = None,
        event_derivers: Sequence[EventDeriver] | None = None,
        keep_decoded: int = 512,
    ) -> None:
        """Without derivers given, stores the standard derived documents for `specs` (and
        without event derivers, the standard ones: the trail and the EV sample index).

        `keep_decoded` states stay decoded between batches (see `Recent`).
        """
        self.specs = specs
        self.derivers = tuple(standard_derivers(specs) if derivers is None else derivers)
        self.event_derivers = tuple(
            standard_event_derivers() if event_derivers is None else event_derivers
        )
        self.trail = next((d for d in self.event_derivers if isinstance(d, TrailDeriver)), None)
        self._recent_centres = Recent[CentreState](keep_decoded)
        self._recent_portfolios = Recent[PortfolioState](keep_decoded)
        self._batch: _Batch | None = None
        self._upcoming: frozenset[UUID] = frozenset()  # portfolios the next batch touches
        self._pending: dict[UUID, None] = {}  # derivations put off by the last batch

    def upcoming(self, events: Iterable[tuple[UUID, str]]) -> None:
        """Put off deriving the portfolios the next batch of a rebuild touches (LooksAhead).

        In a rebuild a portfolio's events often straddle two batches; deriving it in
        both would compute its coverage, sufficiency and chains twice for one result. Only
        a portfolio none of whose derived documents is stored yet is put off, so whichever
        process applies its next event (this one, or another after a crash) finds nothing
        to keep and derives it; here the next flush derives it regardless.
        """
        self._upcoming = frozenset(stream for stream, topic in events if topic in _PORTFOLIO_TOPICS)

    def apply(self, position: int, event: e.Event, docs: Documents) -> None:
        batch = self._batch_for(docs)
        learner: UUID | None = None
        if isinstance(event, e.CentreEvent):
            centre = batch.fold_centre(event, rederive=isinstance(event, self.rederive_on))
            subject = getattr(event, event.SUBJECT) if event.SUBJECT else None
            learner = subject if subject in centre.learners else None
        elif isinstance(event, e.PortfolioEvent):
            portfolio = batch.fold_portfolio(event)
            if isinstance(event, e.DecisionRecorded):
                where = DecisionPlace(
                    portfolio_id=portfolio.portfolio_id, centre_id=portfolio.centre_id
                )
                docs.put(
                    DECISION,
                    str(event.decision_id),
                    encode_doc(where),
                    centre_id=str(where.centre_id),
                )
            if not self.event_derivers:
                return
            centre = batch.centre(portfolio.centre_id)
            learner = portfolio.learner_id
        else:
            return
        key, centre_id = position_key(position), str(centre.centre_id)
        about = learner if learner is not None and learner not in centre.erased else None
        for derive in self.event_derivers:
            if derive is self.trail:
                row, erased = self.trail.rows(position, event, centre, about)
                docs.put(TRAIL, key, row, centre_id=centre_id)
                if erased is not None and about is not None:
                    docs.put(TRAIL_ERASABLE, key, erased, centre_id=centre_id)
                    batch.erasable.setdefault(about, []).append(position)
                    batch.learner_centres[about] = centre_id
            elif (derived := derive(position, event, centre)) is not None:
                kind, body = derived
                docs.put(kind, key, body, centre_id=centre_id)
        if isinstance(event, e.SubjectErased):
            batch.purge(event.subject_id, centre_id)

    def flush(self, docs: Documents) -> None:
        batch, self._batch = self._batch_for(docs), None
        upcoming, self._upcoming = self._upcoming, frozenset()
        pending, self._pending = self._pending, {}
        self._pending = batch.write(self.derivers, pending, upcoming)

    def _batch_for(self, docs: Documents) -> _Batch:
        """The in-memory states belong to one unit of work; a new one (after a failed batch,
        or a rebuild) starts from what is stored. Holding `docs` keeps the identity check sound.
        """
        if self._batch is None or self._batch.docs is not docs:
            self._batch = _Batch(docs, self._recent_centres, self._recent_portfolios)
        return self._batch


class _Batch:
    """States loaded or changed during one batch, and what flush must write."""

    def __init__(
        self,
        docs: Documents,
        recent_centres: Recent[CentreState],
        recent_portfolios: Recent[PortfolioState],
    ) -> None:
        self.docs = docs
        self.recent_centres = recent_centres
        self.recent_portfolios = recent_portfolios
        self.centres: dict[UUID, CentreState] = {}
        self.portfolios: dict[UUID, PortfolioState] = {}
        # dicts as ordered sets, so flush writes in a repeatable order
        self.changed_centres: dict[UUID, None] = {}
        self.changed_portfolios: dict[UUID, None] = {}
        self.events: dict[UUID, list[e.PortfolioEvent]] = {}  # each portfolio's, this batch
        #: portfolios given an evidence or decision id again (the fold replaced that one)
        self.reused_evidence: set[UUID] = set()
        self.enrolled: dict[UUID, list[UUID]] = {}
        self.rederive: dict[UUID, None] = {}
        self.loaded: dict[UUID, bytes] = {}  # the stored bytes each loaded state came from
        self.erasable: dict[UUID, list[int]] = {}  # learner -> positions new in this batch
        self.learner_centres: dict[UUID, str] = {}

    def centre(self, centre_id: UUID) -> CentreState:
        if (state := self.centres.get(centre_id)) is None:
            state = self.centres[centre_id] = self._stored_centre(centre_id)
        return state

    def portfolio(self, portfolio_id: UUID) -> PortfolioState:
        if (state := self.portfolios.get(portfolio_id)) is None:
            state = self._stored_portfolio(portfolio_id)
            if state is None:
                msg = f"no portfolio {portfolio_id} in the view: the log names it before enrolling"
                raise LookupError(msg)
            self.portfolios[portfolio_id] = state
        return state

    def fold_centre(self, event: e.CentreEvent, *, rederive: bool) -> CentreState:
        if isinstance(event, e.CentreRegistered):  # as domain.centre.fold_centre starts
            state = CentreState(centre_id=event.centre_id, name=event.name, version=1)
            self.centres[event.centre_id] = state
        else:
            state = self.centre(event.centre_id)
            state.apply(event)
        self.changed_centres[event.centre_id] = None
        if rederive:
            self.rederive[event.centre_id] = None
        return state

    def fold_portfolio(self, event: e.PortfolioEvent) -> PortfolioState:
        if isinstance(event, e.LearnerEnrolled):
            state = PortfolioState.enrolled(event)
            self.portfolios[event.portfolio_id] = state
            self.enrolled.setdefault(event.centre_id, []).append(event.portfolio_id)
        else:
            state = self.portfolio(event.portfolio_id)
            if isinstance(event, EVIDENCE_ADDED) and event.evidence_id in state.evidence:
                self.reused_evidence.add(event.portfolio_id)  # replaces an item: derive all
            if isinstance(event, e.DecisionRecorded) and event.decision_id in state.decisions:
                self.reused_evidence.add(event.portfolio_id)  # replaces a decision: derive all
            state.apply(event)
        self.changed_portfolios[event.portfolio_id] = None
        self.events.setdefault(event.portfolio_id, []).append(event)
        return state

    def purge(self, learner: UUID, centre_id: str) -> None:
        """The learner was erased: their trail rows read as erased, the prepared rows go."""
        for position in [*self._erasable(learner), *self.erasable.pop(learner, [])]:
            key = position_key(position)
            if (erased := self.docs.get(TRAIL_ERASABLE, key)) is not None:
                self.docs.put(TRAIL, key, erased, centre_id=centre_id)
                self.docs.delete(TRAIL_ERASABLE, key)
        self.docs.delete(ERASABLE_INDEX, str(learner))

    def _erasable(self, learner: UUID) -> list[int]:
        body = self.docs.get(ERASABLE_INDEX, str(learner))
        return [] if body is None else decode_positions(body)

    def write(
        self,
        derivers: Sequence[Deriver],
        pending: dict[UUID, None] | None = None,
        upcoming: frozenset[UUID] = frozenset(),
    ) -> dict[UUID, None]:
        """Write the batch; returns the portfolios whose derivation it put off (`upcoming`
        ones with no derived document stored), after deriving the `pending` ones."""
        put = self.docs.put
        for learner, positions in self.erasable.items():
            index = encode_doc([*self._erasable(learner), *positions])
            put(ERASABLE_INDEX, str(learner), index, centre_id=self.learner_centres[learner])
        centres: dict[UUID, CentreState] = {}  # as derivers see them
        for centre_id in self.changed_centres:
            body = encode_doc(CentreSnapshot.of(self.centres[centre_id]))
            put(CENTRE, str(centre_id), body, centre_id=str(centre_id))
            centres[centre_id] = normalise_sets(self.centres[centre_id])
            self.recent_centres.keep(centre_id, body, centres[centre_id])
        for centre_id, new in self.enrolled.items():
            ids = [*self._centre_portfolios(centre_id), *new]
            put(CENTRE_PORTFOLIOS, str(centre_id), encode_doc(ids), centre_id=str(centre_id))
        stored: dict[UUID, bytes] = {}
        for portfolio_id in self.changed_portfolios:
            state = self.portfolios[portfolio_id]
            stored[portfolio_id] = body = encode_portfolio(state)
            put(PORTFOLIO, str(portfolio_id), body, centre_id=str(state.centre_id))
            if not derivers:
                self.recent_portfolios.keep(portfolio_id, body, state)
        deferred: dict[UUID, None] = {}
        if derivers:
            deferred = self._derive(derivers, stored, centres, pending or {}, upcoming)
        self._keep_unchanged()
        return deferred

    def _keep_unchanged(self) -> None:
        """States loaded but not changed still match their stored bytes: keep them decoded."""
        for centre_id, state in self.centres.items():
            if centre_id not in self.changed_centres and centre_id in self.loaded:
                self.recent_centres.keep(centre_id, self.loaded[centre_id], state)
        for portfolio_id, portfolio in self.portfolios.items():
            if portfolio_id not in self.changed_portfolios and portfolio_id in self.loaded:
                self.recent_portfolios.keep(portfolio_id, self.loaded[portfolio_id], portfolio)

    def _derive(
        self,
        derivers: Sequence[Deriver],
        stored: dict[UUID, bytes],
        centres: dict[UUID, CentreState],
        pending: dict[UUID, None],
        upcoming: frozenset[UUID],
    ) -> dict[UUID, None]:
        """Derivers see states whose sets are rebuilt in sorted order, as decoding the stored
        bytes would give them, so their output can't depend on a set's insertion history.

        Returns the `upcoming` portfolios left underived (see `upcoming`).
        """
        targets = dict.fromkeys(stored)
        everything: set[UUID] = set(pending)  # portfolios every deriver must run for
        targets.update(pending)
        for centre_id in self.rederive:
            listed = self._centre_portfolios(centre_id)
            targets.update(dict.fromkeys(listed))
            everything.update(listed)
        deferred: dict[UUID, None] = {}
        for portfolio_id in targets:
            if portfolio_id in upcoming and self._underived(derivers, portfolio_id):
                deferred[portfolio_id] = None
                if portfolio_id in stored:
                    state = normalise_sets(self.portfolios[portfolio_id])
                    self.recent_portfolios.keep(portfolio_id, stored[portfolio_id], state)
                continue
            if portfolio_id in stored:
                portfolio = normalise_sets(self.portfolios[portfolio_id])
                self.recent_portfolios.keep(portfolio_id, stored[portfolio_id], portfolio)
            elif (unchanged := self._stored_portfolio(portfolio_id)) is not None:
                portfolio = self.portfolios[portfolio_id] = unchanged  # as if just decoded
            else:
                continue  # listed for its centre but not stored: nothing to derive from
            centre = centres.get(portfolio.centre_id)
            if centre is None:
                centre = centres[portfolio.centre_id] = self.centre(portfolio.centre_id)
            events = () if portfolio_id in everything else self.events.get(portfolio_id, ())
            if portfolio_id in self.reused_evidence:
                events = ()  # an item or decision replaced: derive everything from scratch
            for derive in derivers:
                if events and self._unchanged(derive, portfolio, events):
                    continue
                if (derived := self._derived(derive, portfolio, centre, events)) is not None:
                    kind, doc = derived
                    self.docs.put(kind, str(portfolio_id), doc, centre_id=str(centre.centre_id))
        return deferred

    def _derived(
        self,
        derive: Deriver,
        portfolio: PortfolioState,
        centre: CentreState,
        events: Sequence[e.PortfolioEvent],
    ) -> tuple[str, bytes] | None:
        """What `derive` derives, refreshed from its stored document where it can be
        (`Selective.refresh`); None also where that is the document already stored."""
        if not events or not isinstance(derive, Selective) or derive.refresh is None:
            return derive(portfolio, centre)
        stored = self.docs.get(derive.kind, str(portfolio.portfolio_id))
        if stored is None:
            return derive(portfolio, centre)
        derived = derive.refresh(portfolio, centre, events, stored)
        return None if derived is not None and derived[1] == stored else derived

    def _underived(self, derivers: Sequence[Deriver], portfolio_id: UUID) -> bool:
        """No derived document of the portfolio is stored (each deriver says its kind)."""
        key = str(portfolio_id)
        return all(
            isinstance(d, Selective) and self.docs.get(d.kind, key) is None for d in derivers
        )

    def _unchanged(
        self, derive: Deriver, portfolio: PortfolioState, events: Sequence[e.PortfolioEvent]
    ) -> bool:
        """Whether the batch's events leave what `derive` stored as it is (see Selective)."""
        if not isinstance(derive, Selective) or portfolio.portfolio_id in self.reused_evidence:
            return False
        if not all(derive.ignores(event, portfolio) for event in events):
            return False
        return self.docs.get(derive.kind, str(portfolio.portfolio_id)) is not None

    def _centre_portfolios(self, centre_id: UUID) -> list[UUID]:
        body = self.docs.get(CENTRE_PORTFOLIOS, str(centre_id))
        return [] if body is None else decode_ids(body)

    def _stored_centre(self, centre_id: UUID) -> CentreState:
        body = self.docs.get(CENTRE, str(centre_id))
        if body is None:
            msg = f"no centre {centre_id} in the view: the log names it before registering it"
            raise LookupError(msg)
        self.loaded[centre_id] = body
        return self.recent_centres.take(centre_id, body) or decode_centre(body).state()

    def _stored_portfolio(self, portfolio_id: UUID) -> PortfolioState | None:
        body = self.docs.get(PORTFOLIO, str(portfolio_id))
        if body is None:
            return None
        self.loaded[portfolio_id] = body
        return self.recent_portfolios.take(portfolio_id, body) or decode_portfolio(body)
