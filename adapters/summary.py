"""The bundle's human-readable summary: each portfolio's decisions and trail, as HTML.

Derived only from the exported events (through the same pure folds the audit view uses),
so what a reader sees is what the verifier checked. One self-contained file, no scripts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from html import escape
from uuid import UUID

from domain import events as e
from domain.centre import CentreState, fold_centre
from domain.portfolio import fold_portfolio
from projections import audit

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "td,th{border:1px solid #bbb;padding:.2rem .5rem;text-align:left;vertical-align:top}"
    "th{background:#eee}code{font-size:.85em}"
)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_summary(
    events: Sequence[tuple[int, e.Event]], *, scope: str, checkpoint: Sequence[tuple[str, str]]
) -> str:
    """The summary page of `events` (position, event), in log order."""
    centre_events: dict[UUID, list[e.CentreEvent]] = defaultdict(list)
    portfolio_events: dict[UUID, list[tuple[int, e.PortfolioEvent]]] = defaultdict(list)
    for position, event in events:
        if isinstance(event, e.CentreEvent):
            centre_events[event.centre_id].append(event)
        elif isinstance(event, e.PortfolioEvent):
            portfolio_events[event.portfolio_id].append((position, event))
    centres = {cid: fold_centre(evs) for cid, evs in centre_events.items()}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Audit bundle: {escape(scope)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Audit bundle: {escape(scope)}</h1>",
        "<p>Check this bundle with <code>eportfolio verify BUNDLE.zip</code>: it verifies the "
        "signatures and that every event below is the one the checkpoint covers.</p>",
        _table(("checkpoint", ""), checkpoint),
    ]
    for centre in centres.values():
        if centre is not None:
            parts.append(_centre(centre))
    for portfolio_id, items in portfolio_events.items():
        parts.append(_portfolio(portfolio_id, items, centres))
    parts.append("</body></html>\n")
    return "".join(parts)


def _centre(centre: CentreState) -> str:
    staff = [
        (m.name, m.role.value, m.qualifications[-1][1].value, str(m.staff_id))
        for m in sorted(centre.staff.values(), key=lambda m: (m.name, m.role))
    ]
    return (
        f"<h2>Centre: {escape(centre.name)}</h2>"
        + _table(("staff", "role", "qualification now", "id"), staff)
        + f"<p>{len(centre.learners)} learners, {len(centre.evs)} external verifiers.</p>"
    )


def _portfolio(
    portfolio_id: UUID,
    items: list[tuple[int, e.PortfolioEvent]],
    centres: dict[UUID, CentreState | None],
) -> str:
    state = fold_portfolio([event for _, event in items])
    heading = f"<h2>Portfolio {portfolio_id}</h2>"
    if state is None:
        return heading + "<p>Its enrolment is not in this bundle.</p>"
    centre = centres.get(state.centre_id)
    names = audit.names(centre) if centre is not None else {}
    learner = audit.name_of(names, state.learner_id, e.Role.LEARNER)
    facts = _table(
        ("learner", "unit", "assessor", "IQA", "events"),
        [
            (
                learner,
                f"{state.unit_code} v{state.spec_version}",
                audit.name_of(names, state.assessor_id, e.Role.ASSESSOR),
                audit.name_of(names, state.iqa_id, e.Role.IQA),
                len(items),
            )
        ],
    )
    chains = [
        (
            chain.decided_on,
            chain.outcome.value,
            ", ".join(chain.criteria),
            chain.assessor.name,
            chain.countersignature.name if chain.countersignature else "",
            chain.state.value.replace("_", " "),
        )
        for chain in audit.decision_chains(state, names)
    ]
    decisions = _table(
        ("decided", "outcome", "criteria", "assessor", "countersigned by", "stands?"), chains
    )
    trail = [
        (t.position, t.recorded_at.isoformat(), t.effective_on, t.actor_name, t.summary)
        for t in audit.trail(items, names)
    ]
    return f"{heading}{facts}<h3>Decisions</h3>{decisions}<h3>Trail</h3>" + _table(
        ("position", "recorded", "effective", "who", "what"), trail
    )
