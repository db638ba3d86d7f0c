"""Sheets: what a page or a pack shows about a portfolio or a centre, gathered once.

Every judgement on a sheet (coverage, gaps, sufficiency, decision chains, sampling) is the
read side's own report, taken as it is: from `Queries` (what the API answers, with the same
time-travel parameters) for the desk and the pack, or from the same pure folds over the
exported events for a bundle's summary. A sheet only arranges them for reading and adds
the records' facts a reader needs beside them (who recorded a piece of evidence, where).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from uuid import UUID

from domain import events as e
from domain.centre import CentreState
from domain.errors import NotFound
from domain.portfolio import PortfolioState
from domain.spec import UnitSpec
from projections import audit
from projections.coverage import CoverageReport, CriterionCoverage, EvidenceRef
from projections.sampling import SamplingCompliance
from projections.sufficiency import SufficiencyReport
from service.queries import Queries


@dataclass(frozen=True)
class EvidenceCell:
    """One piece of evidence mapped to a row: the coverage report's reference plus its facts."""

    evidence_id: UUID
    method: str
    effective_on: date
    environment: str
    recorded_by: str
    counts: bool
    withdrawn: bool


@dataclass(frozen=True)
class MatrixRow:
    """One row of the coverage matrix: a criterion, statement, range item or requirement."""

    criterion: CriterionCoverage
    text: str
    evidence: tuple[EvidenceCell, ...]
    decision: audit.DecisionChain | None


@dataclass(frozen=True)
class Sampling:
    """A portfolio's decisions by how far their signature chains reach (from the chains)."""

    decisions: int
    iqa_sampled: int
    ev_sampled: int
    referred: int
    pending: int


@dataclass(frozen=True)
class PortfolioSheet:
    portfolio_id: UUID
    centre_id: UUID
    centre_name: str
    learner_id: UUID
    learner: str
    unit_code: str
    unit_title: str
    spec_version: int
    assessor: str
    iqa: str
    certified_on: date | None
    withdrawn_on: date | None
    coverage: CoverageReport
    sufficiency: SufficiencyReport
    rows: tuple[MatrixRow, ...]
    chains: tuple[audit.DecisionChain, ...]
    history: tuple[audit.TrailEntry, ...]

    @property
    def met(self) -> int:
        return sum(1 for row in self.coverage.criteria if row.complete)

    @property
    def total(self) -> int:
        return len(self.coverage.criteria)

    @property
    def sampling(self) -> Sampling:
        chains = self.chains
        return Sampling(
            decisions=len(chains),
            iqa_sampled=sum(1 for c in chains if any(s.counts for s in c.iqa_samples)),
            ev_sampled=sum(1 for c in chains if c.ev_samples),
            referred=sum(1 for c in chains if c.state is audit.ChainState.REFERRED),
            pending=sum(1 for c in chains if c.state is audit.ChainState.PENDING_COUNTERSIGNATURE),
        )


@dataclass(frozen=True)
class CentreSheet:
    centre_id: UUID
    name: str
    portfolios: tuple[PortfolioSheet, ...]
    sampling: SamplingCompliance
    ev_samples: tuple[audit.EvSampleView, ...] = ()
    staff: tuple[tuple[str, str, str], ...] = field(default=())  # name, role, qualification


@dataclass(frozen=True)
class Proof:
    """The checkpoint a sheet was read against, and how much of the scope it covers."""

    origin: str
    tree_size: int
    root_hash: str
    key_id: str
    issued_at: datetime
    signed_note: str
    covered_up_to: int  # the log position of the checkpoint's last leaf (0: none)
    events: int  # the scope's events
    included: int  # of them, at or before covered_up_to

    @property
    def complete(self) -> bool:
        return self.included == self.events


def texts(spec: UnitSpec | None) -> dict[str, str]:
    """Every row id of a unit with the words of the unit text."""
    if spec is None:
        return {}
    found = {c.id: c.text for c in spec.criteria}
    found |= {item.id: item.text for item in (spec.range.items if spec.range else ())}
    return found | {r.id: f"{r.group}: {r.text}" for r in spec.requirements}


def assemble(
    portfolio: PortfolioState,
    centre: CentreState,
    spec: UnitSpec | None,
    *,
    coverage: CoverageReport,
    sufficiency: SufficiencyReport,
    chains: Sequence[audit.DecisionChain],
    history: Sequence[audit.TrailEntry] = (),
    names: Mapping[UUID, str] | None = None,
) -> PortfolioSheet:
    """Lay the reports out for reading: rows in the report's order, names from the centre
    (`names`: `audit.names(centre)`, if already made)."""
    if names is None:
        names = audit.names(centre)
    by_id = {chain.decision_id: chain for chain in chains}
    words = texts(spec)

    made: dict[object, EvidenceCell] = {}  # an item cited by many rows is laid out once

    def cell(ref: EvidenceRef) -> EvidenceCell:
        key = (ref.evidence_id, ref.method, ref.effective_on, ref.counts)
        if (found := made.get(key)) is not None:
            return found
        item = portfolio.evidence.get(ref.evidence_id)
        author = audit.name_of(names, item.author_id) if item else ""
        made[key] = EvidenceCell(
            evidence_id=ref.evidence_id,
            method=ref.method.value,
            effective_on=ref.effective_on,
            environment=item.environment.value.replace("_", " ") if item else "",
            recorded_by=author,
            counts=ref.counts,
            withdrawn=bool(item and item.withdrawn),
        )
        return made[key]

    rows = tuple(
        MatrixRow(
            criterion=row,
            text=words.get(row.id, ""),
            evidence=tuple(cell(ref) for ref in row.evidence),
            decision=by_id.get(row.decision_id) if row.decision_id else None,
        )
        for row in coverage.criteria
    )
    return PortfolioSheet(
        portfolio_id=portfolio.portfolio_id,
        centre_id=portfolio.centre_id,
        centre_name=centre.name,
        learner_id=portfolio.learner_id,
        learner=audit.name_of(names, portfolio.learner_id, e.Role.LEARNER),
        unit_code=portfolio.unit_code,
        unit_title=spec.title if spec else "(this unit's specification is not in the catalogue)",
        spec_version=portfolio.spec_version,
        assessor=audit.name_of(names, portfolio.assessor_id, e.Role.ASSESSOR),
        iqa=audit.name_of(names, portfolio.iqa_id, e.Role.IQA),
        certified_on=portfolio.certified_on,
        withdrawn_on=portfolio.withdrawn_on,
        coverage=coverage,
        sufficiency=sufficiency,
        rows=rows,
        chains=tuple(chains),
        history=tuple(history),
    )


# ---- live: through the queries the API answers with ------------------------------------


def portfolio_sheet(
    queries: Queries,
    portfolio_id: UUID,
    *,
    as_known_at: datetime | None = None,
    effective_at: date | None = None,
    history: bool = True,
) -> PortfolioSheet:
    """A portfolio as `GET /portfolios/{id}/coverage|sufficiency|history` and the audit view
    answer for these parameters."""
    coverage = queries.coverage(portfolio_id, as_known_at=as_known_at, effective_at=effective_at)
    sufficiency = queries.sufficiency(
        portfolio_id, as_known_at=as_known_at, effective_at=effective_at
    )
    portfolio, _ = queries.portfolio_at(
        portfolio_id, as_known_at=as_known_at, effective_at=effective_at
    )
    centre = queries.centre_at(portfolio.centre_id, as_known_at=as_known_at)
    return assemble(
        portfolio,
        centre,
        _spec(queries, portfolio),
        coverage=coverage,
        sufficiency=sufficiency,
        chains=queries.decisions(portfolio_id, as_known_at=as_known_at),
        history=queries.history(portfolio_id, as_known_at=as_known_at) if history else (),
    )


def centre_sheet(
    queries: Queries,
    centre_id: UUID,
    *,
    as_known_at: datetime | None = None,
    effective_at: date | None = None,
    only: Iterable[UUID] | None = None,
    history: bool = False,
) -> CentreSheet:
    """A centre's portfolios (those enrolled by then; `only` narrows them) and its sampling
    as the audit view answers it."""
    page = queries.audit(centre_id, as_known_at=as_known_at, limit=1)
    centre = queries.centre_at(centre_id, as_known_at=as_known_at)
    wanted = None if only is None else set(only)
    sheets: list[PortfolioSheet] = []
    for portfolio_id in queries.centre_portfolios(centre_id):
        if wanted is not None and portfolio_id not in wanted:
            continue
        try:
            sheets.append(
                portfolio_sheet(
                    queries,
                    portfolio_id,
                    as_known_at=as_known_at,
                    effective_at=effective_at,
                    history=history,
                )
            )
        except NotFound:
            continue  # not enrolled yet at that time
    return CentreSheet(
        centre_id=centre_id,
        name=centre.name,
        portfolios=tuple(sheets),
        sampling=page.sampling,
        ev_samples=page.ev_samples,
        staff=_staff(centre, as_known_at),
    )


def _spec(queries: Queries, portfolio: PortfolioState) -> UnitSpec | None:
    try:
        return queries.app.spec_of(portfolio)
    except NotFound:
        return None


def _staff(centre: CentreState, when: datetime | None) -> tuple[tuple[str, str, str], ...]:
    day = when.date() if when else date.max
    rows = []
    for member in sorted(centre.staff.values(), key=lambda m: (m.name, m.role)):
        qualification = member.qualification_on(day)
        rows.append((member.name, member.role.value, qualification.value if qualification else ""))
    return tuple(rows)
