"""Erasing a learner: record the decision, then crypto-shred their key.

The order matters. `SubjectErased` is decided by the rules (retention, legal holds) and
saved first, so nothing is destroyed that the rules refuse; its reactions (the key here;
the composition root adds the learner's orphaned attachments and tokens) run right after.
Should the process die in between, asking again finds the learner already erased, runs
the reactions to the recorded erasure all the same and answers 409 `already_erased`:
asking twice completes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from uuid import UUID

import msgspec

from domain import commands as c
from domain.centre import CentreState
from domain.errors import AlreadyErased
from domain.events import Event, EvidenceSubmitted, SubjectErased
from domain.portfolio import PortfolioState
from domain.retention import Retention, retention_of
from service.handlers import Eportfolio, WriteResult
from service.ledger import Ledger
from service.reactions import Reaction


def erase_learner(
    app: Eportfolio,
    actor: c.Actor,
    centre_id: UUID,
    command: c.EraseLearner,
    *,
    idempotency_key: str | None = None,
) -> WriteResult:
    """Record the erasure (or refuse it, 409); its reactions destroy what must go."""
    try:
        return app.execute(actor, command, target=centre_id, idempotency_key=idempotency_key)
    except AlreadyErased:
        finish_erasure(app, centre_id, command.learner_id)
        raise


def finish_erasure(app: Eportfolio, centre_id: UUID, learner_id: UUID) -> None:
    """Run the reactions to a recorded erasure again (each is idempotent)."""
    for recorded in app.ledger.recorded(centre_id):
        event = recorded.event
        if isinstance(event, SubjectErased) and event.subject_id == learner_id:
            position = app.ledger.position_of(centre_id, recorded.originator_version)
            app.reactions.run(event, position)
            return


def destroy_key(ledger: Ledger) -> Reaction:
    """The reaction that crypto-shreds an erased subject (registered by `build`)."""

    def react(event: Event, _position: int) -> dict[str, int] | None:
        if not isinstance(event, SubjectErased):
            return None
        return {"keys_destroyed": int(ledger.destroy_key(event.subject_id))}

    return react


def attachments_of(app: Eportfolio, portfolio_ids: Iterable[UUID]) -> set[str]:
    """The SHA-256 of every attachment on these portfolios' evidence (hashes stay clear)."""
    return {
        attachment.sha256
        for portfolio_id in portfolio_ids
        for event in app.ledger.portfolio_events(portfolio_id)
        if isinstance(event, EvidenceSubmitted)
        for attachment in event.attachments
    }


def orphaned_attachments(app: Eportfolio, centre_id: UUID, learner_id: UUID) -> set[str]:
    """The learner's attachments that no other portfolio at the centre relies on.

    Blobs are content-addressed: the same file attached by two learners is one blob, and
    erasing one learner must not take the other's evidence with it.
    """
    mine: list[UUID] = []
    others: list[UUID] = []
    for enrolment in app.ledger.enrolments():
        if enrolment.centre_id == centre_id:
            is_mine = enrolment.learner_id == learner_id
            (mine if is_mine else others).append(enrolment.portfolio_id)
    return attachments_of(app, mine) - attachments_of(app, others)


class RetentionRow(msgspec.Struct, frozen=True, kw_only=True):
    """One learner in the retention report, with what may be deleted and why."""

    centre_id: UUID
    centre_name: str
    learner_name: str
    retention: Retention
    artefacts_deletable: tuple[str, ...] = ()  # units whose evidence files may go


def retention_report(
    app: Eportfolio, centre_ids: Iterable[UUID], today: date
) -> list[RetentionRow]:
    """Every learner of these centres: erased, held, in progress, retained until, or due."""
    portfolios_by_learner: dict[UUID, list[UUID]] = {}
    for enrolment in app.ledger.enrolments():
        portfolios_by_learner.setdefault(enrolment.learner_id, []).append(enrolment.portfolio_id)
    rows: list[RetentionRow] = []
    for centre_id in centre_ids:
        centre = app.centre(centre_id)
        for learner_id, name in centre.learners.items():
            states = [app.portfolio(p) for p in portfolios_by_learner.get(learner_id, [])]
            rows.append(
                RetentionRow(
                    centre_id=centre_id,
                    centre_name=centre.name,
                    learner_name=name,
                    retention=retention_of(centre, learner_id, states, today),
                    artefacts_deletable=_artefacts(centre, states, learner_id),
                )
            )
    return rows


def _artefacts(
    centre: CentreState, states: list[PortfolioState], learner_id: UUID
) -> tuple[str, ...]:
    """Units whose evidence files the policy lets go: closed, and sampled by an EV."""
    policy = centre.retention_policy
    if learner_id in centre.erased or (policy is not None and not policy.evidence_after_ev_sample):
        return ()
    return tuple(
        f"{state.unit_code} (EV sampled {sampled})"
        for state in states
        if state.closed_on is not None and (sampled := state.ev_sampled_on()) is not None
    )
