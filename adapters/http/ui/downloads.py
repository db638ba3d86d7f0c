"""The desk's downloads: CSV for spreadsheets, the audit pack, the export bundle."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import anyio.to_thread
from litestar import Controller, Response, get
from litestar.params import FromPath, FromQuery, QueryParameter

from adapters.audit.export import ExportError
from adapters.audit.pack.sheet import PortfolioSheet, centre_sheet, portfolio_sheet
from adapters.audit.pack.tables import coverage_csv, decisions_csv
from adapters.audit.signing import SigningKeyError
from adapters.http.dependencies import Services
from adapters.http.pack import pack_response
from adapters.http.params import AsKnownAt, EffectiveAt, aware
from adapters.http.problems import problem
from adapters.http.writes import GrantDep, ServicesDep

CSV = "text/csv; charset=utf-8"
ZIP = "application/zip"


def _csv(text: str, name: str) -> Response[bytes]:
    return Response(
        text.encode("utf-8-sig"),  # a BOM: spreadsheets then read UTF-8 names right
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _portfolio(
    services: Services, pid: UUID, known: datetime | None, effective: date | None
) -> list[PortfolioSheet]:
    at = aware(known, "as_known_at")
    return [
        portfolio_sheet(
            services.queries, pid, as_known_at=at, effective_at=effective, history=False
        )
    ]


def _centre(
    services: Services, cid: UUID, known: datetime | None, effective: date | None
) -> list[PortfolioSheet]:
    at = aware(known, "as_known_at")
    sheet = centre_sheet(services.queries, cid, as_known_at=at, effective_at=effective)
    return list(sheet.portfolios)


class DeskDownloads(Controller):
    path = "/ui"
    include_in_schema = False

    @get(
        "/portfolios/{portfolio_id:uuid}/coverage.csv",
        operation_id="ui_coverage_csv",
        sync_to_thread=True,
    )
    def coverage(
        self, portfolio_id: FromPath[UUID], services: ServicesDep,
        as_known_at: AsKnownAt = None, effective_at: EffectiveAt = None,
    ) -> Response[bytes]:  # fmt: skip
        sheets = _portfolio(services, portfolio_id, as_known_at, effective_at)
        return _csv(coverage_csv(sheets), f"coverage-{portfolio_id}")

    @get(
        "/portfolios/{portfolio_id:uuid}/decisions.csv",
        operation_id="ui_decisions_csv",
        sync_to_thread=True,
    )
    def decisions(
        self, portfolio_id: FromPath[UUID], services: ServicesDep,
        as_known_at: AsKnownAt = None, effective_at: EffectiveAt = None,
    ) -> Response[bytes]:  # fmt: skip
        sheets = _portfolio(services, portfolio_id, as_known_at, effective_at)
        return _csv(decisions_csv(sheets), f"decisions-{portfolio_id}")

    @get(
        "/centres/{centre_id:uuid}/coverage.csv",
        operation_id="ui_centre_coverage_csv",
        sync_to_thread=True,
    )
    def centre_coverage(
        self, centre_id: FromPath[UUID], services: ServicesDep,
        as_known_at: AsKnownAt = None, effective_at: EffectiveAt = None,
    ) -> Response[bytes]:  # fmt: skip
        sheets = _centre(services, centre_id, as_known_at, effective_at)
        return _csv(coverage_csv(sheets), f"coverage-{centre_id}")

    @get(
        "/centres/{centre_id:uuid}/decisions.csv",
        operation_id="ui_centre_decisions_csv",
        sync_to_thread=True,
    )
    def centre_decisions(
        self, centre_id: FromPath[UUID], services: ServicesDep,
        as_known_at: AsKnownAt = None, effective_at: EffectiveAt = None,
    ) -> Response[bytes]:  # fmt: skip
        sheets = _centre(services, centre_id, as_known_at, effective_at)
        return _csv(decisions_csv(sheets), f"decisions-{centre_id}")

    @get("/pack", operation_id="ui_pack", sync_to_thread=True)
    def pack(
        self, *, services: ServicesDep, grant: GrantDep,
        portfolio_id: Annotated[UUID | None, QueryParameter()] = None,
        centre_id: Annotated[UUID | None, QueryParameter()] = None,
        as_known_at: AsKnownAt = None, effective_at: EffectiveAt = None,
        format: FromQuery[Literal["html", "pdf"]] = "pdf",
    ) -> Response[bytes]:  # fmt: skip
        del centre_id  # resolved and checked by the guard
        response = pack_response(services, grant, portfolio_id, as_known_at, effective_at, format)
        response.headers["Content-Security-Policy"] = PACK_CSP
        return response

    @get("/export", operation_id="ui_export")
    async def export(
        self, services: ServicesDep, grant: GrantDep,
        portfolio_id: Annotated[UUID | None, QueryParameter()] = None,
        centre_id: Annotated[UUID | None, QueryParameter()] = None,
    ) -> Response[bytes]:  # fmt: skip
        """The export bundle of what this person may see, cut at the latest checkpoint."""
        del centre_id  # resolved and checked by the guard
        centre = grant.centre_id
        try:
            bundle = await anyio.to_thread.run_sync(
                lambda: services.audit.export(
                    centre=centre, portfolio=portfolio_id, checkpoint=False
                )
            )
        except ExportError as error:
            raise problem(409, str(error), rule="no_checkpoint") from None
        except SigningKeyError as error:
            raise problem(
                503, f"the log has no signing key: {error}", rule="no_signing_key"
            ) from None
        name = f"eportfolio-{portfolio_id or centre}-{bundle.manifest.tree_size}.zip"
        return Response(
            bundle.data, media_type=ZIP,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )  # fmt: skip


#: The pack is one self-contained document: its own inline style, nothing else at all.
PACK_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
