"""Retention: where a learner's records stand, and when their personal data may be destroyed.

Centres keep assessment records under a legal obligation (awarding bodies: at least
3 years after certification), so erasure waits until every portfolio of the learner is
closed (certified or withdrawn) and the centre's retention period since the last closure
has run, and no legal hold (appeal, malpractice) is open. The same pure function answers
the erasure rule (`domain.centre_rules`, with the policy and hold rules) and the retention
report, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from uuid import UUID

import msgspec

from domain.centre import CentreState
from domain.portfolio import PortfolioState

DEFAULT_RECORDS_YEARS = 3


class Status(StrEnum):
    ERASED = "erased"
    HELD = "held"  # a legal hold is open
    IN_PROGRESS = "in_progress"  # a portfolio is neither certified nor withdrawn
    RETAINED = "retained"  # the retention period is running
    DUE = "due"  # may (and under data protection, should) be erased


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    """Where a learner's records stand, and why, in words a centre admin can act on."""

    learner_id: UUID
    status: Status
    why: str
    since: date | None = None  # the retention clock's start: the last closure
    until: date | None = None  # when the retention period ends


def add_years(day: date, years: int) -> date:
    """The same day `years` later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def records_years(centre: CentreState) -> int:
    policy = centre.retention_policy
    return DEFAULT_RECORDS_YEARS if policy is None else policy.records_years


def retention_of(
    centre: CentreState, learner_id: UUID, portfolios: Sequence[PortfolioState], today: date
) -> Retention:
    """Erased, else held, else in progress, else retained until a date, else due."""
    if (erased_on := centre.erased.get(learner_id)) is not None:
        return Retention(learner_id=learner_id, status=Status.ERASED, why=f"erased on {erased_on}")
    holds = sorted(
        (h for h in centre.holds.values() if h.learner_id == learner_id), key=lambda h: h.placed_on
    )
    if holds:
        why = "; ".join(f"legal hold ({h.reason}) open since {h.placed_on}" for h in holds)
        return Retention(learner_id=learner_id, status=Status.HELD, why=why)
    open_ = [p for p in portfolios if p.closed_on is None]
    if open_:
        units = ", ".join(sorted(p.unit_code for p in open_))
        why = f"portfolio still open (neither certified nor withdrawn): {units}"
        return Retention(learner_id=learner_id, status=Status.IN_PROGRESS, why=why)
    closures = [p.closed_on for p in portfolios if p.closed_on is not None]
    if not closures:
        why = "no assessment records: nothing to retain"
        return Retention(learner_id=learner_id, status=Status.DUE, why=why)
    since, years = max(closures), records_years(centre)
    until = add_years(since, years)
    if today < until:
        why = f"assessment records are kept {years} years after {since}: until {until}"
        status = Status.RETAINED
    else:
        why = f"the {years}-year retention period after {since} ended on {until}"
        status = Status.DUE
    return Retention(learner_id=learner_id, status=status, why=why, since=since, until=until)
