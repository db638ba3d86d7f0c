"""Sufficiency over a period of time, against the centre's standardisation decision.

The units ask for evidence "over a period of time", "with different customers on different
occasions", but set no numbers: the centre decides them (DESIGN §1.1), so every result
names the policy version it applied.

The figures count live (not withdrawn) *performance* evidence: observation, work product and
witness testimony (not questioning or discussion, which show knowledge, nor "other"), and
never evidence from a simulation, which cannot be performance evidence. They use effective
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

from domain.events import Environment, SufficiencyPolicySet, SufficiencyThresholds, UnitThresholds
from domain.portfolio import EvidenceItem, PortfolioState
from domain.spec import Method, UnitSpec

PERFORMANCE_METHODS = frozenset({Method.OBSERVATION, Method.WORK_PRODUCT, Method.WITNESS_TESTIMONY})
NO_POLICY_NOTE = "centre default (no standardisation decision recorded)"
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


def sufficiency(
    portfolio: PortfolioState,
    spec: UnitSpec,
    policy: SufficiencyPolicySet | None,
    *,
    unit_code: str | None = None,
) -> SufficiencyReport:
    """Figures against `policy` (the centre's latest; None: the defaults), for `unit_code`.

    `unit_code` picks the policy's per-unit thresholds; it defaults to the spec's code.
    """
    code = spec.code if unit_code is None else unit_code
    unit = _unit_thresholds(policy, code)
    thresholds = unit.thresholds if unit else (policy.default if policy else _DEFAULTS)
    live = [i for i in portfolio.evidence.values() if not i.withdrawn]
    performance = [i for i in live if _is_performance(i)]
    figures = measure(performance, thresholds)
    criteria = tuple(
        CriterionSufficiency(
            criterion_id=cid,
            thresholds=limits,
            figures=measure([i for i in performance if cid in i.criteria], limits),
        )
        for cid, limits in sorted(unit.per_criterion.items() if unit else (), key=_spec_order(spec))
    )
    late_days = policy.late_recording_days if policy else DEFAULT_LATE_RECORDING_DAYS
    return SufficiencyReport(
        portfolio_id=portfolio.portfolio_id,
        unit_code=code,
        policy_version=policy.policy_version if policy else 0,
        policy_note=_note(policy, unit),
        thresholds=thresholds,
        late_recording_days=late_days,
        passed=figures.passed and all(c.figures.passed for c in criteria),
        figures=figures,
        criteria=criteria,
        late_evidence=late_evidence(live, late_days),
    )


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


def _is_performance(item: EvidenceItem) -> bool:
    return item.method in PERFORMANCE_METHODS and item.environment is not Environment.SIMULATION


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
