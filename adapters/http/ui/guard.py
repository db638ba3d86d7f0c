"""Who is at the desk: the session cookie (or a bearer token, for scripts and the policy
tests), CSRF on every form, then the API's own policy table through `admit`."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar.connection import ASGIConnection, Request
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.problem_details import ProblemDetailsException

from adapters.http.auth import Principal
from adapters.http.policy import admit, services_of
from adapters.http.problems import problem
from adapters.http.ui.session import SESSION_COOKIE, Session, SessionStore, same

SAFE = {"GET", "HEAD", "OPTIONS"}


class NotSignedIn(NotAuthorizedException):
    """No session (or it expired, or its token was revoked): a browser goes to sign in."""


def sessions_of(connection: ASGIConnection[Any, Any, Any, Any]) -> SessionStore:
    store = connection.app.state.get("desk_sessions")
    if not isinstance(store, SessionStore):
        raise problem(503, "the desk is starting or stopping", rule="unavailable")
    return store


def session_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Session | None:
    return sessions_of(connection).get(connection.cookies.get(SESSION_COOKIE))


async def desk_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """401 (a browser: to the sign-in page), 403 on a form without its CSRF token, then the
    policy table decides as for the API."""
    services = services_of(connection)
    header = connection.headers.get("authorization")
    session: Session | None = None
    if header is not None:
        principal: Principal = await anyio.to_thread.run_sync(services.authenticate, header)
    else:
        session = session_of(connection)
        if session is None:
            raise NotSignedIn("sign in at /ui/sign-in")
        try:
            principal = await anyio.to_thread.run_sync(
                services.authenticate, f"Bearer {session.secret}"
            )
        except ProblemDetailsException:
            sessions_of(connection).close(connection.cookies.get(SESSION_COOKIE))
            raise NotSignedIn("the token behind this session was revoked: sign in again") from None
        if isinstance(connection, Request) and connection.method not in SAFE:
            form = await connection.form()
            if not same(form.get("csrf"), session.csrf):
                raise problem(403, "the form's CSRF token is missing or wrong", rule="csrf_failed")
    connection.state["desk_session"] = session
    await admit(connection, handler, principal)
