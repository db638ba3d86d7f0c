"""The portfolio stream's rules: one table, `RULES`, from command type to the rule deciding it.

The rules themselves are grouped by what they are about: assessment (`domain.assessment`),
quality assurance (`domain.quality`) and closing a unit (`domain.closing`). A rule reads the
portfolio through its `Context` — None before `Enrol` opens the stream — and anything else
through `domain.reads.Reads`. A certified or withdrawn portfolio is closed to assessment:
only quality assurance, and the appeal that reopens it, go on after that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from domain import assessment as a
from domain import closing as close
from domain import commands as c
from domain import events as e
from domain import quality as qa
from domain.errors import AlreadyExists, NotFound, PortfolioClosed
from domain.portfolio import PortfolioState
from domain.reads import Reads

PortfolioRule = Callable[[a.Context | None, Any, c.Stamp, Reads], e.PortfolioEvent]
"""Decides a command on a portfolio (None: not enrolled yet), reading others through Reads."""
_Rule = Callable[[a.Context, Any, c.Stamp], e.PortfolioEvent]


def enrol(ctx: a.Context | None, cmd: c.Enrol, stamp: c.Stamp, reads: Reads) -> e.LearnerEnrolled:
    """Opens the stream: the only rule on an absent portfolio."""
    if ctx is not None:
        raise AlreadyExists(f"{cmd.portfolio_id} already exists", field="portfolio_id")
    centre = reads.centre(cmd.centre_id)
    return a.enrol(centre, reads.spec(cmd.unit_code), cmd, stamp)


def _enrolled(ctx: a.Context | None) -> a.Context:
    if ctx is None:
        raise NotFound("no such portfolio", field="portfolio_id")
    return ctx


def _while_open(rule: _Rule) -> PortfolioRule:
    """An assessment rule: refused on a certified or withdrawn portfolio."""

    def decide(ctx: a.Context | None, cmd: Any, stamp: c.Stamp, reads: Reads) -> e.PortfolioEvent:
        enrolled = _enrolled(ctx)
        check_open(enrolled.portfolio)
        return rule(enrolled, cmd, stamp)

    return decide


def _even_when_closed(rule: _Rule) -> PortfolioRule:
    """Quality assurance and appeals: they go on after the portfolio is closed."""

    def decide(ctx: a.Context | None, cmd: Any, stamp: c.Stamp, reads: Reads) -> e.PortfolioEvent:
        return rule(_enrolled(ctx), cmd, stamp)

    return decide


def check_open(portfolio: PortfolioState) -> None:
    """Refuse every assessment write on a certified or withdrawn portfolio."""
    if portfolio.certified_on is not None:
        raise PortfolioClosed(
            f"the unit was certified on {portfolio.certified_on}: the portfolio is closed "
            "(the centre may open an appeal to reopen it)"
        )
    if portfolio.withdrawn_on is not None:
        raise PortfolioClosed(
            f"the learner was withdrawn on {portfolio.withdrawn_on}: the portfolio is closed "
            "(the centre may open an appeal to reopen it)"
        )


RULES: Mapping[type[c.Command], PortfolioRule] = {
    c.Enrol: enrol,
    c.SubmitEvidence: _while_open(a.submit_evidence),
    c.MapEvidence: _while_open(a.map_evidence),
    c.RecordObservation: _while_open(a.record_observation),
    c.RecordWitnessTestimony: _while_open(a.record_witness_testimony),
    c.RecordQuestioning: _while_open(a.record_questioning),
    c.RecordDecision: _while_open(a.record_decision),
    c.Countersign: _while_open(a.countersign),
    c.WithdrawEvidence: _while_open(a.withdraw_evidence),
    c.RevokeDecision: _while_open(a.revoke_decision),
    c.SignOffUnit: _while_open(close.sign_off_unit),
    c.CertifyUnit: _while_open(close.certify_unit),
    c.WithdrawLearner: _while_open(close.withdraw_learner),
    c.RecordIqaSample: _even_when_closed(qa.record_iqa_sample),
    c.RecordEvSample: _even_when_closed(qa.record_ev_sample),
    c.CountersignIqaSample: _even_when_closed(qa.countersign_iqa_sample),
    c.RespondToSample: _even_when_closed(qa.respond_to_sample),
    c.AcceptSampleResponse: _even_when_closed(qa.accept_sample_response),
    c.OpenAppeal: _even_when_closed(close.open_appeal),
}
