"""Who is calling: a bearer token resolved to a principal, or a 401.

The administrator's token comes from the environment and is compared by hash in constant
time; every other token is looked up by its SHA-256 in the token store.
"""

from __future__ import annotations

import hashlib
import hmac
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from adapters.http.problems import problem
from adapters.store.tokens import TokenStore
from domain.commands import Actor
from domain.events import Role

ADMIN_ID = uuid5(NAMESPACE_URL, "urn:eportfolio:admin")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="eportfolio"'}


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The caller: a person (or integrator) in one role, bound to a centre unless admin or EV."""

    subject_id: UUID
    role: Role
    centre_id: UUID | None = None
    token_id: UUID | None = None

    @property
    def actor(self) -> Actor:
        return Actor(id=self.subject_id, role=self.role)


class _NotHeld(Exception):
    """The token store cannot answer from memory: look the token up."""


class Authenticator:
    def __init__(self, tokens: TokenStore, admin_token: str | None) -> None:
        self.tokens = tokens
        self._admin = None if admin_token is None else hashlib.sha256(admin_token.encode()).digest()

    def __call__(self, authorization: str | None) -> Principal:
        """The principal for an `Authorization` header value; raises a 401 problem."""
        return self._principal(authorization, held=False)

    def held(self, authorization: str | None) -> Principal | None:
        """The principal, when the token store can say without a read (`TokenStore.held`)
        or no token is looked up at all (the admin's, or none: a 401); None: call the
        authenticator, which reads. Lets the guard decide on the event loop."""
        try:
            return self._principal(authorization, held=True)
        except _NotHeld:
            return None

    def _principal(self, authorization: str | None, *, held: bool) -> Principal:
        scheme, _, secret = (authorization or "").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise problem(401, "send Authorization: Bearer <token>", headers=dict(CHALLENGE))
        if self._admin is not None and hmac.compare_digest(
            hashlib.sha256(secret.encode()).digest(), self._admin
        ):
            return Principal(subject_id=ADMIN_ID, role=Role.ADMIN)
        record = None
        if len(secret) <= 200:
            record = self.tokens.held(secret) if held else self.tokens.find(secret)
            if record is None and held:
                raise _NotHeld
        if record is None:
            raise problem(
                401,
                "the token is unknown, revoked or expired",
                field="Authorization",
                headers=dict(CHALLENGE),
            )
        return Principal(
            subject_id=record.subject_id,
            role=record.role,
            centre_id=record.centre_id,
            token_id=record.token_id,
        )
