"""IQA sampling against the centre's plan, by CAMERA dimension.

Candidates, Assessors, Methods, (Evidence) Units and Locations are checked from events;
Records are sampled by reading them, so nothing here can check them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TypeVar

import msgspec

from domain import events as e
from projections import phrasing as w
from projections.audit import ChainState, DecisionChainWithContext


class Camera(StrEnum):
    """The CAMERA dimensions checked from events (Records are sampled by reading them)."""

    CANDIDATES = "candidates"
    ASSESSORS = "assessors"
    METHODS = "methods"
    UNITS = "units"
    LOCATIONS = "locations"


class Figure(msgspec.Struct, frozen=True, kw_only=True):
    """One subject of a dimension (an assessor, a method...): sampled against required."""

    subject: str
    sampled: int
    total: int
    required: int
    rate: float | None  # None where one sampled decision is enough
    compliant: bool


class DimensionCheck(msgspec.Struct, frozen=True, kw_only=True):
    dimension: Camera
    required_by_plan: bool
    rule: str
    figures: tuple[Figure, ...]
    compliant: bool
    missing: tuple[str, ...]


class SamplingCompliance(msgspec.Struct, frozen=True, kw_only=True):
    """IQA sampling against the plan; revoked decisions are out of the population."""

    plan_version: int | None
    compliant: bool
    reason: str
    decisions: int
    sampled: int
    dimensions: tuple[DimensionCheck, ...]
    missing: tuple[str, ...]


Chains = Sequence[DecisionChainWithContext]
Keys = Callable[[DecisionChainWithContext], Iterable[str]]
K = TypeVar("K", bound=Hashable)

#: The "every X used appears in a sampled decision" dimensions: what X is, and its gap.
COVERAGE: tuple[tuple[Camera, Callable[[e.SamplingPlanSet], bool], Keys, str], ...] = (
    (
        Camera.METHODS,
        lambda plan: plan.every_method,
        lambda c: [f"{m.label} ({m})" for m in c.context.methods],
        "Method {subject}: used in {total}, none sampled",
    ),
    (
        Camera.UNITS,
        lambda plan: plan.every_unit,
        lambda c: [c.context.unit_code],
        "Unit {subject}: {total}, none sampled",
    ),
    (
        Camera.LOCATIONS,
        lambda plan: plan.every_location,
        lambda c: c.context.locations,
        "Location {subject}: evidence of {total}, none sampled",
    ),
)


def sampling_compliance(plan: e.SamplingPlanSet | None, chains: Chains) -> SamplingCompliance:
    """Check each CAMERA dimension; compliant only when a plan exists and each one is met."""
    live = [c for c in chains if c.chain.state is not ChainState.REVOKED]
    counts = {"decisions": len(live), "sampled": sum(map(_sampled, live))}
    if plan is None:
        reason = "No sampling plan has been recorded for this centre"
        return SamplingCompliance(
            plan_version=None,
            compliant=False,
            reason=reason,
            dimensions=(),
            missing=(reason,),
            **counts,
        )
    dimensions = (
        _candidates(plan.min_candidate_rate, live),
        _assessors(plan, live),
        *(_coverage(d, on(plan), _group(live, keys), gap) for d, on, keys, gap in COVERAGE),
    )
    missing = tuple(m for d in dimensions for m in d.missing)
    return SamplingCompliance(
        plan_version=plan.plan_version,
        compliant=not missing,
        reason=f"{w.plural(len(missing), 'shortfall')} against the plan" if missing else "",
        dimensions=dimensions,
        missing=missing,
        **counts,
    )


def _candidates(rate: float, live: Chains) -> DimensionCheck:
    learners = _group(live, lambda c: [c.context.learner_id])
    unsampled = sorted(
        group[0].context.learner_name
        for group in learners.values()
        if not any(map(_sampled, group))
    )
    figure = _figure("learners", len(learners) - len(unsampled), len(learners), rate)
    missing: tuple[str, ...] = ()
    if not figure.compliant:
        missing = (
            f"Candidates: {figure.sampled} of {w.plural(figure.total, 'learner')} have an "
            f"IQA-sampled decision; the plan needs {w.percent(rate)}. Not yet sampled: "
            + ", ".join(unsampled),
        )
    rule = f"at least {w.percent(rate)} of learners have an IQA-sampled decision"
    return _check(Camera.CANDIDATES, rule, (figure,), missing)


def _assessors(plan: e.SamplingPlanSet, live: Chains) -> DimensionCheck:
    """Per assessor and qualification: a trainee's decisions answer to the trainee rate."""
    groups = _group(live, lambda c: [(c.context.assessor_id, c.context.assessor_qualification)])
    figures = []
    for (_, qualification), group in groups.items():
        trainee = qualification is e.Qualification.TRAINEE
        rate = plan.trainee_assessor_rate if trainee else plan.min_assessor_rate
        subject = f"{group[0].context.assessor_name} ({qualification})"
        figures.append(_figure(subject, sum(map(_sampled, group)), len(group), rate))
    figures.sort(key=lambda f: f.subject)
    missing = tuple(
        f"Assessor {f.subject}: {f.sampled} of {w.plural(f.total, 'decision')} sampled; "
        f"the plan needs {w.percent(f.rate or 0)}"
        for f in figures
        if not f.compliant
    )
    rule = (
        f"at least {w.percent(plan.min_assessor_rate)} of each assessor's decisions, "
        f"{w.percent(plan.trainee_assessor_rate)} of a trainee's"
    )
    return _check(Camera.ASSESSORS, rule, figures, missing)


def _coverage(
    dimension: Camera, on: bool, groups: Mapping[str, Chains], gap: str
) -> DimensionCheck:
    """One sampled decision per method (unit, location) used is enough."""
    figures = [
        _figure(subject, sum(map(_sampled, group)), len(group), None if on else 0.0)
        for subject, group in sorted(groups.items())
    ]
    missing = tuple(
        gap.format(subject=f.subject, total=w.plural(f.total, "decision"))
        for f in figures
        if not f.compliant
    )
    noun = dimension.value.removesuffix("s")
    rule = f"every {noun} used appears in an IQA-sampled decision" if on else "not in the plan"
    return _check(dimension, rule, figures, missing, required_by_plan=on)


def _check(
    dimension: Camera,
    rule: str,
    figures: Iterable[Figure],
    missing: tuple[str, ...],
    *,
    required_by_plan: bool = True,
) -> DimensionCheck:
    return DimensionCheck(
        dimension=dimension,
        required_by_plan=required_by_plan,
        rule=rule,
        figures=tuple(figures),
        compliant=not missing,
        missing=missing,
    )


def _figure(subject: str, sampled: int, total: int, rate: float | None) -> Figure:
    """`rate` None: at least one; else the rate of `total`, rounded so 0.1 * 30 needs 3."""
    required = min(1, total) if rate is None else math.ceil(round(rate * total, 9))
    return Figure(
        subject=subject,
        sampled=sampled,
        total=total,
        required=required,
        rate=rate,
        compliant=sampled >= required,
    )


def _group(
    live: Chains, keys: Callable[[DecisionChainWithContext], Iterable[K]]
) -> dict[K, Chains]:
    """Chains by key; a chain with several keys (methods, locations) is in each group."""
    groups: defaultdict[K, list[DecisionChainWithContext]] = defaultdict(list)
    for chain in live:
        for key in keys(chain):
            groups[key].append(chain)
    return dict(groups)


def _sampled(chain: DecisionChainWithContext) -> bool:
    """IQA-sampled by a sample that counts (a trainee IQA's once countersigned)."""
    return any(s.counts for s in chain.chain.iqa_samples)
