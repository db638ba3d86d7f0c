"""Coverage: per criterion, the evidence and decision behind it, and what is still missing.

A pure read of a portfolio against its spec, applying the unit texts' rules (DESIGN §1.1)
so an assessor sees the gaps they would write themselves:
- a criterion counts once the latest *standing* decision on it (not revoked; countersigned
  if a trainee made it) that still rests on live (not withdrawn) evidence says met, and
  live evidence is mapped to it; a decision whose latest IQA/EV sample referred it does not;
- a must-observe criterion (named by the spec, or circled by the centre) also needs the
  assessor's own observation (method O) mapped to it: witness testimony does not do;
- knowledge needs Q, PD, WP or Oth evidence; an observation mapped to it counts (as
  inference) only where the unit allows it; witness testimony never shows knowledge;
- range: `min_observed` items observed, the rest covered by O or the spec's other methods,
  and each item decided met like a criterion;
- a requirement category needs one live item tagged (or mapped) with it.
A unit is complete exactly when there are no gaps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from uuid import UUID

import msgspec

from domain.events import Outcome, SampleOutcome
from domain.portfolio import Decision, EvidenceItem, PortfolioState
from domain.spec import Criterion, CriterionKind, Method, ObservationRule, RangeRule, UnitSpec

#: What shows knowledge without inference: asked, discussed or written down.
KNOWLEDGE_METHODS = frozenset(
    {Method.QUESTIONING, Method.PROFESSIONAL_DISCUSSION, Method.WORK_PRODUCT, Method.OTHER}
)


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


class CriterionCoverage(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    area: Area
    status: Status
    complete: bool
    evidence: tuple[EvidenceRef, ...] = ()
    decision_id: UUID | None = None  # the standing decision that meets it
    must_observe: bool = False
    observed: bool = False  # the assessor's own observation is mapped to it
    inferred: bool = False  # knowledge shown only by observed performance


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


def coverage(
    portfolio: PortfolioState, spec: UnitSpec, centre_observed: tuple[str, ...] = ()
) -> CoverageReport:
    """Gap analysis of `portfolio` against `spec`; `centre_observed` is the centre's circle."""
    facts = _Facts(portfolio)
    gaps: list[str] = []
    if spec.observation_rule is ObservationRule.CENTRE_SETS and not centre_observed:
        gaps.append("The centre has not yet set which criteria of this unit must be observed")
    must = {c.id for c in spec.criteria if c.must_observe}
    if spec.observation_rule is ObservationRule.CENTRE_SETS:
        must |= set(centre_observed)
    rows = [_criterion(facts, spec, c, c.id in must, gaps) for c in spec.criteria]
    range_report = None
    if spec.range is not None:
        range_report = _range_rule(facts, spec.range, gaps)
        rows += [_range_item(facts, spec.range, item.id, gaps) for item in spec.range.items]
    for requirement in spec.requirements:
        rows.append(_requirement(facts, requirement.id, requirement.text, gaps))
    return CoverageReport(
        portfolio_id=portfolio.portfolio_id,
        unit_code=spec.code,
        spec_version=spec.version,
        complete=not gaps,
        criteria=tuple(rows),
        range=range_report,
        gaps=tuple(gaps),
    )


class _Facts:
    """What every criterion is judged from: the live evidence and the decisions, in order."""

    def __init__(self, portfolio: PortfolioState) -> None:
        live = (i for i in portfolio.evidence.values() if not i.withdrawn)
        self.live = sorted(live, key=lambda i: (i.effective_on, str(i.evidence_id)))
        self.live_ids = {i.evidence_id for i in self.live}
        self.decisions = sorted(
            portfolio.decisions.values(),
            key=lambda d: (d.effective_on, d.recorded_at, str(d.decision_id)),
        )

    def evidence_for(self, cid: str, *, tagged: bool = False) -> list[EvidenceItem]:
        return [i for i in self.live if cid in i.criteria or (tagged and cid in i.requirement_tags)]

    def naming(self, cid: str) -> list[Decision]:
        return [d for d in self.decisions if cid in d.criteria]

    def governing(self, cid: str) -> Decision | None:
        """The latest standing decision on `cid` that still rests on live evidence."""
        usable = [d for d in self.naming(cid) if d.stands and self.live_ids & set(d.evidence_ids)]
        return usable[-1] if usable else None


def _criterion(
    facts: _Facts, spec: UnitSpec, c: Criterion, must_observe: bool, gaps: list[str]
) -> CriterionCoverage:
    label = f"AC {c.id}" if c.id[:1].isdigit() else c.id
    items = facts.evidence_for(c.id)
    observed = any(i.assessor_observed for i in items)
    knowledge = c.kind is CriterionKind.KNOWLEDGE
    method_gap, inferred = None, False
    if knowledge:
        method_gap, inferred = _knowledge_gap(label, items, spec.knowledge_inference_allowed)
    elif must_observe and not observed:
        method_gap = f"{label} must be observed by the assessor; so far it has only "
        method_gap += _methods(items)
    note = "; it must be observed by the assessor" if must_observe else ""
    verdict = _judged(facts, c.id, items, label=label, method_gap=method_gap, note=note)
    gaps += verdict.gaps
    return verdict.row(
        c.id,
        Area.KNOWLEDGE if knowledge else Area.PERFORMANCE,
        items,
        must_observe=must_observe,
        observed=observed,
        inferred=inferred and not verdict.gaps,
    )


def _knowledge_gap(
    label: str, items: list[EvidenceItem], inference_allowed: bool
) -> tuple[str | None, bool]:
    """(why the evidence cannot show this knowledge, or None; whether it is inferred)."""
    direct = any(i.method in KNOWLEDGE_METHODS for i in items)
    observed = any(i.assessor_observed for i in items)
    if direct or (observed and inference_allowed):
        return None, not direct
    needs = "questioning, professional discussion"
    needs += (
        ", written evidence or observed performance"
        if inference_allowed
        else " or written evidence (this unit allows no inference from observation)"
    )
    return f"{label} needs {needs}; so far it has only {_methods(items)}", False


def _range_rule(facts: _Facts, rule: RangeRule, gaps: list[str]) -> RangeCoverage:
    ids = tuple(item.id for item in rule.items)
    observed = tuple(i for i in ids if any(e.assessor_observed for e in facts.evidence_for(i)))
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


def _range_item(facts: _Facts, rule: RangeRule, item: str, gaps: list[str]) -> CriterionCoverage:
    label = f"Range ({item})"
    items = facts.evidence_for(item)
    allowed = [Method.OBSERVATION, *rule.other_methods]
    method_gap = None
    if items and not any(i.method in allowed for i in items):
        names = _join((m.label for m in allowed), "or")
        method_gap = f"{label} must be covered by {names}; so far it has only {_methods(items)}"
    verdict = _judged(facts, item, items, label=label, method_gap=method_gap)
    gaps += verdict.gaps
    observed = any(i.assessor_observed for i in items)
    return verdict.row(item, Area.RANGE, items, observed=observed)


def _requirement(facts: _Facts, rid: str, text: str, gaps: list[str]) -> CriterionCoverage:
    """Evidence tagged with the category is enough: the texts ask only that it appear."""
    items = facts.evidence_for(rid, tagged=True)
    decision = facts.governing(rid)
    met = decision if items and decision and decision.outcome is Outcome.MET else None
    own = [] if items else [f"No evidence yet of requirement {rid}: {text.rstrip('.')}"]
    gaps += own
    return _Verdict(met, own).row(rid, Area.REQUIREMENT, items)


@dataclass(frozen=True)
class _Verdict:
    """The decision that meets a criterion (None if none does) and the criterion's gaps."""

    met: Decision | None
    gaps: list[str]

    def row(
        self, cid: str, area: Area, items: list[EvidenceItem], **flags: bool
    ) -> CriterionCoverage:
        return CriterionCoverage(
            id=cid,
            area=area,
            status=_status(self.met, items),
            complete=not self.gaps,
            evidence=tuple(
                EvidenceRef(evidence_id=i.evidence_id, method=i.method, effective_on=i.effective_on)
                for i in items
            ),
            decision_id=self.met.decision_id if self.met else None,
            **flags,
        )


def _judged(
    facts: _Facts,
    cid: str,
    items: list[EvidenceItem],
    *,
    label: str,
    method_gap: str | None,
    note: str = "",
) -> _Verdict:
    """Judge a criterion that needs a decision; `method_gap` says why its evidence falls short."""
    decision = facts.governing(cid)
    if items and decision is not None and decision.outcome is Outcome.MET:
        own = [f"{method_gap}, although a decision records it as met"] if method_gap else []
        return _Verdict(decision, own + _referral(label, decision))
    own = [method_gap] if items and method_gap else []
    if not items:
        own = [f"{label}: no evidence yet{note}"]
    why = _undecided(facts, cid, label, decision)
    if why is None and items and not method_gap:  # with a method gap, that is the point
        why = f"{label}: no assessment decision yet"
    return _Verdict(None, own + ([why] if why else []))


def _undecided(facts: _Facts, cid: str, label: str, decision: Decision | None) -> str | None:
    """Why the decisions made on an unmet criterion do not meet it; None if none was made."""
    if decision is not None and decision.outcome is Outcome.MET:
        return f"{label}: a decision records it as met, but no live evidence is mapped to it"
    if decision is not None:
        return f"{label}: assessed as not yet met on {decision.effective_on}"
    naming = [d for d in facts.naming(cid) if not d.revoked]
    if any(d.needs_countersignature and d.countersigned_by is None for d in naming):
        return f"{label}: the decision by a trainee assessor awaits countersignature"
    if stale := [d for d in naming if d.stands]:
        return f"{label}: the decision of {stale[-1].effective_on} relied on withdrawn evidence"
    return None


def _referral(label: str, decision: Decision) -> list[str]:
    """An IQA or EV who referred the decision (in their latest sample) stops it counting."""
    samples = [("IQA", s) for s in decision.iqa_samples] + [("EV", s) for s in decision.ev_samples]
    if not samples:
        return []
    who, last = max(samples, key=lambda pair: pair[1].recorded_at)
    if last.outcome is not SampleOutcome.REFERRED:
        return []
    return [
        f"{label}: the {who} referred the decision of {decision.effective_on} back to the assessor"
    ]


def _status(met: Decision | None, items: list[EvidenceItem]) -> Status:
    if met is None:
        return Status.EVIDENCED if items else Status.NOT_EVIDENCED
    if met.ev_samples:
        return Status.EV_SAMPLED
    if met.iqa_samples:
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
