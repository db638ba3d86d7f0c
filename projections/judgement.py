"""A portfolio judged at its centre: coverage and sufficiency with the centre's own rules.

The stored views, time travel and the certification rule all judge through these two
functions, so they cannot disagree about which circled criteria, approved environments and
sufficiency policy apply.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from domain.assessment import Judgement
from domain.centre import CentreState
from domain.portfolio import PortfolioState
from domain.spec import UnitSpec
from domain.support import Support
from projections.coverage import CoverageMemo, CoverageReport, coverage
from projections.sufficiency import SufficiencyReport, policy_for, sufficiency


def coverage_of(
    portfolio: PortfolioState,
    centre: CentreState,
    spec: UnitSpec,
    *,
    memo: CoverageMemo | None = None,
    previous: CoverageReport | None = None,
    changed: AbstractSet[str] = frozenset(),
) -> CoverageReport:
    """`coverage` at the centre; `previous` and `changed` as there."""
    observed = centre.observed_criteria.get(portfolio.unit_code, ())
    return coverage(
        portfolio,
        spec,
        observed,
        centre.rwe_approvals,
        memo=memo,
        previous=previous,
        changed=changed,
    )


def sufficiency_of(
    portfolio: PortfolioState, centre: CentreState, spec: UnitSpec
) -> SufficiencyReport:
    observed = centre.observed_criteria.get(portfolio.unit_code, ())
    support = Support(spec, observed, centre.rwe_approvals)
    return sufficiency(portfolio, spec, policy_for(portfolio, centre), support=support)


def judge(portfolio: PortfolioState, centre: CentreState, spec: UnitSpec) -> Judgement:
    """What the sign-off and certification rules read: every gap and failed figure."""
    report = sufficiency_of(portfolio, centre, spec)
    return Judgement(
        coverage_gaps=coverage_of(portfolio, centre, spec).gaps,
        sufficiency_failures=report.reasons,
    )
