"""CSV downloads for spreadsheets: the coverage matrix and the decision chains of a sheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from adapters.audit.pack.render import day, when, words
from adapters.audit.pack.sheet import PortfolioSheet
from projections.audit import DecisionChain, SampleView

COVERAGE_HEADER = (
    "portfolio_id", "learner", "unit", "id", "area", "status", "complete", "must_observe",
    "observed", "inferable", "evidence", "decision_id", "decision_state", "gaps",
)  # fmt: skip
DECISIONS_HEADER = (
    "portfolio_id", "learner", "unit", "decision_id", "decided_on", "outcome", "criteria",
    "assessor", "assessor_qualification", "countersigned_by", "iqa_samples", "ev_samples",
    "state", "lapsed",
)  # fmt: skip


def coverage_csv(sheets: Iterable[PortfolioSheet]) -> str:
    rows: list[Sequence[object]] = [COVERAGE_HEADER]
    for sheet in sheets:
        for row in sheet.rows:
            c = row.criterion
            evidence = "; ".join(
                f"{cell.method} {cell.effective_on.isoformat()} {cell.environment}"
                f" by {cell.recorded_by}{'' if cell.counts else ' (does not count)'}"
                for cell in row.evidence
            )
            rows.append(
                (
                    sheet.portfolio_id, sheet.learner, sheet.unit_code, c.id, c.area.value,
                    c.status.value, _yes(c.complete), _yes(c.must_observe), _yes(c.observed),
                    "" if c.inferable is None else _yes(c.inferable), evidence,
                    c.decision_id or "", words(row.decision.state) if row.decision else "",
                    " | ".join(c.gaps),
                )
            )  # fmt: skip
    return _csv(rows)


def decisions_csv(sheets: Iterable[PortfolioSheet]) -> str:
    rows: list[Sequence[object]] = [DECISIONS_HEADER]
    for sheet in sheets:
        for chain in sheet.chains:
            rows.append(_decision(sheet, chain))
    return _csv(rows)


def _decision(sheet: PortfolioSheet, chain: DecisionChain) -> Sequence[object]:
    counter = chain.countersignature
    return (
        sheet.portfolio_id, sheet.learner, sheet.unit_code, chain.decision_id,
        chain.decided_on.isoformat(), chain.outcome.value, " ".join(chain.criteria),
        chain.assessor.name, chain.assessor.qualification.value,
        f"{counter.name} ({when(counter.signed_at)})" if counter else "",
        _samples(chain.iqa_samples), _samples(chain.ev_samples), chain.state.value,
        " ".join(chain.lapsed),
    )  # fmt: skip


def _samples(samples: Iterable[SampleView]) -> str:
    return "; ".join(
        f"{s.actor_name} {words(s.outcome)} {day(s.recorded_at)}"
        + ("" if s.counts else " (awaiting countersignature)")
        for s in samples
    )


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _csv(rows: Iterable[Sequence[object]]) -> str:
    """RFC 4180; a cell a spreadsheet would run as a formula is prefixed with an apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text
