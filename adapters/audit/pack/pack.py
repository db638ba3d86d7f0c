"""The audit pack of a portfolio or a centre, live (API, CLI, desk) or from a bundle's events.

Live, it reads what the API answers for the same time-travel parameters and is made
against the latest signed checkpoint. In an export bundle it is the summary: the same
document folded from the exported events (what the verifier checks), against the
checkpoint the bundle is cut at.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from adapters.audit.pack.proof import proof_at, proof_of, verifier_key
from adapters.audit.pack.render import day, render_pack, when
from adapters.audit.pack.sections import portfolio_sections
from adapters.audit.pack.sheet import (
    CentreSheet,
    PortfolioSheet,
    assemble,
    centre_sheet,
    portfolio_sheet,
)
from domain import events as e
from domain.centre import CentreState, fold_centre
from domain.portfolio import fold_portfolio
from domain.spec import SpecCatalogue, UnitSpec
from projections import audit
from projections.judgement import coverage_of, sufficiency_of
from projections.sampling import sampling_compliance
from service.queries import Queries

if TYPE_CHECKING:
    from adapters.audit.parts import Audit


def moment(as_known_at: datetime | None, effective_at: date | None) -> str:
    """The banner's words: which moment a page or a pack shows."""
    known = f"as known at {when(as_known_at)}" if as_known_at else "as known now"
    if effective_at is None:
        return f"{known}: every event recorded by then." if as_known_at else f"{known}."
    return f"{known}, counting only what was effective on or before {day(effective_at)}."


def live_pack(
    queries: Queries,
    log: Audit,
    *,
    portfolio_id: UUID | None = None,
    centre_id: UUID | None = None,
    as_known_at: datetime | None = None,
    effective_at: date | None = None,
    made_by: str = "",
) -> str:
    """The pack's HTML for one portfolio, or for a centre and all its portfolios."""
    centre: CentreSheet | None = None
    if portfolio_id is not None:
        sheet = portfolio_sheet(
            queries, portfolio_id, as_known_at=as_known_at, effective_at=effective_at
        )
        portfolios: Sequence[PortfolioSheet] = (sheet,)
        title = f"{sheet.learner}, {sheet.unit_code} at {sheet.centre_name}"
        positions = [t.position for t in queries.history(portfolio_id)]
        hint = f"GET /audit/export?portfolio_id={portfolio_id}"
    elif centre_id is not None:
        centre = centre_sheet(
            queries, centre_id, as_known_at=as_known_at, effective_at=effective_at, history=True
        )
        portfolios = centre.portfolios
        title = centre.name
        positions = _centre_positions(queries, centre_id)
        hint = f"GET /audit/export?centre_id={centre_id}"
    else:
        msg = "a pack is of a portfolio or of a centre"
        raise ValueError(msg)
    return render_pack(
        _context(
            title=title,
            made_by=made_by,
            source="Read from the live service: the same answers the API gives.",
            moment=moment(as_known_at, effective_at),
            centre=centre,
            portfolios=portfolios,
            proof=proof_of(log, positions),
            vkey=verifier_key(log),
            bundle_hint=hint,
        )
    )


def _centre_positions(queries: Queries, centre_id: UUID) -> list[int]:
    ledger = queries.app.ledger
    streams = [centre_id, *queries.centre_portfolios(centre_id)]
    return [position for stream in streams for position in ledger.positions_of(stream).values()]


def _context(**values: Any) -> dict[str, Any]:
    return {"made_at": datetime.now(UTC)} | values


# ---- from a bundle's events -------------------------------------------------------------


def bundle_pack(
    events: Sequence[tuple[int, e.Event]],
    *,
    scope: str,
    checkpoint: e.CheckpointIssued,
    covered_up_to: int,
    vkey: str,
    specs: SpecCatalogue,
) -> str:
    """The pack of the exported events (position, event), for the bundle's summary.html."""
    context = bundle_context(
        events, scope=scope, checkpoint=checkpoint, covered_up_to=covered_up_to, vkey=vkey,
        specs=specs,
    )  # fmt: skip
    return render_with_sections(context)


def render_with_sections(context: dict[str, Any]) -> str:
    """`render_pack(context)`, its portfolios' sections written by `sections` (the same
    bytes, several times faster): the rest of the page is the template's, rendered without
    them, and the sections go where its loop over them would have put them."""
    page = render_pack(context | {"portfolios": ()})
    at = page.index(_PROOF)
    return page[:at] + portfolio_sections(context["portfolios"]) + page[at:]


_PROOF = '\n<section class="proof">'


def bundle_context(
    events: Sequence[tuple[int, e.Event]],
    *,
    scope: str,
    checkpoint: e.CheckpointIssued,
    covered_up_to: int,
    vkey: str,
    specs: SpecCatalogue,
) -> dict[str, Any]:
    """What the bundle's page of the exported events (position, event) shows."""
    centre_events: dict[UUID, list[e.CentreEvent]] = defaultdict(list)
    portfolio_events: dict[UUID, list[tuple[int, e.PortfolioEvent]]] = defaultdict(list)
    for position, event in events:
        if isinstance(event, e.CentreEvent):
            centre_events[event.centre_id].append(event)
        elif isinstance(event, e.PortfolioEvent):
            portfolio_events[event.portfolio_id].append((position, event))
    centres = {cid: c for cid, evs in centre_events.items() if (c := fold_centre(evs))}
    sheets: list[PortfolioSheet] = []
    contexts: list[audit.DecisionChainWithContext] = []
    names_at = {cid: audit.names(centre) for cid, centre in centres.items()}
    units: dict[tuple[str, str], UnitSpec | None] = {}  # a centre's portfolios share units
    for items in portfolio_events.values():
        state = fold_portfolio([event for _, event in items])
        centre = centres.get(state.centre_id) if state else None
        if state is None or centre is None:
            continue  # its enrolment or its centre is not in this bundle
        names = names_at[centre.centre_id]
        unit = (state.unit_code, state.spec_hash)
        if unit not in units:
            units[unit] = specs.by_hash(*unit)
        if (spec := units[unit]) is None:
            continue
        with_context = audit.chains_with_context(state, names)
        contexts.extend(with_context)
        sheets.append(
            assemble(
                state,
                centre,
                spec,
                coverage=coverage_of(state, centre, spec),
                sufficiency=sufficiency_of(state, centre, spec),
                chains=[c.chain for c in with_context],  # = audit.decision_chains
                history=audit.trail(items, names),
                names=names,
            )
        )
    centre_sheet_ = _bundle_centre(centres, sheets, contexts) if len(centres) == 1 else None
    return _context(
        title=f"bundle of {scope}",
        made_at=checkpoint.recorded_at,  # the same bundle, the same bytes
        made_by="",
        source="Folded from this bundle's own events: what `eportfolio verify` checks.",
        moment=f"as known at {when(checkpoint.recorded_at)}, the checkpoint the bundle is cut at.",
        centre=centre_sheet_,
        portfolios=sheets,
        proof=proof_at(checkpoint, covered_up_to, [p for p, _ in events]),
        vkey=vkey,
        bundle_hint="this bundle",
    )


def _bundle_centre(
    centres: dict[UUID, CentreState],
    sheets: list[PortfolioSheet],
    contexts: list[audit.DecisionChainWithContext],
) -> CentreSheet:
    (centre,) = centres.values()
    return CentreSheet(
        centre_id=centre.centre_id,
        name=centre.name,
        portfolios=tuple(sheets),
        sampling=sampling_compliance(centre.sampling_plan, contexts),
    )
