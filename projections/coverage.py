"""Coverage: per criterion, the evidence and decision behind it, and what is still missing.

A pure read of a portfolio against its spec, with the unit texts' rules (`domain.support`),
so an assessor sees the gaps they would write themselves. Every id of the unit — criterion,
knowledge statement, range item, evidence requirement — is judged the same way:

- its evidence is the live items mapped to it (or, for a requirement, tagged with it) that
  can show it: from a permitted environment, by a method that shows it (knowledge only by
  questioning, discussion or written work unless the statement may be inferred);
- a must-observe criterion (named by the spec, or circled by the centre) also needs the
  assessor's own observation;
- it counts once the *governing* decision on it — the latest that stands (not revoked;
  countersigned if a trainee made it) — says met, cites live evidence that can show it (an
  observation, where it must be observed), and has no open referral. Withdrawing evidence
  never revives an earlier decision: the governing one simply stops standing for what that
  evidence supported, and the gap says so;
- a criterion observed "unless observation is not possible" decided on other methods needs
  the decision to record why;
- range: `min_observed` items observed, by the assessor, in a permitted environment.
A unit is complete exactly when there are no gaps.
"""

from __future__ import annotations

import threading
from bisect import insort
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from datetime import date
from enum import StrEnum
from operator import attrgetter
from uuid import UUID

import msgspec

from domain.centre import RweApproval
from domain.events import (
    AppealOpened,
    DecisionCountersigned,
    DecisionRecorded,
    DecisionRevoked,
    EvidenceMapped,
    EvidenceSubmitted,
    EvidenceWithdrawn,
    EvSampleRecorded,
    IqaSampleCountersigned,
    IqaSampleRecorded,
    LearnerWithdrawn,
    ObservationRecorded,
    Outcome,
    PortfolioEvent,
    QuestioningRecorded,
    SampleResponded,
    SampleResponseAccepted,
    UnitCertified,
    UnitCompletionSignedOff,
    WitnessTestimonyRecorded,
)
from domain.portfolio import Decision, EvidenceItem, PortfolioState
from domain.spec import CriterionKind, Method, ObservationRule, RangeRule, UnitSpec
from domain.support import Support, label


class Status(StrEnum):
    """How far a criterion has got, from no evidence to sampled by the EV."""

    NOT_EVIDENCED = "not_evidenced"
    EVIDENCED = "evidenced"
    MET = "met"
    COUNTERSIGNED = "countersigned"
    IQA_SAMPLED = "iqa_sampled"
    EV_SAMPLED = "ev_sampled"


class Area(StrEnum):
    PERFORMANCE = "performance"
    KNOWLEDGE = "knowledge"
    RANGE = "range"
    REQUIREMENT = "requirement"


class EvidenceRef(msgspec.Struct, frozen=True, kw_only=True):
    evidence_id: UUID
    method: Method
    effective_on: date
    counts: bool = True  # False: mapped, but its method or environment cannot show the id


class CriterionCoverage(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    area: Area
    status: Status
    complete: bool
    evidence: tuple[EvidenceRef, ...] = ()
    decision_id: UUID | None = None  # the standing decision that meets it
    must_observe: bool = False
    observed: bool = False  # the assessor's own observation is mapped to it
    inferred: bool = False  # knowledge shown only by observed performance or work products
    inferable: bool | None = None  # knowledge: may it be inferred at all (the spec's reading)
    gaps: tuple[str, ...] = ()  # why it is not complete, in the assessor's words


class RangeCoverage(msgspec.Struct, frozen=True, kw_only=True):
    min_observed: int
    observed: tuple[str, ...]
    rule_met: bool
    summary: str  # e.g. "2 of 4 observed (2 must be)"


class CoverageReport(msgspec.Struct, frozen=True, kw_only=True):
    portfolio_id: UUID
    unit_code: str
    spec_version: int
    complete: bool
    criteria: tuple[CriterionCoverage, ...]
    range: RangeCoverage | None = None
    gaps: tuple[str, ...] = ()
    #: Set when the portfolio was enrolled on a version this one corrects: which, and why.
    spec_note: str = ""


def coverage(
    portfolio: PortfolioState,
    spec: UnitSpec,
    centre_observed: tuple[str, ...] = (),
    approvals: dict[UUID, RweApproval] | None = None,
    *,
    memo: CoverageMemo | None = None,
    previous: CoverageReport | None = None,
    changed: AbstractSet[str] = frozenset(),
) -> CoverageReport:
    """Gap analysis of `portfolio` against `spec`; `centre_observed` is the centre's circle
    and `approvals` its approved realistic working environments. `memo`: what was derived
    from the same items for earlier reports (only for items that never change).

    `previous`: the report of an earlier state of this portfolio, judged by the same spec
    and centre, whose rows can differ from this state's only for the ids in `changed`
    (see `rows_changed`): the other rows are taken from it as they are. A row reads only
    the items mapped to or tagged with its id and the decisions naming it, so this is the
    report `coverage` would derive from scratch, at the cost of the changed rows.
    """
    support = Support(spec, centre_observed, approvals)
    rows_of = _rows(spec)
    reused: Sequence[CriterionCoverage | None] = [None] * len(rows_of)
    only: AbstractSet[str] | None = None
    if (
        previous is not None
        and (previous.unit_code, previous.spec_version) == (spec.code, spec.version)
        and [r.id for r in previous.criteria] == [r[0] for r in rows_of]
    ):
        reused = [None if r.id in changed else r for r in previous.criteria]
        only = {*changed, *(i.id for i in spec.range.items)} if spec.range else changed
    judge = _Judge(portfolio, support, memo or _Fresh(), only=only)
    gaps: list[str] = []
    if spec.observation_rule is ObservationRule.CENTRE_SETS and not centre_observed:
        gaps.append("The centre has not yet set which criteria of this unit must be observed")
    range_report = None
    if spec.range is not None:
        range_report = _range_rule(judge, spec.range, gaps)
    rows = [
        judge.row(cid, area, text) if kept is None else kept
        for (cid, area, text), kept in zip(rows_of, reused, strict=True)
    ]
    gaps += [gap for row in rows for gap in row.gaps]
    return CoverageReport(
        portfolio_id=portfolio.portfolio_id,
        unit_code=spec.code,
        spec_version=spec.version,
        complete=not gaps,
        criteria=tuple(rows),
        range=range_report,
        gaps=tuple(gaps),
        spec_note=_spec_note(portfolio, spec),
    )


def _rows(spec: UnitSpec) -> list[tuple[str, Area, str]]:
    """The report's rows in order: (id, area, text) of criteria, range items, requirements."""
    rows = [(c.id, _area(c.kind), c.text) for c in spec.criteria]
    if spec.range is not None:
        rows += [(item.id, Area.RANGE, item.text) for item in spec.range.items]
    return rows + [(r.id, Area.REQUIREMENT, r.text) for r in spec.requirements]


def rows_changed(event: PortfolioEvent, portfolio: PortfolioState) -> AbstractSet[str] | None:
    """The ids whose coverage rows `event` may have changed (read on the state after it),
    or None where it may have changed any.

    A row reads the live items mapped to or tagged with its id, the withdrawn ones a
    decision on it cites, and the decisions naming it with their samples: an evidence
    event changes the rows of its item's ids, a decision's event those of its criteria. An
    event that replaced an item or decision under an id the portfolio held (the rules
    never do it; stored events may) must be judged in full by the caller: the state no
    longer says what the replaced one was mapped to.
    """
    if isinstance(event, _EVIDENCE_EVENTS):
        item = portfolio.evidence.get(event.evidence_id)
        return frozenset() if item is None else item.criteria | item.requirement_tags
    if isinstance(event, _DECISION_EVENTS):
        decision = portfolio.decisions.get(event.decision_id)
        return frozenset() if decision is None else frozenset(decision.criteria)
    if isinstance(event, (IqaSampleRecorded, EvSampleRecorded)):
        decisions = portfolio.decisions
        return {c for i in event.decision_ids if i in decisions for c in decisions[i].criteria}
    if isinstance(event, (IqaSampleCountersigned, SampleResponseAccepted)):
        sample = event.sample_id
        return {
            cid
            for d in portfolio.decisions.values()
            if any(s.sample_id == sample for s in d.samples())
            for cid in d.criteria
        }
    if isinstance(event, _UNREAD):
        return frozenset()
    return None


_EVIDENCE_EVENTS = (
    EvidenceSubmitted,
    ObservationRecorded,
    WitnessTestimonyRecorded,
    QuestioningRecorded,
    EvidenceMapped,
    EvidenceWithdrawn,
)
_DECISION_EVENTS = (DecisionRecorded, DecisionCountersigned, DecisionRevoked)
#: What no row reads: a sample's response (not `responded`), sign-off, certification,
#: withdrawal and appeals.
_UNREAD = (SampleResponded, UnitCompletionSignedOff, UnitCertified, LearnerWithdrawn, AppealOpened)


def _area(kind: CriterionKind) -> Area:
    return Area.KNOWLEDGE if kind is CriterionKind.KNOWLEDGE else Area.PERFORMANCE


def _spec_note(portfolio: PortfolioState, spec: UnitSpec) -> str:
    correction = spec.corrects_hash(portfolio.spec_hash)
    if correction is None:
        return ""
    return (
        f"Enrolled on {spec.code} v{correction.version}; judged by v{spec.version}, which "
        f"corrects it: {correction.reason}"
    )


class _Item:
    """What coverage reads of one evidence item, derived once per item (`CoverageMemo`)."""

    __slots__ = ("ids", "item", "no", "observed", "order", "profile", "yes")

    def __init__(self, item: EvidenceItem) -> None:
        self.item = item
        # By date, then the id's number (the order of its canonical string, without making
        # 1,000 strings), as one integer: compared in C.
        self.order = item.effective_on.toordinal() << 128 | item.evidence_id.int
        self.ids = tuple(item.criteria | item.requirement_tags)
        # What `Support.problem` and `Support.inferring` read of an item, numbered: items
        # alike in these are judged alike, so a row judges each kind once, not each item.
        kind = (
            item.method,
            item.environment,
            item.rwe_approval_id,
            item.written_answers,
            item.other_reason,
        )
        profile = _KINDS.get(kind)
        if profile is None:
            with _NEW_KIND:  # numbered by how many there are: one at a time
                profile = _KINDS.setdefault(kind, len(_KINDS))
                _ALIKE.setdefault(profile, item)
        self.profile = profile
        self.observed = item.assessor_observed
        base = (item.evidence_id, item.method, item.effective_on)
        self.yes, self.no = _ref(*base, counts=True), _ref(*base, counts=False)


_KINDS: dict[tuple[object, ...], int] = {}  # every kind of item seen: a handful per unit
_ALIKE: dict[int, EvidenceItem] = {}  # an item of each kind: judged for all of its kind
_NEW_KIND = threading.Lock()
_profile = attrgetter("profile")
_observed = attrgetter("observed")
_MEMO = "_coverage_item"  # where an item holds its `_Item` (not a field: never stored)
_order = attrgetter("order")
_yes = attrgetter("yes")


class CoverageMemo:
    """Keep each evidence item's `_Item` on the item, and each held state's index of its
    items by id on the state, for the next report that reads them.

    Time travel folds on from held states (`PortfolioState.fork`): consecutive reports
    read mostly the same item objects, so what coverage derives from an item is derived
    once, and a fork's index is its held state's with the items it made or copied since
    moved. Only for states and items that never change once judged (held states and the
    forks folded from them do not; a copied item starts afresh).
    """

    def of(self, item: EvidenceItem) -> _Item:
        record: _Item | None = item.__dict__.get(_MEMO)
        if record is None:
            record = item.__dict__[_MEMO] = _Item(item)
        return record

    def index(self, state: PortfolioState) -> dict[str, list[_Item]]:
        """The live items mapped or tagged, by id, each list in (date, id) order."""
        held: tuple[PortfolioState, dict[str, list[_Item]]] | None = state.__dict__.get(_INDEX)
        if held is not None and held[0] is state:
            return held[1]
        origin, own = state.forked_from, state.evidence_since_fork
        if origin is None or own is None:
            index = _index(state, self.of)
        else:
            index = self._moved(self.index(origin), origin, state, own)
        if state.forked:  # folded no further: its index holds
            state.__dict__[_INDEX] = (state, index)
        return index

    def _moved(
        self,
        base: dict[str, list[_Item]],
        origin: PortfolioState,
        state: PortfolioState,
        own: set[UUID],
    ) -> dict[str, list[_Item]]:
        """`base` (the index of `origin`) with the items `state` made or copied moved."""
        index, copied = dict(base), set()
        for evidence_id in own:
            was, now = origin.evidence.get(evidence_id), state.evidence.get(evidence_id)
            for item, added in ((was, False), (now, True)):
                if item is None or item.withdrawn or not (item.criteria or item.requirement_tags):
                    continue
                record = self.of(item)
                for cid in record.ids:
                    if cid not in copied:
                        index[cid] = list(index.get(cid, ()))
                        copied.add(cid)
                    if added:
                        insort(index[cid], record, key=_order)
                    else:
                        index[cid].remove(record)
        return index


class _Fresh(CoverageMemo):
    """Derive each time: for states whose items change between reports (the views').

    Within one report each item is derived once (the index and the decisions citing it
    both ask), and the report's items don't change while it is derived. (Keeping each
    item's `_Item` on it across reports saved ~2 % of the live view's CPU and cost ~8 MB
    of a rebuild's peak: not kept.)
    """

    def __init__(self) -> None:
        self.made: dict[int, _Item] = {}

    def of(self, item: EvidenceItem) -> _Item:
        record = self.made.get(id(item))
        if record is None or record.item is not item:
            record = self.made[id(item)] = _Item(item)
        return record

    def index(self, state: PortfolioState) -> dict[str, list[_Item]]:
        return _index(state, self.of)


_INDEX = "_coverage_index"  # where a held state holds its index (not a field)


def _index(
    state: PortfolioState,
    of: Callable[[EvidenceItem], _Item],
    only: AbstractSet[str] | None = None,
) -> dict[str, list[_Item]]:
    """`CoverageMemo.index`, from every item of the state (of the ids in `only`, if given)."""
    evidence = state.evidence.values()
    if only is None:
        live = [of(i) for i in evidence if not i.withdrawn and (i.criteria or i.requirement_tags)]
    else:
        live = [
            of(i)
            for i in evidence
            if not i.withdrawn
            and not (only.isdisjoint(i.criteria) and only.isdisjoint(i.requirement_tags))
        ]
    live.sort(key=_order)
    index: dict[str, list[_Item]] = {}
    for record in live:
        for cid in record.ids:
            if only is None or cid in only:
                index.setdefault(cid, []).append(record)
    return index


class _Judge:
    """Judges each id of the unit from the portfolio's live evidence and its decisions."""

    def __init__(
        self,
        portfolio: PortfolioState,
        support: Support,
        memo: CoverageMemo,
        *,
        only: AbstractSet[str] | None = None,
    ) -> None:
        """`only`: the ids that will be judged (None: every id), to index just those."""
        self.portfolio = portfolio
        self.support = support
        self.of = memo.of
        self.decisions = portfolio.decisions_in_order()
        # Indexed once by id, in (date, id) order, so a row costs what its own evidence and
        # decisions do, not the whole portfolio's (a 1,000-item portfolio has ~40 rows).
        self._evidence = memo.index(portfolio) if only is None else _index(portfolio, memo.of, only)
        self._deciding: dict[str, list[Decision]] = {}
        self._showing: dict[str, list[_Item]] = {}
        self._problems: dict[str, dict[int, str | None]] = {}
        self._cited: dict[UUID, list[EvidenceItem]] = {}
        for decision in self.decisions:
            for cid in dict.fromkeys(decision.criteria):
                self._deciding.setdefault(cid, []).append(decision)

    def evidence_for(self, cid: str) -> list[_Item]:
        """The live items mapped to (or tagged with) `cid`, in (effective date, id) order."""
        return self._evidence.get(cid, [])

    def problems(self, cid: str) -> dict[int, str | None]:
        """`Support.problem` for `cid` of each kind of item among `evidence_for(cid)`."""
        known = self._problems.get(cid)
        if known is None:
            kinds = set(map(_profile, self.evidence_for(cid)))
            problem = self.support.problem
            known = self._problems[cid] = {k: problem(_ALIKE[k], cid) for k in kinds}
        return known

    def showing(self, cid: str) -> list[_Item]:
        """The items of `evidence_for(cid)` that can show it (`Support.shows`: live and
        mapped they are), once per id: a row and the range rule both ask."""
        known = self._showing.get(cid)
        if known is None:
            problems, items = self.problems(cid), self.evidence_for(cid)
            if any(p is not None for p in problems.values()):
                items = [r for r in items if problems[r.profile] is None]
            known = self._showing[cid] = items
        return known

    def cited(self, decision: Decision) -> list[EvidenceItem]:
        """The items a decision cites that the portfolio holds, once per decision: every
        row it decides asks."""
        known = self._cited.get(decision.decision_id)
        if known is None:
            evidence = self.portfolio.evidence
            known = [evidence[i] for i in decision.evidence_ids if i in evidence]
            self._cited[decision.decision_id] = known
        return known

    def shows(self, item: EvidenceItem, cid: str) -> bool:
        """`Support.shows(item, cid)`, for any item of the portfolio, as `showing` judges."""
        if item.withdrawn or not item.evidences(cid):
            return False
        return self.problems(cid)[self.of(item).profile] is None  # among `evidence_for(cid)`

    def deciding(self, cid: str) -> list[Decision]:
        """The decisions naming `cid`, in `decisions` order."""
        return self._deciding.get(cid, [])

    def governing(self, cid: str) -> Decision | None:
        """The latest standing decision on `cid`: a later one replaces it for good."""
        standing = [d for d in self.deciding(cid) if d.stands]
        return standing[-1] if standing else None

    def row(self, cid: str, area: Area, text: str) -> CriterionCoverage:
        support, name = self.support, label_of(cid, area)
        items = self.evidence_for(cid)
        showing = self.showing(cid)
        problems = self.problems(cid)
        must = cid in support.must
        observed = any(map(_observed, showing))  # `observes`, shows known
        gaps = self._evidence_gaps(
            name, cid, area, text=text, items=items, showing=showing, must=must, observed=observed
        )
        stands_for, decision_gaps = self._decided(name, cid, has_evidence=bool(showing))
        gaps += decision_gaps
        statement = support.knowledge.get(cid)
        inferring = support.inferring
        # The kinds of item that show it (all of `problems` when every item does).
        kinds = () if gaps else problems if showing is items else set(map(_profile, showing))
        if showing is items:  # every one of them shows it
            refs = tuple(map(_yes, items))
        else:
            refs = tuple(r.yes if problems[r.profile] is None else r.no for r in items)
        return CriterionCoverage(
            id=cid,
            area=area,
            status=_status(stands_for, items),
            complete=not gaps,
            evidence=refs,
            decision_id=stands_for.decision_id if stands_for is not None else None,
            must_observe=must,
            observed=observed,
            inferred=not gaps and all(inferring(_ALIKE[k], cid) for k in kinds),
            inferable=statement.inferable if statement is not None else None,
            gaps=tuple(gaps),
        )

    def _evidence_gaps(
        self,
        name: str,
        cid: str,
        area: Area,
        *,
        text: str,
        items: list[_Item],
        showing: list[_Item],
        must: bool,
        observed: bool,
    ) -> list[str]:
        if not items:
            if area is Area.REQUIREMENT:
                return [f"No evidence yet of requirement {cid}: {text.rstrip('.')}"]
            note = "; it must be observed by the assessor" if must else ""
            return [f"{name}: no evidence yet{note}"]
        if not showing:
            problems = sorted({p for p in self.problems(cid).values() if p})
            return [f"{name}: its evidence cannot show it ({'; '.join(problems)})"]
        if must and not observed:
            methods = _methods(r.item for r in items)
            return [f"{name} must be observed by the assessor; so far it has only {methods}"]
        return []

    def _decided(
        self, name: str, cid: str, *, has_evidence: bool
    ) -> tuple[Decision | None, list[str]]:
        """The governing decision if it still stands for `cid` as met, and what it lacks."""
        decision = self.governing(cid)
        if decision is None:
            return None, [why] if (why := self._undecided(name, cid, has_evidence)) else []
        if decision.outcome is not Outcome.MET:
            return None, [f"{name}: assessed as not yet met on {decision.effective_on}"]
        showing, gaps = self._rests_on(name, decision, cid)
        return (decision if showing else None), gaps + _referrals(name, decision)

    def _undecided(self, name: str, cid: str, has_evidence: bool) -> str | None:
        naming = [d for d in self.deciding(cid) if not d.revoked]
        if any(d.needs_countersignature and d.countersigned_by is None for d in naming):
            return f"{name}: the decision by a trainee assessor awaits countersignature"
        return f"{name}: no assessment decision yet" if has_evidence else None

    def _rests_on(
        self, name: str, decision: Decision, cid: str
    ) -> tuple[list[EvidenceItem], list[str]]:
        """The cited evidence the "met" decision still rests on for `cid`, and its gaps."""
        support, day = self.support, decision.effective_on
        cited = self.cited(decision)
        showing = [i for i in cited if self.shows(i, cid)]
        if not showing:
            withdrawn = [i for i in cited if i.withdrawn and i.evidences(cid)]
            if withdrawn:
                ids = ", ".join(str(i.evidence_id) for i in withdrawn)
                why = f"the evidence it relied on was withdrawn ({ids})"
                return [], [f"{name}: the decision of {day} no longer stands for it: {why}"]
            return [], [f"{name}: the decision of {day} cites no live evidence that can show it"]
        gaps = []
        unobserved = not any(i.assessor_observed for i in showing)
        if cid in support.must and unobserved:
            gaps.append(f"{name}: the decision of {day} cites no observation of it")
        criterion = support.spec.criterion(cid)
        observe_first = criterion is not None and criterion.observe_unless_not_possible
        if observe_first and unobserved and not decision.observation_not_possible:
            gaps.append(
                f"{name}: the decision of {day} rests on no observation and does not record "
                "why observation was not possible"
            )
        return showing, gaps


def _ref(evidence_id: UUID, method: Method, effective_on: date, *, counts: bool) -> EvidenceRef:
    return EvidenceRef(
        evidence_id=evidence_id, method=method, effective_on=effective_on, counts=counts
    )


def label_of(cid: str, area: Area) -> str:
    if area is Area.RANGE:
        return f"Range ({cid})"
    return f"Requirement {cid}" if area is Area.REQUIREMENT else label(cid)


def _range_rule(judge: _Judge, rule: RangeRule, gaps: list[str]) -> RangeCoverage:
    """ "Two from (a)-(d) by direct observation": simulated observations never count."""
    ids = tuple(item.id for item in rule.items)
    observed = tuple(cid for cid in ids if any(r.observed for r in judge.showing(cid)))
    if len(observed) < rule.min_observed:
        verb = "has" if len(observed) == 1 else "have"
        gaps.append(
            f"Range: {len(observed)} of the {rule.min_observed} items that must be observed "
            f"(from {ids[0]}\N{EN DASH}{ids[-1]}) {verb} been observed"
        )
    return RangeCoverage(
        min_observed=rule.min_observed,
        observed=observed,
        rule_met=len(observed) >= rule.min_observed,
        summary=f"{len(observed)} of {len(ids)} observed ({rule.min_observed} must be)",
    )


def _referrals(name: str, decision: Decision) -> list[str]:
    """An open referral stops the decision counting until the assessor acts on it."""
    referrers = dict.fromkeys("EV" if s.role == "ev" else "IQA" for s in decision.open_referrals())
    return [
        f"{name}: the {who} referred the decision of {decision.effective_on} back to the assessor"
        for who in referrers
    ]


def _status(met: Decision | None, items: Sequence[object]) -> Status:
    if met is None:
        return Status.EVIDENCED if items else Status.NOT_EVIDENCED
    if met.ev_samples:
        return Status.EV_SAMPLED
    if any(s.counts for s in met.iqa_samples):
        return Status.IQA_SAMPLED
    return Status.COUNTERSIGNED if met.needs_countersignature else Status.MET


def _methods(items: Iterable[EvidenceItem]) -> str:
    """The methods used, in the unit texts' order: "questioning and witness testimony"."""
    used = {i.method for i in items}
    return _join((m.label for m in Method if m in used), "and") or "no evidence"


def _join(words: Iterable[str], conjunction: str) -> str:
    """ "a", "a and b", "a, b and c"."""
    listed = list(words)
    return f" {conjunction} ".join(filter(None, [", ".join(listed[:-1]), *listed[-1:]]))
