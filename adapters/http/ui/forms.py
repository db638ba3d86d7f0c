"""The desk's forms: sign in (a pasted token), sign out, and "show this moment" (time
travel and the trail's filters), each a POST with its CSRF token."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import anyio.to_thread
from litestar import Controller, Request, get, post
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Redirect, Template

from adapters.http.policy import may, services_of
from adapters.http.problems import problem
from adapters.http.ui.context import Moment
from adapters.http.ui.guard import session_of, sessions_of
from adapters.http.ui.session import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_SECONDS,
    cookie_header,
    same,
)
from adapters.http.writes import GrantDep

_BACK = re.compile(r"^/ui/[A-Za-z0-9/_-]*$")
FILTERS = ("event_type", "portfolio_id", "person_id")


def _secure(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def sign_in_page(request: Request[Any, Any, Any], error: str = "") -> Template:
    """The form, with a fresh double-submit CSRF token in a cookie of its own."""
    token = secrets.token_urlsafe(32)
    template = Template(
        template_name="sign_in.html",
        context={"title": "Sign in", "csrf": token, "error": error},
        status_code=401 if error else 200,
    )
    template.headers["Set-Cookie"] = cookie_header(
        SIGN_IN_COOKIE, token, max_age=SIGN_IN_SECONDS, secure=_secure(request)
    )
    return template


class SignIn(Controller):
    """Public: where a token is given. Everything else at the desk is behind the guard."""

    path = "/ui/sign-in"
    include_in_schema = False

    @get("/", sync_to_thread=False)
    def form(self, request: Request[Any, Any, Any]) -> Template:
        if session_of(request) is not None:
            return Template(template_name="signed_in.html", context={"title": "Signed in"})
        return sign_in_page(request)

    @post("/", status_code=303)
    async def sign_in(self, request: Request[Any, Any, Any]) -> Redirect | Template:
        form = await request.form()
        if not same(form.get("csrf"), request.cookies.get(SIGN_IN_COOKIE, "")):
            raise problem(403, "the sign-in form expired: load it again", rule="csrf_failed")
        secret = str(form.get("token", "")).strip()
        services = services_of(request)
        try:
            principal = await anyio.to_thread.run_sync(services.authenticate, f"Bearer {secret}")
        except ProblemDetailsException:
            return sign_in_page(request, "That token is unknown or revoked.")
        if not may(principal.role, "ui_home"):
            return sign_in_page(
                request,
                f"A {principal.role.value} token does not open the desk: "
                "integrators and the administrator use the API (/schema).",
            )
        session_id, _ = sessions_of(request).open(secret)
        redirect = Redirect(path="/ui/", status_code=303)
        redirect.headers["Set-Cookie"] = cookie_header(
            SESSION_COOKIE,
            session_id,
            max_age=int(sessions_of(request).seconds),
            secure=_secure(request),
        )
        return redirect


class DeskForms(Controller):
    path = "/ui"
    include_in_schema = False

    @post("/sign-out", operation_id="ui_sign_out", status_code=303)
    async def sign_out(self, request: Request[Any, Any, Any], grant: GrantDep) -> Redirect:
        del grant
        sessions_of(request).close(request.cookies.get(SESSION_COOKIE))
        redirect = Redirect(path="/ui/sign-in", status_code=303)
        redirect.headers["Set-Cookie"] = cookie_header(
            SESSION_COOKIE, "", max_age=0, secure=_secure(request)
        )
        return redirect

    @post("/go", operation_id="ui_go", status_code=303)
    async def go(self, request: Request[Any, Any, Any], grant: GrantDep) -> Redirect:
        """Show `back` at the moment (and with the filters) the form names."""
        del grant
        form = await request.form()
        back = str(form.get("back", ""))
        if not _BACK.match(back) or "//" in back:
            raise problem(400, "back: a page of the desk (/ui/…)", field="back")
        when = Moment(
            as_known_at=_instant(str(form.get("as_known_at", ""))),
            effective_at=_day(str(form.get("effective_at", ""))),
        )
        if form.get("now"):
            when = Moment()
        filters = {name: _filter(name, str(form.get(name, ""))) for name in FILTERS}
        return Redirect(path=back + when.query(**filters), status_code=303)


def _instant(text: str) -> datetime | None:
    """A `datetime-local` value, read as UTC (the banner says so)."""
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise problem(
            400, "as known at: a date and time like 2026-11-03T14:05", field="as_known_at"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _day(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise problem(400, "effective at: a date like 2026-11-03", field="effective_at") from None


def _filter(name: str, text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    if name.endswith("_id"):
        try:
            return str(UUID(text))
        except ValueError:
            raise problem(400, f"{name}: not an id", field=name) from None
    if len(text) > 200:
        raise problem(400, f"{name}: too long", field=name)
    return text
