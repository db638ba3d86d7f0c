"""The administrator's token desk: issue a token to someone a centre knows, revoke one."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, delete, post
from litestar.params import FromPath, JSONBody

from adapters.http.dependencies import Services
from adapters.http.problems import READ, WRITE, problem, responses
from adapters.http.request_bodies import TokenRequest
from adapters.http.response_bodies import TokenIssued
from adapters.http.writes import GrantDep, IdempotencyKey, ServicesDep, checked_key
from adapters.store.tokens import TokenRefused, check_holder
from domain.events import Role


class TokensController(Controller):
    path = "/tokens"
    tags = ["access"]

    @post("/", operation_id="issue_token", responses=responses(*WRITE), sync_to_thread=True)
    def issue_token(
        self,
        data: JSONBody[TokenRequest],
        services: ServicesDep,
        grant: GrantDep,
        idempotency_key: IdempotencyKey = None,
    ) -> TokenIssued:
        """Issue a token: for an integrator of a centre, an EV, or a centre's own people."""
        role = Role(data.role)
        subject_id = data.subject_id or uuid4()
        _check_subject(services, data, role)
        fingerprint = hashlib.sha256(msgspec.json.encode(data)).hexdigest()
        given = checked_key(idempotency_key)
        key = None if given is None else f"{grant.principal.subject_id}/{given}"
        record, secret = services.tokens.issue(
            subject_id=subject_id,
            role=role,
            centre_id=None if role is Role.EV else data.centre_id,
            label=data.label,
            key=key,
            fingerprint=fingerprint,
            lifetime=timedelta(days=data.expires_in_days),
        )
        return TokenIssued(
            token_id=record.token_id,
            subject_id=record.subject_id,
            role=record.role,
            centre_id=record.centre_id,
            label=record.label,
            token=secret,
            expires_at=record.expires_at,
        )

    @delete(
        "/{token_id:uuid}",
        operation_id="revoke_token",
        responses=responses(*READ),
        sync_to_thread=True,
    )
    def revoke_token(self, token_id: FromPath[UUID], services: ServicesDep) -> None:
        if not services.tokens.revoke(token_id):
            raise problem(404, f"no live token {token_id}", field="token_id")


def _check_subject(services: Services, data: JSONBody[TokenRequest], role: Role) -> None:
    """A token only for someone the centre's records know (EVs: their allocations decide)."""
    try:
        check_holder(services.app.centre, role, data.subject_id, data.centre_id)
    except TokenRefused as refused:
        raise problem(422, str(refused), rule=refused.rule, field=refused.field) from None
