"""Lookups the policy guard makes before a handler runs: whose portfolio, which decision.

Each is one stored read, whatever the size of the portfolio or the centre, so deciding who
may touch a thing never costs a fold.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from domain.errors import NotFound
from domain.events import LearnerEnrolled
from projections.documents import DECISION, DecisionPlace
from service.handlers import Eportfolio
from service.queries import ViewReader

_decision_place = msgspec.json.Decoder(DecisionPlace).decode


def enrolment(app: Eportfolio, portfolio_id: UUID) -> LearnerEnrolled:
    """A portfolio's enrolment (its first event): whose it is, at which centre, who assesses.

    At most one event read, whatever the portfolio's size, and none once the ledger holds
    it: enough to decide who may touch it.
    """
    event = app.ledger.enrolment(portfolio_id)
    if event is None:
        raise NotFound(f"no portfolio {portfolio_id}", field="portfolio_id")
    return event


def decision_portfolio(view: ViewReader, decision_id: UUID, centre_id: UUID) -> UUID | None:
    """Which of the centre's portfolios holds a decision: one stored lookup.

    The view may lag the log: a caller that misses should wait for the views to reach the
    log's head and ask again before saying "no such decision".
    """
    body = view.get(DECISION, str(decision_id))
    if body is None:
        return None
    place = _decision_place(body)
    return place.portfolio_id if place.centre_id == centre_id else None
