"""The desk's pages: home, a centre, its audit trail, a portfolio (all read-only)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from adapters.audit.pack.proof import proof_of
from adapters.audit.pack.sheet import centre_sheet, portfolio_sheet
from adapters.http.params import AsKnownAt, EffectiveAt, aware
from adapters.http.ui.context import Moment, allocated_centres, page
from adapters.http.writes import GrantDep, ServicesDep
from domain.events import CENTRE_EVENTS, PORTFOLIO_EVENTS, Role
from projections.audit import names

TRAIL_PAGE = 50


def moment_of(as_known_at: AsKnownAt, effective_at: EffectiveAt) -> Moment:
    return Moment(as_known_at=aware(as_known_at, "as_known_at"), effective_at=effective_at)


class DeskPages(Controller):
    path = "/ui"
    include_in_schema = False

    @get("/", operation_id="ui_home", sync_to_thread=True)
    def home(
        self, request: Request[Any, Any, Any], services: ServicesDep, grant: GrantDep
    ) -> Template:
        """Where this person may go: their centre, their allocated centres, their portfolios."""
        who = grant.principal
        centres: list[tuple[UUID, str]] = []
        portfolios: list[tuple[UUID, str, str]] = []
        if who.role is Role.EV:
            centres = allocated_centres(services, who.subject_id)
        elif who.role is Role.LEARNER:
            for state in services.app.ledger.learner_portfolios(who.subject_id):
                centre = services.app.centre(state.centre_id)
                portfolios.append((state.portfolio_id, state.unit_code, centre.name))
        elif who.centre_id is not None:
            centres = [(who.centre_id, services.app.centre(who.centre_id).name)]
        return page(
            request, services, grant, "home.html", title="Your desk",
            centres=centres, portfolios=portfolios,
        )  # fmt: skip

    @get("/centres/{centre_id:uuid}", operation_id="ui_centre", sync_to_thread=True)
    def centre(
        self,
        *,
        request: Request[Any, Any, Any],
        centre_id: FromPath[UUID],
        services: ServicesDep,
        grant: GrantDep,
        as_known_at: AsKnownAt = None,
        effective_at: EffectiveAt = None,
    ) -> Template:
        when = moment_of(as_known_at, effective_at)
        sheet = centre_sheet(
            services.queries, centre_id, as_known_at=when.as_known_at, effective_at=effective_at
        )
        return page(
            request, services, grant, "centre.html", title=f"Centre: {sheet.name}",
            when=when, centre=sheet,
        )  # fmt: skip

    @get("/centres/{centre_id:uuid}/trail", operation_id="ui_trail", sync_to_thread=True)
    def trail(  # noqa: PLR0917 - the API's filters, each a query parameter
        self,
        request: Request[Any, Any, Any],
        centre_id: FromPath[UUID],
        services: ServicesDep,
        grant: GrantDep,
        as_known_at: AsKnownAt = None,
        effective_at: EffectiveAt = None,
        after: Annotated[int, QueryParameter(ge=0)] = 0,
        event_type: Annotated[str | None, QueryParameter(max_length=200)] = None,
        portfolio_id: Annotated[UUID | None, QueryParameter()] = None,
        person_id: Annotated[UUID | None, QueryParameter()] = None,
    ) -> Template:
        """The centre's trail, a page at a time, as `GET /centres/{id}/audit` pages it."""
        when = moment_of(as_known_at, effective_at)
        event_type = event_type or None
        audit = services.queries.audit(
            centre_id,
            as_known_at=when.as_known_at,
            after=after,
            limit=TRAIL_PAGE,
            event_type=event_type,
            portfolio_id=portfolio_id,
            person_id=person_id,
        )
        centre = services.queries.centre_at(centre_id, as_known_at=when.as_known_at)
        return page(
            request, services, grant, "trail.html", title=f"Audit trail: {centre.name}",
            when=when, centre=centre, audit=audit, after=after,
            filters={"event_type": event_type or "", "portfolio_id": portfolio_id or "",
                     "person_id": person_id or ""},
            portfolios=services.queries.centre_portfolios(centre_id),
            people=sorted(names(centre).items(), key=lambda item: item[1]),
            event_types=_EVENT_TYPES,
        )  # fmt: skip

    @get("/portfolios/{portfolio_id:uuid}", operation_id="ui_portfolio", sync_to_thread=True)
    def portfolio(
        self,
        *,
        request: Request[Any, Any, Any],
        portfolio_id: FromPath[UUID],
        services: ServicesDep,
        grant: GrantDep,
        as_known_at: AsKnownAt = None,
        effective_at: EffectiveAt = None,
    ) -> Template:
        when = moment_of(as_known_at, effective_at)
        sheet = portfolio_sheet(
            services.queries, portfolio_id, as_known_at=when.as_known_at, effective_at=effective_at
        )
        positions = [t.position for t in services.queries.history(portfolio_id)]
        return page(
            request, services, grant, "portfolio.html",
            title=f"Portfolio: {sheet.learner}, {sheet.unit_code}", when=when, sheet=sheet,
            proof=proof_of(services.audit, positions),
        )  # fmt: skip


_EVENT_TYPES = tuple((cls.TOPIC, cls.__name__) for cls in (*CENTRE_EVENTS, *PORTFOLIO_EVENTS))
