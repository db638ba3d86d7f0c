"""Sufficiency over a period of time, against the centre's standardisation decision.

The units ask for evidence "over a period of time", "with different customers on different
occasions", but set no numbers: the centre decides them at standardisation, so every
result names the policy version it applied (or says the built-in default was used, which
no centre set). A certified portfolio is judged by the policy it was certified under.

The figures count evidence an assessor has assessed: live (not withdrawn), mapped, cited by
a "met" decision that stands, *performance* evidence (observation, work product, witness
testimony — not questioning or discussion, which show knowledge, nor "other"), from an
environment the unit permits for performance (never a simulation). They use effective
dates, never recorded times: evidence typed up a month late still happened when it did.

- an occasion is (effective date, occasion label), or (effective date, customer_ref) when
  the label is empty; items with neither on the same day are one occasion;
- distinct dates and distinct customers (customer_ref) are counted as such;
- the span is the days from the first to the last effective date.

Late recording is reported, not penalised: an item recorded more than the policy's
`late_recording_days` after its effective date is listed for the assessor to check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from uuid import UUID

import msgspec

from domain.centre import CentreState
from domain.events import Outcome, SufficiencyPolicySet, SufficiencyThresholds, UnitThresholds
from domain.portfolio import EvidenceItem, PortfolioState
from domain.spec import Method, UnitSpec
from domain.support import Support

PERFORMANCE_METHODS = frozenset({Method.OBSERVATION, Method.WORK_PRODUCT, Method.WITNESS_TESTIMONY})
NO_POLICY_NOTE = "built-in default, not set by the centre (no standardisation decision recorded)"
#: What a policy that does not say otherwise allows (SufficiencyPolicySet's own default).
DEFAULT_LATE_RECORDING_DAYS: int = next(
    f.default
    for f in msgspec.structs.fields(SufficiencyPolicySet)
    if f.name == "late_recording_days"
)


class Figure(msgspec.Struct, frozen=True, kw_only=True):
    value: int
    minimum: int
    passed: bool


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    evidence_count: int
    first_on: date | None
    last_on: date | None
    occasions: Figure
    distinct_dates: Figure
    distinct_customers: Figure
    span_days: Figure
    passed: bool


class CriterionSufficiency(msgspec.Struct, frozen=True, kw_only=True):
    criterion_id: str
    thresholds: SufficiencyThresholds
    figures: Figures


class LateEvidence(msgspec.Struct, frozen=True, kw_only=True):
    evidence_id: UUID
    effective_on: date
    recorded_on: date
    days_to_record: int
    days_late: int  # beyond the policy's late_recording_days


class SufficiencyReport(msgspec.Struct, frozen=True, kw_only=True):
    portfolio_id: UUID
    unit_code: str
    policy_version: int  # 0: no standardisation decision recorded
    policy_note: str
    thresholds: SufficiencyThresholds
    late_recording_days: int
    passed: bool
    figures: Figures
    criteria: tuple[CriterionSufficiency, ...] = ()
    late_evidence: tuple[LateEvidence, ...] = ()
    #: One sentence per failed figure: which, against what, and why it matters.
    reasons: tuple[str, ...] = ()


def policy_for(portfolio: PortfolioState, centre: CentreState) -> SufficiencyPolicySet | None:
    """The policy a portfolio is judged by: the one it was certified under, else the latest."""
    if portfolio.certified_policy_version is not None:
        return centre.policy_version(portfolio.certified_policy_version)
    return centre.sufficiency_policy


def sufficiency(
    portfolio: PortfolioState,
    spec: UnitSpec,
    policy: SufficiencyPolicySet | None,
    *,
    unit_code: str | None = None,
    support: Support | None = None,
) -> SufficiencyReport:
    """Figures against `policy` (None: the built-in defaults), for `unit_code`.

    `unit_code` picks the policy's per-unit thresholds; it defaults to the spec's code.
    `support` holds the centre's approved environments (none, without it).
    """
    code = spec.code if unit_code is None else unit_code
    unit = _unit_thresholds(policy, code)
    thresholds = unit.thresholds if unit else (policy.default if policy else _DEFAULTS)
    live = [i for i in portfolio.evidence.values() if not i.withdrawn]
    counted = assessed_performance(portfolio, support or Support(spec))
    figures = measure(counted, thresholds)
    criteria = tuple(
        CriterionSufficiency(
            criterion_id=cid,
            thresholds=limits,
            figures=measure([i for i in counted if cid in i.criteria], limits),
        )
        for cid, limits in sorted(unit.per_criterion.items() if unit else (), key=_spec_order(spec))
    )
    late_days = policy.late_recording_days if policy else DEFAULT_LATE_RECORDING_DAYS
    version = policy.policy_version if policy else 0
    reasons = _reasons(figures, version, None) + tuple(
        why for c in criteria for why in _reasons(c.figures, version, c.criterion_id)
    )
    return SufficiencyReport(
        portfolio_id=portfolio.portfolio_id,
        unit_code=code,
        policy_version=version,
        policy_note=_note(policy, unit),
        thresholds=thresholds,
        late_recording_days=late_days,
        passed=not reasons,
        figures=figures,
        criteria=criteria,
        late_evidence=late_evidence(live, late_days),
        reasons=reasons,
    )


def late_refreshed(previous: SufficiencyReport, portfolio: PortfolioState) -> SufficiencyReport:
    """`previous` (the report of an earlier state of `portfolio`, by the same policy) with
    its late evidence read again from this state.

    Everything else a report holds reads only the evidence "met" decisions cite: after
    evidence events for items no decision cites, this is the report `sufficiency` derives.
    """
    live = [i for i in portfolio.evidence.values() if not i.withdrawn]
    late = late_evidence(live, previous.late_recording_days)
    return (
        previous
        if late == previous.late_evidence
        else msgspec.structs.replace(previous, late_evidence=late)
    )


def assessed_performance(portfolio: PortfolioState, support: Support) -> list[EvidenceItem]:
    """What the assessor has judged, not whatever was uploaded: live performance evidence
    (never written answers to knowledge questions) that a "met" decision which stands and
    is not referred back cites for a performance criterion, range item or requirement it
    can show, from an environment the unit permits."""
    counted: dict[UUID, EvidenceItem] = {}
    for decision in portfolio.decisions.values():
        if not decision.stands or decision.outcome is not Outcome.MET:
            continue
        if decision.open_referrals():
            continue
        shown = [cid for cid in decision.criteria if cid in support.performance]
        for evidence_id in decision.evidence_ids:
            item = portfolio.evidence.get(evidence_id)
            if item is None or item.method not in PERFORMANCE_METHODS or item.written_answers:
                continue
            if any(support.shows(item, cid) for cid in shown):
                counted[evidence_id] = item
    return list(counted.values())


_FIGURE_WORDS = {
    "occasions": ("occasion", "different occasions"),
    "distinct_dates": ("date", "different dates"),
    "distinct_customers": ("customer", "different customers"),
}


def _reasons(figures: Figures, version: int, criterion: str | None) -> tuple[str, ...]:
    """Each failed figure in a sentence, as the gaps of coverage are."""
    policy = f"policy v{version}" if version else "the built-in default"
    scope = f"{criterion}: " if criterion else ""
    out = []
    for name, (noun, wanted) in _FIGURE_WORDS.items():
        figure: Figure = getattr(figures, name)
        if not figure.passed:
            out.append(
                f"{scope}assessed performance evidence from {figure.value} "
                f"{noun}{'' if figure.value == 1 else 's'}; {policy} needs {figure.minimum} "
                f"({wanted}, so the standard is shown consistently)"
            )
    if not figures.span_days.passed:
        out.append(
            f"{scope}assessed performance evidence spans {figures.span_days.value} days; "
            f"{policy} needs at least {figures.span_days.minimum} (over a period of time)"
        )
    return tuple(out)


def measure(items: Sequence[EvidenceItem], thresholds: SufficiencyThresholds) -> Figures:
    """The four figures of `items` (by effective date), each against its threshold."""
    dates = sorted({i.effective_on for i in items})
    span = (dates[-1] - dates[0]).days if dates else 0
    figures = {
        "occasions": _figure(len({occasion(i) for i in items}), thresholds.min_occasions),
        "distinct_dates": _figure(len(dates), thresholds.min_distinct_dates),
        "distinct_customers": _figure(
            len({i.customer_ref for i in items if i.customer_ref}),
            thresholds.min_distinct_customers,
        ),
        "span_days": _figure(span, thresholds.min_span_days),
    }
    return Figures(
        evidence_count=len(items),
        first_on=dates[0] if dates else None,
        last_on=dates[-1] if dates else None,
        passed=all(f.passed for f in figures.values()),
        **figures,
    )


def occasion(item: EvidenceItem) -> tuple[date, str, str]:
    """(effective date, occasion label), or (effective date, customer) with no label."""
    if item.occasion:
        return item.effective_on, "occasion", item.occasion
    return item.effective_on, "customer", item.customer_ref or ""


def late_evidence(items: Sequence[EvidenceItem], allowed_days: int) -> tuple[LateEvidence, ...]:
    """Items recorded more than `allowed_days` after their effective date, oldest first."""
    late = []
    for item in items:
        recorded_on = item.recorded_at.date()
        delay = (recorded_on - item.effective_on).days
        if delay > allowed_days:
            late.append(
                LateEvidence(
                    evidence_id=item.evidence_id,
                    effective_on=item.effective_on,
                    recorded_on=recorded_on,
                    days_to_record=delay,
                    days_late=delay - allowed_days,
                )
            )
    return tuple(sorted(late, key=lambda x: (x.effective_on, str(x.evidence_id))))


_DEFAULTS = SufficiencyThresholds()


def _figure(value: int, minimum: int) -> Figure:
    return Figure(value=value, minimum=minimum, passed=value >= minimum)


def _unit_thresholds(policy: SufficiencyPolicySet | None, code: str) -> UnitThresholds | None:
    if policy is None:
        return None
    return next((u for u in policy.per_unit if u.unit_code == code), None)


def _note(policy: SufficiencyPolicySet | None, unit: UnitThresholds | None) -> str:
    """Which decision and which of its thresholds were applied, in words."""
    if policy is None:
        return NO_POLICY_NOTE
    ref = f" ({policy.decision_ref})" if policy.decision_ref else ""
    which = f"thresholds for unit {unit.unit_code}" if unit else "centre-wide thresholds"
    return f"standardisation decision of {policy.effective_on}{ref}: {which}"


def _spec_order(spec: UnitSpec) -> Callable[[tuple[str, SufficiencyThresholds]], tuple[int, str]]:
    """Per-criterion results in the spec's order (PC2 before PC10); unknown ids last."""
    order = {c.id: n for n, c in enumerate(spec.criteria)}
    return lambda pair: (order.get(pair[0], len(order)), pair[0])
