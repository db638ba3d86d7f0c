"""Derivers: the documents computed from the folded states, beside the states themselves.

A `Deriver` is called in `flush` for every touched portfolio with the stored (canonical)
form of its state and its centre; an `EventDeriver` is called per event with the event's
centre as of that event (the audit trail). Neither depends on where a batch boundary
fell, so a rebuild from zero and the live view agree byte for byte.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from uuid import UUID

from domain import events as e
from domain.centre import CentreState
from domain.personal import redacted
from domain.portfolio import PortfolioState
from domain.spec import SpecCatalogue, UnitSpec
from projections import audit
from projections.documents import CHAINS, COVERAGE, EV_SAMPLE, SUFFICIENCY, TRAIL, encode_doc
from projections.judgement import coverage_of, sufficiency_of

Deriver = Callable[[PortfolioState, CentreState], tuple[str, bytes] | None]
"""(portfolio, its centre) -> (kind, body) stored under the portfolio's id, or None."""
EventDeriver = Callable[[int, e.Event, CentreState], tuple[str, bytes] | None]
"""(position, event, the event's centre as of that event) -> (kind, body) keyed by position."""


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


def ev_sample_index(position: int, event: e.Event, centre: CentreState) -> tuple[str, bytes] | None:
    """Where each EV sample is: its portfolio, keyed by the event's position.

    The audit view reads the sample events themselves from the log at these positions, so
    their feedback and actions are never copied into the view and read as erased the
    moment the learner's key is destroyed, exactly as a fold of the log would.
    """
    if not isinstance(event, e.EvSampleRecorded):
        return None
    return EV_SAMPLE, encode_doc(event.portfolio_id)


def standard_event_derivers() -> list[EventDeriver]:
    """The documents every deployment stores per event: the trail and the EV sample index."""
    return [trail_deriver(), ev_sample_index]


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
