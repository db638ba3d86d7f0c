"""Closing a unit: the assessor's sign-off, certification, withdrawal, and appeals.

Certification means something only if it was refused while anything was missing, so it
lists every reason: coverage gaps, failed sufficiency figures, no current sign-off, an IQA
summative sample the centre's sampling plan requires, an EV referral or action still open.
A certified or withdrawn portfolio is closed to assessment (`portfolio_rules.check_open`); the
centre opens an appeal to reopen it, on the record.
"""

from __future__ import annotations

from domain import commands as c
from domain import events as e
from domain.assessment import Context
from domain.centre import require_centre_admin
from domain.errors import (
    AlreadyExists,
    CertificationRefused,
    PortfolioNotClosed,
    UnitNotComplete,
)
from domain.portfolio import PortfolioState, Sample

#: What a centre without a sampling plan is held to.
DEFAULT_SUMMATIVE = e.SummativeRule.TRAINEE_ASSESSED


def sign_off_unit(ctx: Context, cmd: c.SignOffUnit, stamp: c.Stamp) -> e.UnitCompletionSignedOff:
    """The assessor signs off a unit whose coverage is complete and sufficient."""
    ctx.require_assessor(stamp.actor)
    portfolio, signed = ctx.portfolio, ctx.portfolio.signed_off
    if signed is not None and signed.version > portfolio.assessed_version:
        raise AlreadyExists(
            f"the unit was signed off on {signed.effective_on} and nothing "
            "assessed has changed since"
        )
    judgement = ctx.judgement()
    reasons = (*judgement.coverage_gaps, *judgement.sufficiency_failures)
    if reasons:
        raise UnitNotComplete(
            f"the unit is not complete ({len(reasons)} reasons): " + "; ".join(reasons),
            reasons=reasons,
        )
    return e.UnitCompletionSignedOff(
        **cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id
    )


def _centre_acts(ctx: Context, stamp: c.Stamp, what: str) -> None:
    """The centre's administrator acts, and never on their own portfolio."""
    require_centre_admin(ctx.centre, stamp.actor)
    ctx.not_the_learner(stamp.actor.id, f"the one who {what}")


def certify_unit(ctx: Context, cmd: c.CertifyUnit, stamp: c.Stamp) -> e.UnitCertified:
    _centre_acts(ctx, stamp, "certifies it")
    reasons = certification_blockers(ctx)
    if reasons:
        raise CertificationRefused(
            f"the unit cannot be certified ({len(reasons)} reasons): " + "; ".join(reasons),
            reasons=reasons,
        )
    policy = ctx.centre.sufficiency_policy
    return e.UnitCertified(
        **cmd.event_fields(stamp),
        portfolio_id=ctx.portfolio.portfolio_id,
        sufficiency_policy_version=policy.policy_version if policy else 0,
    )


def certification_blockers(ctx: Context) -> tuple[str, ...]:
    """Every reason the portfolio cannot be certified now, in words a centre can act on."""
    judgement = ctx.judgement()
    reasons = [f"Coverage: {gap}" for gap in judgement.coverage_gaps]
    reasons += [f"Sufficiency: {why}" for why in judgement.sufficiency_failures]
    reasons += _sign_off(ctx.portfolio)
    reasons += _summative(ctx)
    reasons += [_open_words(s) for s in ctx.portfolio.open_ev_samples()]
    return tuple(reasons)


def _sign_off(portfolio: PortfolioState) -> list[str]:
    signed = portfolio.signed_off
    if signed is None:
        return ["The assessor has not signed off unit completion"]
    if signed.version < portfolio.assessed_version:
        return [
            f"The assessor's sign-off of {signed.effective_on} predates later decisions or "
            "withdrawals: the assessor signs off again"
        ]
    return []


def _summative(ctx: Context) -> list[str]:
    plan = ctx.centre.sampling_plan
    rule = plan.summative_before_certification if plan else DEFAULT_SUMMATIVE
    portfolio = ctx.portfolio
    trainee = any(d.needs_countersignature and not d.revoked for d in portfolio.decisions.values())
    if rule is e.SummativeRule.NONE or (rule is e.SummativeRule.TRAINEE_ASSESSED and not trainee):
        return []
    which = f"sampling plan v{plan.plan_version}" if plan else "default sampling rule (no plan)"
    why = "every portfolio" if rule is e.SummativeRule.EVERY_PORTFOLIO else "trainee-assessed work"
    samples = [
        s
        for d in portfolio.decisions_in_order()
        if not d.revoked
        for s in d.iqa_samples
        if s.stage is e.SampleStage.SUMMATIVE
    ]
    counted = sorted(
        {s.sample_id: s for s in samples if s.counts}.values(), key=lambda s: s.recorded_at
    )
    need = f"The {which} requires an agreed IQA summative sample of {why} before certification"
    if not counted:
        pending = any(not s.counts for s in samples)
        state = "the trainee IQA's sample awaits countersignature" if pending else "none recorded"
        return [f"{need}: {state}"]
    latest = counted[-1]
    if latest.outcome is not e.SampleOutcome.AGREED and not latest.accepted:
        return [f"{need}: the latest, of {latest.effective_on}, referred decisions back"]
    return []


def _open_words(sample: Sample) -> str:
    what = "referred decisions back" if sample.outcome is e.SampleOutcome.REFERRED else ""
    if sample.actions:
        actions = f"set {sample.actions} action{'s' if sample.actions != 1 else ''}"
        what = f"{what} and {actions}" if what else actions
    state = "the assessor's response awaits the EV" if sample.responded else "no response yet"
    return f"The EV's sample of {sample.effective_on} {what}: not yet closed ({state})"


def withdraw_learner(ctx: Context, cmd: c.WithdrawLearner, stamp: c.Stamp) -> e.LearnerWithdrawn:
    _centre_acts(ctx, stamp, "withdraws them")
    return e.LearnerWithdrawn(**cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id)


def open_appeal(ctx: Context, cmd: c.OpenAppeal, stamp: c.Stamp) -> e.AppealOpened:
    """The centre reopens a certified or withdrawn portfolio, with the appeal's reason."""
    _centre_acts(ctx, stamp, "opens an appeal")
    if not ctx.portfolio.closed:
        raise PortfolioNotClosed("the portfolio is open: an appeal reopens a closed one")
    if cmd.appeal_id in ctx.portfolio.appeal_ids:
        raise AlreadyExists(f"appeal {cmd.appeal_id} already exists", field="appeal_id")
    return e.AppealOpened(**cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id)
