"""The state views: every centre and portfolio folded into stored documents.

Read models answer from these documents instead of replaying streams. The fold is the
domain's own (`CentreState.apply`, `PortfolioState.apply`), so a view can never disagree
with the rules about what happened. States touched in a batch stay decoded in memory and
are encoded once, in `flush`, however many of the batch's events they saw.

Erasure: for each event about a learner, the trail row that event will show once the
learner is erased (`domain.personal.redacted`, their name read as ERASED) is kept beside
the row where the two differ, with an index per learner. `SubjectErased` swaps those rows
in and deletes the rest, so the live view holds no personal text of theirs and equals a
rebuild from the shredded log, which derives the redacted rows directly.

Derived documents (coverage, sufficiency, decision chains) are computed in `flush` for
every touched portfolio from the stored (canonical) form of its state, and per event for
the audit trail, so what they hold never depends on where a batch boundary fell: a rebuild
from zero and the live view agree byte for byte.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from functools import cache
from types import UnionType
from typing import (
    Any,
    ClassVar,
    Generic,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)
from uuid import UUID

import msgspec

from domain import events as e
from domain.centre import CentreState, Hold, RweApproval, StaffMember
from domain.personal import redacted
from domain.portfolio import PortfolioState
from domain.spec import SpecCatalogue, UnitSpec
from projections import audit
from projections.base import Documents
from projections.judgement import coverage_of, sufficiency_of

CENTRE = "centre"
PORTFOLIO = "portfolio"
PORTFOLIO_CENTRE = "portfolio_centre"
CENTRE_PORTFOLIOS = "centre_portfolios"
DECISION = "decision"  # a decision's portfolio and centre, for addressing it by its id alone
TRAIL = "trail"
CHAINS = "chains"
COVERAGE = "coverage"
SUFFICIENCY = "sufficiency"
TRAIL_ERASABLE = "trail_erasable"  # a trail row as it will read once its learner is erased
ERASABLE_INDEX = "erasable_index"  # a learner's positions with such a row

Deriver = Callable[[PortfolioState, CentreState], tuple[str, bytes] | None]
"""(portfolio, its centre) -> (kind, body) stored under the portfolio's id, or None."""
EventDeriver = Callable[[int, e.Event, CentreState], tuple[str, bytes] | None]
"""(position, event, the event's centre as of that event) -> (kind, body) keyed by position."""


def position_key(position: int) -> str:
    """A document key that sorts in log order."""
    return f"{position:020d}"


class DecisionPlace(msgspec.Struct, frozen=True, kw_only=True):
    """Where a decision lives (kind "decision", keyed by its id)."""

    portfolio_id: UUID
    centre_id: UUID


# ---- centre snapshot -------------------------------------------------------------------


class StaffSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    staff_id: UUID
    role: e.Role
    name: str
    qualifications: tuple[tuple[date, e.Qualification], ...]


class CentreSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A centre as stored: `CentreState` with staff as a list, since JSON keys can't be tuples."""

    centre_id: UUID
    name: str
    version: int
    staff: tuple[StaffSnapshot, ...] = ()  # in registration order
    learners: dict[UUID, str] = {}
    witnesses: dict[UUID, str] = {}
    evs: dict[UUID, str] = {}
    observed_criteria: dict[str, tuple[str, ...]] = {}
    sufficiency_policy: e.SufficiencyPolicySet | None = None
    sampling_plan: e.SamplingPlanSet | None = None
    retention_policy: e.RetentionPolicySet | None = None
    holds: dict[UUID, Hold] = {}
    erased: dict[UUID, date] = {}
    sufficiency_policies: dict[int, e.SufficiencyPolicySet] = {}
    rwe_approvals: dict[UUID, RweApproval] = {}

    @classmethod
    def of(cls, centre: CentreState) -> CentreSnapshot:
        return cls(
            centre_id=centre.centre_id,
            name=centre.name,
            version=centre.version,
            staff=tuple(
                StaffSnapshot(
                    staff_id=m.staff_id,
                    role=m.role,
                    name=m.name,
                    qualifications=tuple(m.qualifications),
                )
                for m in centre.staff.values()
            ),
            learners=dict(centre.learners),
            witnesses=dict(centre.witnesses),
            evs=dict(centre.evs),
            observed_criteria=dict(centre.observed_criteria),
            sufficiency_policy=centre.sufficiency_policy,
            sampling_plan=centre.sampling_plan,
            retention_policy=centre.retention_policy,
            holds=dict(centre.holds),
            erased=dict(centre.erased),
            sufficiency_policies=dict(centre.sufficiency_policies),
            rwe_approvals=dict(centre.rwe_approvals),
        )

    def state(self) -> CentreState:
        """The domain state again, with its lookups (`staff_with_role`, `qualification_on`)."""
        return CentreState(
            centre_id=self.centre_id,
            name=self.name,
            version=self.version,
            staff={
                (m.staff_id, m.role): StaffMember(m.staff_id, m.name, m.role, [*m.qualifications])
                for m in self.staff
            },
            learners=dict(self.learners),
            witnesses=dict(self.witnesses),
            evs=dict(self.evs),
            observed_criteria=dict(self.observed_criteria),
            sufficiency_policy=self.sufficiency_policy,
            sampling_plan=self.sampling_plan,
            retention_policy=self.retention_policy,
            holds=dict(self.holds),
            erased=dict(self.erased),
            sufficiency_policies=dict(self.sufficiency_policies),
            rwe_approvals=dict(self.rwe_approvals),
        )


# ---- canonical JSON --------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_decode_portfolio = msgspec.json.Decoder(PortfolioState).decode
_decode_centre = msgspec.json.Decoder(CentreSnapshot).decode
_decode_ids = msgspec.json.Decoder(list[UUID]).decode
_decode_positions = msgspec.json.Decoder(list[int]).decode


def encode_doc(value: object) -> bytes:
    """JSON with every set sorted, so equal states are equal bytes in any process.

    msgspec writes a set in iteration order, which depends on its insertion history and
    on the per-process string hash seed; its `order="deterministic"` would also sort
    the UUID-keyed dicts, which it refuses. Dicts keep insertion (= log) order.
    """
    tp: Any = type(value)
    canonical = _set_plan(tp, on_objects=False)
    return _encoder.encode(value if canonical is None else canonical(msgspec.to_builtins(value)))


def normalise_sets(value: T) -> T:
    """`value` with its sets refilled in sorted order, in place.

    Two equal sets iterate alike only if they were filled alike; afterwards iteration
    depends on contents alone (in this process), as after decoding the stored JSON, at a
    fraction of the cost of decoding.
    """
    tp: Any = type(value)
    normalise = _set_plan(tp, on_objects=True)
    return value if normalise is None else cast(T, normalise(value))


def decode_portfolio(body: bytes) -> PortfolioState:
    return _decode_portfolio(body)


def decode_centre(body: bytes) -> CentreSnapshot:
    return _decode_centre(body)


Canonical = Callable[[Any], Any]
T = TypeVar("T")


@cache
def _set_plan(tp: Any, *, on_objects: bool) -> Canonical | None:
    """For a type, a function canonicalising the sets in a value of it; None if it has none.

    On objects, sets are refilled in sorted order; on their `msgspec.to_builtins` form
    (dataclasses as dicts), the arrays that were sets are sorted. Sets are expected in
    dataclasses (Structs hold tuples); containers are changed in place.
    """
    origin, args = get_origin(tp), get_args(tp)
    if tp in (set, frozenset) or origin in (set, frozenset):
        return _refilled if on_objects else sorted
    if origin in (Union, UnionType):
        inner = [f for a in args if (f := _set_plan(a, on_objects=on_objects)) is not None]
        if len(inner) > 1:
            msg = f"cannot canonicalise a union of set-holding types: {tp}"
            raise TypeError(msg)
        return _optional(inner[0]) if inner else None
    if origin is dict:
        values = _set_plan(args[1], on_objects=on_objects)
        return None if values is None else _each_value(values)
    if origin in (list, tuple) and args and (len(args) == 1 or args[1] is Ellipsis):
        items = _set_plan(args[0], on_objects=on_objects)
        return None if items is None else lambda v: type(v)(map(items, v))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        fields = {
            f.name: plan
            for f in dataclasses.fields(tp)
            if (plan := _set_plan(hints[f.name], on_objects=on_objects)) is not None
        }
        return _each_field(fields, on_objects=on_objects) if fields else None
    return None


def _refilled(items: set[Any] | frozenset[Any]) -> set[Any] | frozenset[Any]:
    return items if len(items) < 2 else type(items)(sorted(items))


def _optional(inner: Canonical) -> Canonical:
    return lambda v: None if v is None else inner(v)


def _each_value(values: Canonical) -> Canonical:
    def canonical(mapping: dict[Any, Any]) -> dict[Any, Any]:
        for key, value in mapping.items():
            mapping[key] = values(value)
        return mapping

    return canonical


def _each_field(fields: Mapping[str, Canonical], *, on_objects: bool) -> Canonical:
    def canonical(value: Any) -> Any:
        for name, plan in fields.items():
            if on_objects:
                object.__setattr__(value, name, plan(getattr(value, name)))
            else:
                value[name] = plan(value[name])
        return value

    return canonical


# ---- derivers -------------------------------------------------------------------------


class TrailDeriver:
    """Each event as an audit-trail row (`projections.audit.trail_entry`), named as of then.

    People's names are cached per centre version: rebuilding the name map for every event
    would make a rebuild quadratic in a centre's size. The cache holds the most recently
    used centres only, so memory does not grow with the number of centres in the log.
    """

    CENTRES_CACHED = 1_000

    def __init__(self) -> None:
        self.people_at: OrderedDict[UUID, tuple[int, Mapping[UUID, str]]] = OrderedDict()

    def __call__(self, position: int, event: e.Event, centre: CentreState) -> tuple[str, bytes]:
        return TRAIL, self._row(position, event, centre, self._people(centre))

    def erased(self, position: int, event: e.Event, centre: CentreState, learner: UUID) -> bytes:
        """The row as it reads once `learner` is erased: their fields and name ERASED."""
        people = _Erased(self._people(centre), learner)
        return self._row(position, redacted(event), centre, people)

    def _people(self, centre: CentreState) -> Mapping[UUID, str]:
        cached = self.people_at.get(centre.centre_id)
        if cached is None or cached[0] != centre.version:
            cached = self.people_at[centre.centre_id] = (centre.version, audit.names(centre))
            if len(self.people_at) > self.CENTRES_CACHED:
                self.people_at.popitem(last=False)
        self.people_at.move_to_end(centre.centre_id)
        return cached[1]

    @staticmethod
    def _row(
        position: int, event: e.Event, centre: CentreState, people: Mapping[UUID, str]
    ) -> bytes:
        actor = audit.name_of(people, event.actor_id, event.actor_role)
        entry = audit.trail_entry(position, event, actor, centre.centre_id, names=people)
        return encode_doc(entry)


def trail_deriver() -> EventDeriver:
    return TrailDeriver()


class _Erased(Mapping[UUID, str]):
    """People's names with one person's read as ERASED."""

    def __init__(self, people: Mapping[UUID, str], erased: UUID) -> None:
        self.people = people
        self.erased = erased

    def __getitem__(self, key: UUID) -> str:
        return e.ERASED if key == self.erased and key in self.people else self.people[key]

    def __iter__(self) -> Iterator[UUID]:
        return iter(self.people)

    def __len__(self) -> int:
        return len(self.people)


def chains_deriver(portfolio: PortfolioState, centre: CentreState) -> tuple[str, bytes]:
    """The portfolio's decisions with their signature chains and sampling context."""
    return CHAINS, encode_doc(audit.chains_with_context(portfolio, audit.names(centre)))


def standard_derivers(specs: SpecCatalogue) -> list[Deriver]:
    """The derived documents every deployment stores for each portfolio."""
    pinned: dict[tuple[str, str], UnitSpec | None] = {}

    def spec_of(portfolio: PortfolioState) -> UnitSpec | None:
        """The spec version the enrolment pinned (by_hash re-hashes specs: remember it)."""
        key = (portfolio.unit_code, portfolio.spec_hash)
        if key not in pinned:
            pinned[key] = specs.by_hash(*key)
        return pinned[key]

    def coverage_doc(portfolio: PortfolioState, centre: CentreState) -> tuple[str, bytes] | None:
        if (spec := spec_of(portfolio)) is None:
            return None  # the pinned version left the catalogue: no report rather than a wrong one
        return COVERAGE, encode_doc(coverage_of(portfolio, centre, spec))

    def sufficiency_doc(portfolio: PortfolioState, centre: CentreState) -> tuple[str, bytes] | None:
        if (spec := spec_of(portfolio)) is None:
            return None
        return SUFFICIENCY, encode_doc(sufficiency_of(portfolio, centre, spec))

    return [coverage_doc, sufficiency_doc, chains_deriver]


# ---- the projection --------------------------------------------------------------------


class PortfolioStateProjection:
    """Stores kind "centre" (CentreSnapshot), "portfolio" (PortfolioState), "portfolio_centre"
    (the portfolio's centre id), "centre_portfolios" (a centre's portfolio ids, so a centre
    change can re-derive them), "decision" (DecisionPlace), whatever the derivers return
    and, with the trail deriver, the rows to show after an erasure ("trail_erasable",
    "erasable_index").
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
        """Without derivers given, stores the standard derived documents for `specs`.

        `keep_decoded` states stay decoded between batches (see `_Recent`).
        """
        self.specs = specs
        self.derivers = tuple(standard_derivers(specs) if derivers is None else derivers)
        self.event_derivers = tuple([trail_deriver()] if event_derivers is None else event_derivers)
        self.trail = next((d for d in self.event_derivers if isinstance(d, TrailDeriver)), None)
        self._recent_centres = _Recent[CentreState](keep_decoded)
        self._recent_portfolios = _Recent[PortfolioState](keep_decoded)
        self._batch: _Batch | None = None

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
                    _encoder.encode(where),
                    centre_id=str(where.centre_id),
                )
            if not self.event_derivers:
                return
            centre = batch.centre(portfolio.centre_id)
            learner = portfolio.learner_id
        else:
            return
        key, centre_id = position_key(position), str(centre.centre_id)
        for derive in self.event_derivers:
            if (derived := derive(position, event, centre)) is not None:
                kind, body = derived
                docs.put(kind, key, body, centre_id=centre_id)
        if self.trail is not None and learner is not None and learner not in centre.erased:
            erased = self.trail.erased(position, event, centre, learner)
            if erased != docs.get(TRAIL, key):
                docs.put(TRAIL_ERASABLE, key, erased, centre_id=centre_id)
                batch.erasable.setdefault(learner, []).append(position)
                batch.learner_centres[learner] = centre_id
        if isinstance(event, e.SubjectErased):
            batch.purge(event.subject_id, centre_id)

    def flush(self, docs: Documents) -> None:
        batch, self._batch = self._batch_for(docs), None
        batch.write(self.derivers)

    def _batch_for(self, docs: Documents) -> _Batch:
        """The in-memory states belong to one unit of work; a new one (after a failed batch,
        or a rebuild) starts from what is stored. Holding `docs` keeps the identity check sound.
        """
        if self._batch is None or self._batch.docs is not docs:
            self._batch = _Batch(docs, self._recent_centres, self._recent_portfolios)
        return self._batch


class _Recent(Generic[T]):
    """States as decoded from the bytes last written for them, to skip decoding them again.

    An entry is used only if the stored bytes are still exactly those bytes, so a batch
    that failed, a rival runner's write or a rebuild can never leak a stale state in; and
    a batch takes its entry out, so a state it mutates and then abandons is never reused.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[UUID, tuple[bytes, T]] = OrderedDict()

    def take(self, key: UUID, body: bytes) -> T | None:
        entry = self.entries.pop(key, None)
        return entry[1] if entry is not None and entry[0] == body else None

    def keep(self, key: UUID, body: bytes, state: T) -> None:
        self.entries[key] = (body, state)
        self.entries.move_to_end(key)
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


class _Batch:
    """States loaded or changed during one batch, and what flush must write."""

    def __init__(
        self,
        docs: Documents,
        recent_centres: _Recent[CentreState],
        recent_portfolios: _Recent[PortfolioState],
    ) -> None:
        self.docs = docs
        self.recent_centres = recent_centres
        self.recent_portfolios = recent_portfolios
        self.centres: dict[UUID, CentreState] = {}
        self.portfolios: dict[UUID, PortfolioState] = {}
        # dicts as ordered sets, so flush writes in a repeatable order
        self.changed_centres: dict[UUID, None] = {}
        self.changed_portfolios: dict[UUID, None] = {}
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
            state.apply(event)
        self.changed_portfolios[event.portfolio_id] = None
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
        return [] if body is None else _decode_positions(body)

    def write(self, derivers: Sequence[Deriver]) -> None:
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
            for portfolio_id in new:
                put(PORTFOLIO_CENTRE, str(portfolio_id), encode_doc(str(centre_id)),
                    centre_id=str(centre_id))  # fmt: skip
        stored: dict[UUID, bytes] = {}
        for portfolio_id in self.changed_portfolios:
            state = self.portfolios[portfolio_id]
            stored[portfolio_id] = body = encode_doc(state)
            put(PORTFOLIO, str(portfolio_id), body, centre_id=str(state.centre_id))
            if not derivers:
                self.recent_portfolios.keep(portfolio_id, body, state)
        if derivers:
            self._derive(derivers, stored, centres)
        self._keep_unchanged()

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
    ) -> None:
        """Derivers see states whose sets are rebuilt in sorted order, as decoding the stored
        bytes would give them, so their output can't depend on a set's insertion history.
        """
        targets = dict.fromkeys(stored)
        for centre_id in self.rederive:
            targets.update(dict.fromkeys(self._centre_portfolios(centre_id)))
        for portfolio_id in targets:
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
            for derive in derivers:
                if (derived := derive(portfolio, centre)) is not None:
                    kind, doc = derived
                    self.docs.put(kind, str(portfolio_id), doc, centre_id=str(centre.centre_id))

    def _centre_portfolios(self, centre_id: UUID) -> list[UUID]:
        body = self.docs.get(CENTRE_PORTFOLIOS, str(centre_id))
        return [] if body is None else _decode_ids(body)

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
