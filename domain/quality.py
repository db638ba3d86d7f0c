"""Quality assurance of decisions: IQA and EV samples, and acting on what they find.

A sample never comes from anyone who signed the decision, nor from the learner, nor dates
from before the decision. A trainee IQA's sample counts once a qualified IQA countersigns
it. A sample that refers decisions back (or sets actions) stays open until the assessor
acts: a new decision, or a response that the sampler's side accepts — an EV for an EV
sample, an IQA for an IQA sample.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from domain import commands as c
from domain import events as e
from domain.assessment import Context
from domain.errors import (
    AlreadyCorrected,
    AlreadyExists,
    CountersignatureNotRequired,
    EvNotAllocated,
    IqaCountersignerNotQualified,
    NoOpenReferral,
    NotCentreStaff,
    NotPermitted,
    OwnDecision,
    SampleBeforeDecision,
)


def record_iqa_sample(ctx: Context, cmd: c.RecordIqaSample, stamp: c.Stamp) -> e.IqaSampleRecorded:
    actor = stamp.actor
    iqa = ctx.centre.staff_with_role(actor.id, e.Role.IQA)
    if actor.role is not e.Role.IQA or iqa is None:
        raise NotPermitted("only an IQA of this centre records an IQA sample")
    fields = cmd.event_fields(stamp)
    _check_sample(ctx, cmd.sample_id, cmd.decision_ids, actor, fields["effective_on"])
    qualification = iqa.qualification_on(fields["effective_on"])
    if qualification is None:
        raise NotCentreStaff("the IQA is not registered at this centre on that date")
    return e.IqaSampleRecorded(
        **fields, portfolio_id=ctx.portfolio.portfolio_id, iqa_qualification=qualification
    )


def record_ev_sample(ctx: Context, cmd: c.RecordEvSample, stamp: c.Stamp) -> e.EvSampleRecorded:
    actor = stamp.actor
    if actor.role is not e.Role.EV or actor.id not in ctx.centre.evs:
        raise EvNotAllocated("only an EV allocated to this centre samples its portfolios")
    fields = cmd.event_fields(stamp)
    _check_sample(ctx, cmd.sample_id, cmd.decision_ids, actor, fields["effective_on"])
    return e.EvSampleRecorded(**fields, portfolio_id=ctx.portfolio.portfolio_id)


def _check_sample(
    ctx: Context, sample_id: UUID, decision_ids: tuple[UUID, ...], actor: c.Actor, day: date
) -> None:
    if sample_id in ctx.portfolio.sample_ids:
        raise AlreadyExists(f"sample {sample_id} already exists", field="sample_id")
    ctx.not_the_learner(actor.id, "a sampler")
    for decision_id in decision_ids:
        decision = ctx.decision(decision_id, field="decision_ids")
        if actor.id in decision.signers():
            raise OwnDecision("nobody samples a decision they made or countersigned")
        if day < decision.effective_on:
            raise SampleBeforeDecision(
                f"the sample is dated {day}, before the decision of {decision.effective_on}",
                field="effective_on",
            )


def countersign_iqa_sample(
    ctx: Context, cmd: c.CountersignIqaSample, stamp: c.Stamp
) -> e.IqaSampleCountersigned:
    """A qualified IQA (never the trainee who sampled) countersigns a trainee IQA's sample."""
    sample = ctx.sample(cmd.sample_id)
    if sample.role is not e.Role.IQA or sample.qualification is e.Qualification.QUALIFIED:
        raise CountersignatureNotRequired("only a trainee IQA's sample is countersigned")
    if sample.countersigned_by is not None:
        raise AlreadyCorrected("the sample is already countersigned", field="sample_id")
    if stamp.actor.id == sample.actor_id:
        raise OwnDecision("nobody countersigns their own sample")
    fields = cmd.event_fields(stamp)
    actor, day = stamp.actor, fields["effective_on"]
    if not ctx.centre.qualified_as(actor.id, actor.role, e.Role.IQA, day):
        raise IqaCountersignerNotQualified(
            "a trainee IQA's sample is countersigned by a qualified IQA of this centre"
        )
    ctx.not_the_learner(stamp.actor.id, "the countersigner")
    return e.IqaSampleCountersigned(**fields, portfolio_id=ctx.portfolio.portfolio_id)


def respond_to_sample(ctx: Context, cmd: c.RespondToSample, stamp: c.Stamp) -> e.SampleResponded:
    """The assessor acts on a referral (or the actions an EV set) by responding to it."""
    ctx.require_assessor(stamp.actor)
    sample = ctx.sample(cmd.sample_id)
    if not sample.open:
        raise NoOpenReferral("the sample referred nothing back and set no actions, or is closed")
    return e.SampleResponded(**cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id)


def accept_sample_response(
    ctx: Context, cmd: c.AcceptSampleResponse, stamp: c.Stamp
) -> e.SampleResponseAccepted:
    """An EV accepts the response to an EV sample, an IQA to an IQA sample: it closes."""
    sample = ctx.sample(cmd.sample_id)
    actor = stamp.actor
    if sample.role is e.Role.EV:
        if actor.role is not e.Role.EV or actor.id not in ctx.centre.evs:
            raise EvNotAllocated("an EV allocated to this centre accepts the response")
    elif actor.role is not e.Role.IQA or ctx.centre.staff_with_role(actor.id, e.Role.IQA) is None:
        raise NotPermitted("an IQA of this centre accepts the response to an IQA sample")
    if not sample.open:
        raise NoOpenReferral("the sample referred nothing back and set no actions, or is closed")
    if not sample.responded:
        raise NoOpenReferral("the assessor has not responded to this sample yet")
    ctx.not_the_learner(actor.id, "the one who accepts a response")
    sampled = [d for d in ctx.portfolio.decisions.values() if sample in d.samples()]
    if any(actor.id in d.signers() for d in sampled):
        raise OwnDecision("nobody accepts a response about a decision they signed")
    return e.SampleResponseAccepted(
        **cmd.event_fields(stamp), portfolio_id=ctx.portfolio.portfolio_id
    )
