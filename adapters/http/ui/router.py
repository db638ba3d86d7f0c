"""The desk wired into the app: its routes behind `desk_guard`, its error pages, its
templates, its security headers, and `GET /` (a browser to /ui/, integrators to /schema)."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from adapters.audit.pack.render import STYLESHEET, environment
from adapters.http.problems import CONVERTERS, as_problem, finish
from adapters.http.ui.downloads import DeskDownloads
from adapters.http.ui.forms import DeskForms, SignIn
from adapters.http.ui.guard import NotSignedIn, desk_guard
from adapters.http.ui.pages import DeskPages
from adapters.http.writes import provide_grant, provide_services

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Reached without a session: the front door, the sign-in form and the stylesheet.
PUBLIC_PATHS = frozenset({"/", "/ui/sign-in", "/ui/desk.css"})
DESK_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # pages hold personal data: not for shared caches
    "X-Frame-Options": "DENY",
}


def wants_page(request: Request[Any, Any, Any]) -> bool:
    """A browser at the desk gets pages; a script (bearer token, JSON) gets problem details."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "authorization" not in request.headers


def _error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, NotSignedIn) and wants_page(request):
        return Redirect(path="/ui/sign-in", status_code=303)
    found = as_problem(exc)
    if not wants_page(request):
        return finish(request, found)
    status = found.status_code
    extra = found.extra if isinstance(found.extra, dict) else {}
    return Template(
        template_name="error.html",
        status_code=status,
        context={
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": found.detail,
            "rule": extra.get("rule", ""),
            "reasons": extra.get("reasons", ()),
        },
    )


async def _headers(response: Response[Any]) -> Response[Any]:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", DESK_CSP)
    return response


@get("/ui/desk.css", include_in_schema=False, sync_to_thread=False, media_type="text/css")
def stylesheet() -> Response[bytes]:
    return Response(STYLESHEET.read_bytes(), media_type="text/css; charset=utf-8")


@get("/", include_in_schema=False, sync_to_thread=False)
def front_door(request: Request[Any, Any, Any]) -> Response[Any]:
    """Browsers go to the desk; anyone else is told where the desk and the schemas are."""
    where = {
        "desk": "/ui/",
        "openapi": "/schema/openapi.json",
        "swagger": "/schema/swagger",
        "asyncapi": "/asyncapi.json",
        "note": "Integrators: every API call takes Authorization: Bearer <token>; see /schema.",
    }
    if "text/html" in request.headers.get("accept", ""):
        return Redirect(
            path="/ui/", status_code=303, headers={"Link": '</schema>; rel="service-desc"'}
        )
    return Response(where, headers={"Link": '</schema>; rel="service-desc"'})


def desk_router() -> Router:
    handlers = dict.fromkeys((*CONVERTERS, NotAuthorizedException, ProblemDetailsException), _error)
    guarded = Router(
        path="/",
        guards=[desk_guard],
        route_handlers=[DeskPages, DeskForms, DeskDownloads],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "grant": Provide(provide_grant, sync_to_thread=False),
        },
        exception_handlers=handlers,  # type: ignore[arg-type]
        after_request=_headers,
        include_in_schema=False,
    )
    public = Router(
        path="/",
        route_handlers=[SignIn, stylesheet, front_door],
        exception_handlers=handlers,  # type: ignore[arg-type]
        after_request=_headers,
        include_in_schema=False,
    )
    return Router(path="/", route_handlers=[guarded, public], include_in_schema=False)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment(TEMPLATES)))
