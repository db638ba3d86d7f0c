"""Desk sessions: a pasted token becomes an opaque session cookie; CSRF on every form.

The token is held only in this process's memory, keyed by a random session id; the
browser holds the id in a cookie that scripts cannot read (HttpOnly), that no other site's
request carries (SameSite=Strict), sent only over https when the desk is served over https
(Secure), and that expires. Every request re-checks the token against the token store, so
a revoked token ends its sessions at once. A restart signs everyone out.

CSRF: each session has a random token that every form carries in a hidden field and the
guard compares in constant time; the sign-in form, before any session, uses a
double-submit cookie of its own.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

SESSION_COOKIE = "ep_desk"
SIGN_IN_COOKIE = "ep_desk_signin"
SESSION_SECONDS = 8 * 3600  # a working day; then sign in again
SIGN_IN_SECONDS = 15 * 60
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    secret: str  # the bearer token, never sent back to the browser
    csrf: str
    expires: float


class SessionStore:
    """Live sessions in memory, oldest dropped first past `MAX_SESSIONS`."""

    def __init__(self, seconds: float = SESSION_SECONDS) -> None:
        self.seconds = seconds
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, secret: str) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        session = Session(
            secret=secret, csrf=secrets.token_urlsafe(32), expires=time.time() + self.seconds
        )
        with self._lock:
            self._drop_expired()
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session_id] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires <= time.time():
                del self._sessions[session_id]
                return None
            return session

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def _drop_expired(self) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[key]


def same(given: object, expected: str) -> bool:
    """A CSRF check: the form's value equals the expected one (constant time)."""
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given, expected)


def cookie_header(name: str, value: str, *, max_age: int, secure: bool, path: str = "/ui") -> str:
    """A Set-Cookie value: HttpOnly and SameSite=Strict always, Secure over https."""
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
