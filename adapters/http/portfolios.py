"""Portfolios: enrolment, the portfolio itself (with its version as ETag) and its reports."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody

from adapters.http.params import AsKnownAt, EffectiveAt, aware
from adapters.http.problems import READ, WRITE, problem, responses
from adapters.http.request_bodies import Enrolment, to_command
from adapters.http.response_bodies import PortfolioView, Written
from adapters.http.writes import ETAG_HEADER, ServicesDep, WriterDep, etag
from domain import commands as c
from domain.errors import NotFound
from projections.audit import TrailEntry
from projections.coverage import CoverageReport
from projections.sufficiency import SufficiencyReport


class PortfoliosController(Controller):
    path = "/portfolios"
    tags = ["portfolios"]

    @post(
        "/",
        operation_id="enrol",
        responses=responses(*WRITE),
        response_headers=ETAG_HEADER,
        sync_to_thread=True,
    )
    def enrol(self, data: JSONBody[Enrolment], writer: WriterDep) -> Response[Written]:
        """Enrol a learner of the centre on a unit, with their assessor and IQA."""
        portfolio_id = writer.new_id(data.portfolio_id, "portfolio")
        command = to_command(data, c.Enrol, portfolio_id=portfolio_id)
        written = writer.run(command, created=portfolio_id)
        return Response(written, status_code=201, headers={"ETag": etag(written.version)})

    @get(
        "/{portfolio_id:uuid}",
        operation_id="get_portfolio",
        responses=responses(*READ),
        response_headers=ETAG_HEADER,
        sync_to_thread=True,
    )
    def get_portfolio(
        self, portfolio_id: FromPath[UUID], services: ServicesDep
    ) -> Response[PortfolioView]:
        """The portfolio as the ledger has it now; its ETag is the version If-Match names."""
        portfolio = services.app.portfolio(portfolio_id)
        return Response(PortfolioView.of(portfolio), headers={"ETag": etag(portfolio.version)})

    @get(
        "/{portfolio_id:uuid}/coverage",
        operation_id="get_coverage",
        responses=responses(*READ),
        sync_to_thread=True,
    )
    def get_coverage(
        self,
        portfolio_id: FromPath[UUID],
        services: ServicesDep,
        as_known_at: AsKnownAt = None,
        effective_at: EffectiveAt = None,
    ) -> CoverageReport:
        """Gap analysis: per criterion, the evidence and decision behind it, and what is missing."""
        return services.queries.coverage(
            portfolio_id,
            as_known_at=aware(as_known_at, "as_known_at"),
            effective_at=effective_at,
        )

    @get(
        "/{portfolio_id:uuid}/sufficiency",
        operation_id="get_sufficiency",
        responses=responses(*READ),
        sync_to_thread=True,
    )
    def get_sufficiency(
        self,
        portfolio_id: FromPath[UUID],
        services: ServicesDep,
        as_known_at: AsKnownAt = None,
        effective_at: EffectiveAt = None,
    ) -> SufficiencyReport:
        """Occasions, dates, customers and span against the centre's policy (named by version)."""
        return services.queries.sufficiency(
            portfolio_id,
            as_known_at=aware(as_known_at, "as_known_at"),
            effective_at=effective_at,
        )

    @get(
        "/{portfolio_id:uuid}/history",
        operation_id="get_history",
        responses=responses(*READ),
        sync_to_thread=True,
    )
    def get_history(
        self, portfolio_id: FromPath[UUID], services: ServicesDep, as_known_at: AsKnownAt = None
    ) -> list[TrailEntry]:
        """Every event of the portfolio, in order: who did what, when, on what evidence."""
        try:
            return services.queries.history(
                portfolio_id, as_known_at=aware(as_known_at, "as_known_at")
            )
        except NotFound as missing:
            if as_known_at is None:
                raise
            raise problem(404, missing.message, field="as_known_at") from missing
