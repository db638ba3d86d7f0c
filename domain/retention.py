"""Retention, legal holds and erasure: when a learner's personal data may be destroyed.

Centres keep assessment records under a legal obligation (awarding bodies: at least
3 years after certification), so erasure waits until every portfolio of the learner is
closed (certified or withdrawn) and the centre's retention period since the last closure
has run, and no legal hold (appeal, malpractice) is open. The same pure function answers
the erasure rule and the retention report, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from uuid import UUID

import msgspec

from domain import commands as c
from domain import events as e
from domain.centre import CentreState, require_centre_admin
from domain.errors import (
    AlreadyErased,
    AlreadyExists,
    LearnerErased,
    LegalHoldApplies,
    NotFound,
    NotPermitted,
    RetentionApplies,
)
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


# ---- centre rules ----------------------------------------------------------------------


def set_retention_policy(
    centre: CentreState, cmd: c.SetRetentionPolicy, stamp: c.Stamp
) -> e.RetentionPolicySet:
    require_centre_admin(centre, stamp.actor)
    current = centre.retention_policy
    version = 1 if current is None else current.policy_version + 1
    return e.RetentionPolicySet(
        **cmd.event_fields(stamp), centre_id=centre.centre_id, policy_version=version
    )


def place_legal_hold(
    centre: CentreState, cmd: c.PlaceLegalHold, stamp: c.Stamp
) -> e.LegalHoldPlaced:
    require_centre_admin(centre, stamp.actor)
    _registered(centre, cmd.learner_id)
    if cmd.hold_id in centre.holds:
        raise AlreadyExists(f"hold {cmd.hold_id} is already open", field="hold_id")
    return e.LegalHoldPlaced(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def lift_legal_hold(centre: CentreState, cmd: c.LiftLegalHold, stamp: c.Stamp) -> e.LegalHoldLifted:
    require_centre_admin(centre, stamp.actor)
    hold = centre.holds.get(cmd.hold_id)
    if hold is None:
        raise NotFound(f"no open legal hold {cmd.hold_id}", field="hold_id")
    return e.LegalHoldLifted(
        **cmd.event_fields(stamp), centre_id=centre.centre_id, learner_id=hold.learner_id
    )


def erase_learner(
    centre: CentreState,
    portfolios: Sequence[PortfolioState],
    cmd: c.EraseLearner,
    stamp: c.Stamp,
    *,
    elsewhere: Sequence[CentreState] = (),
) -> e.SubjectErased:
    """Refused while the records must be kept; `portfolios` are all the learner's.

    Every centre holding the learner decides: `elsewhere` are the other centres that
    registered them, whose holds and retention periods refuse it just the same.
    """
    if stamp.actor.role is not e.Role.CENTRE_ADMIN:
        raise NotPermitted("only the learner's centre administrators erase their data")
    require_centre_admin(centre, stamp.actor)
    if cmd.learner_id not in centre.learners:
        raise NotFound(f"no learner {cmd.learner_id} at this centre", field="learner_id")
    today = stamp.recorded_at.date()
    retention = retention_of(centre, cmd.learner_id, portfolios, today)
    if retention.status is Status.ERASED:
        raise AlreadyErased(f"learner {cmd.learner_id} was {retention.why}", field="learner_id")
    _refuse_unless_due(retention, "")
    for other in elsewhere:
        held = retention_of(other, cmd.learner_id, portfolios, today)
        if held.status is not Status.ERASED:
            _refuse_unless_due(held, " at another centre holding this learner")
    return e.SubjectErased(
        **stamp.fields(cmd.effective_on),
        centre_id=centre.centre_id,
        subject_id=cmd.learner_id,
        subject_role=e.Role.LEARNER,
        reason=cmd.reason,
    )


def _refuse_unless_due(retention: Retention, where: str) -> None:
    if retention.status is Status.HELD:
        raise LegalHoldApplies(f"cannot erase{where}: {retention.why}", field="learner_id")
    if retention.status is not Status.DUE:
        raise RetentionApplies(f"cannot erase{where}: {retention.why}", field="learner_id")


def _registered(centre: CentreState, learner_id: UUID) -> None:
    if learner_id not in centre.learners:
        raise NotFound(f"no learner {learner_id} at this centre", field="learner_id")
    if learner_id in centre.erased:
        raise LearnerErased(f"learner {learner_id} was erased", field="learner_id")
