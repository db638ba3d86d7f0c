"""Who am I, the unit specifications, and the administrator's token desk."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from adapters.http.problems import READ, WRITE, problem, responses
from adapters.http.requests import TokenRequest
from adapters.http.schemas import Me, TokenIssued, UnitSummary
from adapters.http.services import Services
from adapters.http.writes import GrantDep, IdempotencyKey, ServicesDep, checked_key
from adapters.store.tokens import TokenRefused, check_holder
from domain.events import Role
from domain.spec import UnitSpec


class MeController(Controller):
    path = "/me"
    tags = ["access"]

    @get("/", operation_id="whoami", responses=responses(401, 403), sync_to_thread=False)
    def whoami(self, grant: GrantDep) -> Me:
        who = grant.principal
        return Me(
            subject_id=who.subject_id, role=who.role, centre_id=who.centre_id, token_id=who.token_id
        )


class UnitsController(Controller):
    path = "/units"
    tags = ["units"]

    @get("/", operation_id="list_units", responses=responses(*READ), sync_to_thread=False)
    def list_units(self, services: ServicesDep) -> list[UnitSummary]:
        """Every unit specification on offer, every version."""
        return [
            UnitSummary(
                code=s.code,
                version=s.version,
                title=s.title,
                awarding_body=s.awarding_body,
                level=s.level,
                credit=s.credit,
                guided_learning_hours=s.guided_learning_hours,
            )
            for s in sorted(services.app.specs.specs, key=lambda s: (s.code, s.version))
        ]

    @get("/{code:str}", operation_id="get_unit", responses=responses(*READ), sync_to_thread=False)
    def get_unit(
        self,
        code: Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9-]{1,32}$")],
        services: ServicesDep,
        version: Annotated[int | None, QueryParameter(ge=1, le=10_000)] = None,
    ) -> UnitSpec:
        """A unit's criteria, range, requirements and rules (the latest version by default)."""
        spec = services.app.specs.get(code, version)
        if spec is None:
            raise problem(404, f"no unit {code} (version {version or 'latest'})", field="code")
        return spec


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
