"""Derivers: the documents computed from the folded states, beside the states themselves.

A `Deriver` is called in `flush` for every touched portfolio with the stored (canonical)
form of its state and its centre; an `EventDeriver` is called per event with the event's
centre as of that event (the audit trail). Neither depends on where a batch boundary
fell, so a rebuild from zero and the live view agree byte for byte.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

import msgspec

from domain import events as e
from domain.centre import CentreState
from domain.personal import redacted
from domain.portfolio import PortfolioState
from domain.spec import SpecCatalogue, UnitSpec
from projections import audit
from projections.coverage import CoverageReport, rows_changed
from projections.documents import (
    CHAINS,
    COVERAGE,
    EV_SAMPLE,
    SUFFICIENCY,
    TRAIL,
    decode_coverage,
    decode_sufficiency,
    encode_doc,
)
from projections.judgement import coverage_of, sufficiency_of
from projections.recent import Recent
from projections.sufficiency import late_refreshed

Deriver = Callable[[PortfolioState, CentreState], tuple[str, bytes] | None]
"""(portfolio, its centre) -> (kind, body) stored under the portfolio's id, or None."""
Refresh = Callable[
    [PortfolioState, CentreState, Sequence[e.PortfolioEvent], bytes], tuple[str, bytes] | None
]
"""A `Deriver` given the portfolio's events in the batch and the document stored before it."""
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

    def rows(
        self, position: int, event: e.Event, centre: CentreState, learner: UUID | None
    ) -> tuple[bytes, bytes | None]:
        """The event's row and, if it is about `learner`, the row as it reads once they are
        erased (their fields and name ERASED), or None where that is the same row.

        Erasure changes only personal fields, and of a row's fields only the actor's name
        and the summary read any (`ROW_FIELDS` are the event fields the rest are copied
        from): the erased row is the row with those two recomputed, not a second row.
        """
        people = self._people(centre)
        entry = self._entry(position, event, centre, people)
        row = encode_doc(entry)
        if learner is None:
            return row, None
        erased = _Erased(people, learner)
        actor = audit.name_of(erased, event.actor_id, event.actor_role)
        summary = audit.summary(redacted(event), erased)
        if actor == entry.actor_name and summary == entry.summary:
            return row, None
        return row, encode_doc(msgspec.structs.replace(entry, actor_name=actor, summary=summary))

    def _people(self, centre: CentreState) -> Mapping[UUID, str]:
        cached = self.people_at.get(centre.centre_id)
        if cached is None or cached[0] != centre.version:
            cached = self.people_at[centre.centre_id] = (centre.version, audit.names(centre))
            if len(self.people_at) > self.CENTRES_CACHED:
                self.people_at.popitem(last=False)
        self.people_at.move_to_end(centre.centre_id)
        return cached[1]

    @classmethod
    def _row(
        cls, position: int, event: e.Event, centre: CentreState, people: Mapping[UUID, str]
    ) -> bytes:
        return encode_doc(cls._entry(position, event, centre, people))

    @staticmethod
    def _entry(
        position: int, event: e.Event, centre: CentreState, people: Mapping[UUID, str]
    ) -> audit.TrailEntry:
        actor = audit.name_of(people, event.actor_id, event.actor_role)
        return audit.trail_entry(position, event, actor, centre.centre_id, names=people)


#: The event fields a trail row copies (besides its actor's name and summary): none may be
#: personal, or an erased learner's row would keep it (`TrailDeriver.rows`).
ROW_FIELDS = frozenset({
    "event_id", "centre_id", "portfolio_id", "actor_id", "actor_role", "recorded_at",
    "effective_on", "decision_id", "decision_ids", "evidence_id", "evidence_ids", "sample_id",
})  # fmt: skip


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


@dataclass(frozen=True)
class Selective:
    """A deriver that knows which portfolio events cannot change what it derives.

    Flush skips it for a portfolio whose events in the batch are all such events (and
    whose document of `kind` is stored): the stored document already equals what it would
    derive. A centre change that re-derives its portfolios never skips. `ignores` must
    only say True where the deriver reads nothing the event changes: a wrong True would
    leave a stale document, which the property test comparing the live view (small
    batches) with a rebuild from zero (one batch: every deriver runs) is there to catch.
    """

    kind: str
    derive: Deriver
    ignores: Callable[[e.PortfolioEvent, PortfolioState], bool]
    #: (portfolio, centre, the portfolio's events in the batch, its stored document) ->
    #: what `derive` would return, worked out from the stored document where the events
    #: allow: live, each batch is one event, and most of a document is what it was.
    refresh: Refresh | None = None

    def __call__(self, portfolio: PortfolioState, centre: CentreState) -> tuple[str, bytes] | None:
        return self.derive(portfolio, centre)


#: What neither coverage nor the decision chains read: sign-off, certification,
#: withdrawal, appeals (and, for coverage, that the assessor responded to a sample).
_CLOSING = (e.UnitCompletionSignedOff, e.UnitCertified, e.LearnerWithdrawn, e.AppealOpened)
#: Events that add an evidence item (the view never skips a derivation for a batch in
#: which one of them reused an id already in the portfolio: it replaced that item).
EVIDENCE_ADDED = (
    e.EvidenceSubmitted,
    e.ObservationRecorded,
    e.WitnessTestimonyRecorded,
    e.QuestioningRecorded,
)
#: Evidence events: they change a decision chain only through evidence it cites.
_EVIDENCE = (*EVIDENCE_ADDED, e.EvidenceMapped, e.EvidenceWithdrawn)


def coverage_ignores(event: e.PortfolioEvent, portfolio: PortfolioState) -> bool:
    """Coverage reads the evidence, the decisions and their samples (not `responded`).

    Of the evidence, only items mapped to an id or tagged with one show in a row (a
    decision's cited item counts only where it is mapped): new evidence submitted with no
    requirement tag changes no row until it is mapped.
    """
    if isinstance(event, e.EvidenceSubmitted):
        return not event.requirement_tags
    return isinstance(event, (*_CLOSING, e.SampleResponded))


def sufficiency_ignores(event: e.PortfolioEvent, portfolio: PortfolioState) -> bool:
    """Sufficiency also reads the policy version a certification pinned (and an appeal
    unpinned), so only sign-off, withdrawal and responses leave it as it was."""
    return isinstance(event, (e.UnitCompletionSignedOff, e.LearnerWithdrawn, e.SampleResponded))


def chains_ignores(event: e.PortfolioEvent, portfolio: PortfolioState) -> bool:
    """Chains read the decisions, their samples and the evidence they cite."""
    return isinstance(event, _CLOSING) or _uncited(event, portfolio)


def _uncited(event: e.PortfolioEvent, portfolio: PortfolioState) -> bool:
    """An evidence event for an item no decision of the portfolio cites."""
    if isinstance(event, _EVIDENCE):
        cited = event.evidence_id
        return not any(cited in d.evidence_ids for d in portfolio.decisions.values())
    return False


def _chains(portfolio: PortfolioState, centre: CentreState) -> tuple[str, bytes]:
    """The portfolio's decisions with their signature chains and sampling context."""
    return CHAINS, encode_doc(audit.chains_with_context(portfolio, audit.names(centre)))


chains_deriver = Selective(CHAINS, _chains, chains_ignores)


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

    reports = Recent[CoverageReport](max_bytes=1_000_000)  # a few MB decoded, not one a portfolio

    def coverage_refresh(
        portfolio: PortfolioState,
        centre: CentreState,
        events: Sequence[e.PortfolioEvent],
        stored: bytes,
    ) -> tuple[str, bytes] | None:
        """Only the rows of the ids the events touch are judged again (`rows_changed`)."""
        if (spec := spec_of(portfolio)) is None:
            return None
        changed: set[str] = set()
        for event in events:
            if (rows := rows_changed(event, portfolio)) is None:
                return coverage_doc(portfolio, centre)
            changed.update(rows)
        previous = reports.get(portfolio.portfolio_id, stored) or decode_coverage(stored)
        report = coverage_of(portfolio, centre, spec, previous=previous, changed=changed)
        body = encode_doc(report)
        reports.keep(portfolio.portfolio_id, body, report)
        return COVERAGE, body

    def sufficiency_doc(portfolio: PortfolioState, centre: CentreState) -> tuple[str, bytes] | None:
        if (spec := spec_of(portfolio)) is None:
            return None
        return SUFFICIENCY, encode_doc(sufficiency_of(portfolio, centre, spec))

    def sufficiency_refresh(
        portfolio: PortfolioState,
        centre: CentreState,
        events: Sequence[e.PortfolioEvent],
        stored: bytes,
    ) -> tuple[str, bytes] | None:
        """After evidence no decision cites, only the late evidence is read again."""
        if spec_of(portfolio) is None:
            return None
        if not all(sufficiency_ignores(ev, portfolio) or _uncited(ev, portfolio) for ev in events):
            return sufficiency_doc(portfolio, centre)
        return SUFFICIENCY, encode_doc(late_refreshed(decode_sufficiency(stored), portfolio))

    return [
        Selective(COVERAGE, coverage_doc, coverage_ignores, coverage_refresh),
        Selective(SUFFICIENCY, sufficiency_doc, sufficiency_ignores, sufficiency_refresh),
        chains_deriver,
    ]
