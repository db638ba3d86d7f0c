"""The litestar application: `create_app(config)` and nothing built before the server starts.

The services (ledger, views, token store, blobs) are opened in the ASGI lifespan, the
projections follow the log in the background while the server runs, and everything is
closed on shutdown. Every API route sits behind the one policy guard (`policy.authorize`).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from adapters.config import Config
from adapters.http.assessment import DecisionsController, PortfolioWritesController
from adapters.http.attachments import AttachmentsController
from adapters.http.body_guard import CheckedRequest
from adapters.http.centres import CentresController
from adapters.http.checkpoints import AuditLogController
from adapters.http.dependencies import open_services, role_mode
from adapters.http.limits import rate_limits
from adapters.http.me import MeController
from adapters.http.openapi import document_nul_free_bodies, use_msgspec_schemas
from adapters.http.pack import AuditPackController
from adapters.http.personal_data import PersonalDataController
from adapters.http.policy import authorize
from adapters.http.portfolios import PortfoliosController
from adapters.http.problems import Problem, exception_handlers, problem_plugin
from adapters.http.settings import HttpSettings
from adapters.http.tokens import TokensController
from adapters.http.ui.router import desk_router, template_config
from adapters.http.ui.session import SessionStore
from adapters.http.units import UnitsController
from adapters.http.writes import (
    provide_grant,
    provide_portfolio_writer,
    provide_services,
    provide_writer,
)
from adapters.streams.endpoints import api_streams_plugin
from domain.spec import SpecCatalogue

API_DESCRIPTION = """Workplace-assessed units (NVQ/SVQ style): centres, portfolios, evidence,
decisions and their signatures, coverage and sufficiency, the EV audit view.

Every call needs `Authorization: Bearer <token>`. Errors are RFC 9457 problem details naming
the `rule` broken and the `field` at fault."""
JSON_BODY_LIMIT = 1024 * 1024


def freeze_startup_heap() -> None:
    """Move what start-up made (modules, specs, the app, the services) out of the collector's
    reach: a full collection then scans only what requests made since. Without it, one full
    collection in a serving process stalls every thread for ~90 ms (measured: 100 SSE
    subscribers' p99 from the commit 85-140 ms with, 15-18 ms without)."""
    gc.collect()
    gc.freeze()


def create_app(
    config: Config,
    settings: HttpSettings | None = None,
    *,
    specs: SpecCatalogue | None = None,
    follow: bool = True,
    freeze_heap: bool = False,
) -> Litestar:
    """The ASGI app over the configured store.

    `freeze_heap`: a serving process's own (`eportfolio serve`), not one of many apps made
    in one process (tests): what is frozen is never collected, even once it is garbage.

    `follow=False` runs no background role here (projections, deliveries, checkpoints):
    an API-only process of a larger deployment (docs/deploy.md), or tests of `?wait=true`
    races. Otherwise SQLite runs them all here and PostgreSQL those whose lease this
    process takes (docs/adr/0020).
    """
    settings = settings or HttpSettings()
    roles = role_mode(config, roles=follow)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = await anyio.to_thread.run_sync(
            lambda: open_services(config, settings, specs=specs, roles=roles)
        )
        app.state.services = services
        try:
            services.start()
            if freeze_heap:
                freeze_startup_heap()
            yield
        finally:
            del app.state.services
            await anyio.to_thread.run_sync(services.close)

    api = Router(
        path="/",
        guards=[authorize],
        route_handlers=[
            MeController,
            UnitsController,
            CentresController,
            PortfoliosController,
            PortfolioWritesController,
            DecisionsController,
            AttachmentsController,
            TokensController,
            AuditLogController,
            AuditPackController,
            PersonalDataController,
        ],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "grant": Provide(provide_grant, sync_to_thread=False),
            "writer": Provide(provide_writer, sync_to_thread=False),
            "portfolio_writer": Provide(provide_portfolio_writer, sync_to_thread=False),
        },
    )
    app = Litestar(
        route_handlers=[api, desk_router()],
        template_config=template_config(),
        lifespan=[lifespan],
        plugins=[problem_plugin(), api_streams_plugin(config)],
        exception_handlers=exception_handlers(),  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title="eportfolio",
            version="1",
            description=API_DESCRIPTION,
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="opaque")
                }
            ),
            security=[{"bearer": []}],
            use_handler_docstrings=True,
        ),
        request_max_body_size=JSON_BODY_LIMIT,
        request_class=CheckedRequest,
        middleware=rate_limits(
            writes=settings.rate_limit_writes,
            uploads=settings.rate_limit_uploads,
            failed_lookups=settings.rate_limit_failed_lookups,
        ),
    )
    app.state.desk_sessions = SessionStore()  # the desk's sign-ins (adapters/http/ui)
    use_msgspec_schemas(app, extra=[Problem])
    document_nul_free_bodies(app)
    return app
