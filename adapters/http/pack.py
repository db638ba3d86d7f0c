"""`GET /audit/pack`: the audit pack of a portfolio or a centre, as HTML or PDF.

Scoped like the export bundle it describes; read with the same time-travel parameters as
the reports, so the pack shows exactly what the API answers for them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from litestar import Controller, Response, get
from litestar.params import QueryParameter

from adapters.audit.pack.pack import live_pack
from adapters.audit.pack.render import PdfUnavailable, to_pdf
from adapters.http.dependencies import Services
from adapters.http.params import AsKnownAt, EffectiveAt, aware
from adapters.http.policy import Grant
from adapters.http.problems import READ, problem, responses
from adapters.http.writes import GrantDep, ServicesDep

PDF = "application/pdf"
HTML = "text/html; charset=utf-8"
Format = Literal["html", "pdf"]


def pack_response(  # noqa: PLR0917 - one call site per router, all by name
    services: Services,
    grant: Grant,
    portfolio_id: UUID | None,
    as_known_at: datetime | None,
    effective_at: date | None,
    format_: Format,
) -> Response[bytes]:
    """The pack of the grant's scope (the guard resolved and checked it)."""
    centre_id = grant.centre_id
    if portfolio_id is None and centre_id is None:
        raise problem(422, "name a portfolio_id or a centre_id", field="centre_id")
    html = live_pack(
        services.queries,
        services.audit,
        portfolio_id=portfolio_id,
        centre_id=None if portfolio_id is not None else centre_id,
        as_known_at=aware(as_known_at, "as_known_at"),
        effective_at=effective_at,
        made_by=f"{grant.principal.role.value} {grant.principal.subject_id}",
    )
    name = f"audit-pack-{portfolio_id or centre_id}"
    if format_ == "html":
        return Response(
            html.encode(),
            media_type=HTML,
            headers={"Content-Disposition": f'inline; filename="{name}.html"'},
        )
    try:
        document = to_pdf(html)
    except PdfUnavailable as error:
        raise problem(503, str(error), rule="pdf_renderer_missing") from None
    return Response(
        document,
        media_type=PDF,
        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
    )


class AuditPackController(Controller):
    path = "/audit"
    tags = ["audit trail"]

    @get(
        "/pack",
        operation_id="audit_pack",
        responses=responses(*READ, 422, 503),
        media_type=PDF,
        sync_to_thread=True,
    )
    def pack(
        self,
        *,
        services: ServicesDep,
        grant: GrantDep,
        portfolio_id: Annotated[UUID | None, QueryParameter()] = None,
        centre_id: Annotated[
            UUID | None, QueryParameter(description="The centre; a centre's staff: their own.")
        ] = None,
        as_known_at: AsKnownAt = None,
        effective_at: EffectiveAt = None,
        format: Annotated[Format, QueryParameter(description="pdf (default) or html")] = "pdf",
    ) -> Response[bytes]:
        """A printable audit pack: coverage matrix, sufficiency, decision chains, sampling,
        the checkpoint it was made against and how to verify it offline."""
        del centre_id  # the guard resolved it (and checked it) into the grant
        return pack_response(services, grant, portfolio_id, as_known_at, effective_at, format)
