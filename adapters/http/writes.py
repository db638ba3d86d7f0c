"""The write path shared by every command endpoint: ids, idempotency, If-Match, ?wait=true.

Each write is one `Eportfolio.execute`: the event and its idempotency receipt are saved
together or not at all, so an error at any point leaves nothing half-written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, QueryParameter

from adapters.http.dependencies import Services
from adapters.http.openapi import VERSION_TAG, DocumentedHeader
from adapters.http.params import header_schema
from adapters.http.policy import Grant
from adapters.http.problems import problem
from adapters.http.response_bodies import Written
from domain.commands import Command
from service.handlers import WriteResult

IDS = uuid5(NAMESPACE_URL, "urn:eportfolio:http:new-ids")
#: What Idempotency-Key and If-Match accept, as /schema documents it and as checked here.
KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"
IF_MATCH_PATTERN = r'^[ \t]*(?:\*|"([0-9]{1,18})")[ \t]*$'
_KEY = re.compile(KEY_PATTERN)
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
ETAG_HEADER = [
    DocumentedHeader(
        name="ETag",
        description='The portfolio\'s version, quoted ("7"): send it back as If-Match.',
        schema=VERSION_TAG,
    )
]

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="Up to 200 visible ASCII characters. Retrying with the same key returns "
        "the first result and writes nothing; the same key with a different request is 422.",
        schema_extra=header_schema(KEY_PATTERN, minLength=1, maxLength=200),
    ),
]
Wait = Annotated[
    bool,
    QueryParameter(
        name="wait",
        description="Answer only once the read views (coverage, sufficiency, audit) show it.",
    ),
]
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        description='The portfolio version you last read (its ETag, e.g. "7"): 412 if it moved; '
        "`*`: any version.",
        schema_extra=header_schema(IF_MATCH_PATTERN),
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


@dataclass(frozen=True)
class Writer:
    services: Services
    grant: Grant
    wait: bool
    key: str | None
    if_match: str | None = None

    def new_id(self, given: UUID | None, kind: str) -> UUID:
        """The client's id, else one derived from the idempotency key, else a random one."""
        if given is not None:
            return given
        if self.key is None:
            return uuid4()
        who = self.grant.principal
        return uuid5(IDS, f"{who.subject_id}/{who.role}/{self.key}/{kind}")

    def run(
        self, command: Command, *, target: UUID | None = None, created: UUID | None = None
    ) -> Written:
        result = self.services.app.execute(
            self.grant.principal.actor,
            command,
            target=target,
            idempotency_key=self.key,
            expected_version=self._expected_version(),
        )
        return self.written(result, created=created)

    def written(self, result: WriteResult, *, created: UUID | None = None) -> Written:
        """The answer to a write: where it landed, and whether the views show it yet
        (after waiting for them with ?wait=true)."""
        visible = (
            self.services.wait(result.position)
            if self.wait
            else self.services.visible(result.position)
        )
        return Written(
            event_id=result.event_id,
            stream_id=result.stream_id,
            version=result.version,
            position=result.position,
            replayed=result.replayed,
            visible=visible,
            created_id=created,
        )

    def portfolio(
        self, portfolio_id: UUID, command: Command, *, created: UUID | None = None
    ) -> Response[Written]:
        """A write to a portfolio, answered with its new version as the ETag."""
        written = self.run(command, target=portfolio_id, created=created)
        return Response(written, status_code=201, headers={"ETag": etag(written.version)})

    def _expected_version(self) -> int | None:
        return expected_version(self.if_match, example=7)


def expected_version(if_match: str | None, *, example: int) -> int | None:
    """The version If-Match names (None: absent or `*`); 400 naming the header if malformed."""
    if if_match is None:
        return None
    match = _IF_MATCH.match(if_match)
    if match is None:
        detail = f'If-Match: expected a quoted version like "{example}", or *'
        raise problem(400, detail, field="If-Match")
    return None if match[1] is None else int(match[1])


def checked_key(key: str | None) -> str | None:
    if key is not None and not _KEY.match(key):
        raise problem(
            400, "Idempotency-Key: 1-200 visible ASCII characters", field="Idempotency-Key"
        )
    return key


def provide_writer(
    request: Request[Any, Any, Any], wait: Wait = False, idempotency_key: IdempotencyKey = None
) -> Writer:
    return Writer(_services(request), _grant(request), wait, checked_key(idempotency_key))


def provide_portfolio_writer(
    request: Request[Any, Any, Any],
    wait: Wait = False,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Writer:
    key = checked_key(idempotency_key)
    return Writer(_services(request), _grant(request), wait, key, if_match)


def provide_grant(request: Request[Any, Any, Any]) -> Grant:
    return _grant(request)


def provide_services(request: Request[Any, Any, Any]) -> Services:
    return _services(request)


def _grant(request: Request[Any, Any, Any]) -> Grant:
    grant = request.state.get("grant")
    if not isinstance(grant, Grant):
        raise problem(401, "not authorized", rule="unauthenticated")
    return grant


def _services(request: Request[Any, Any, Any]) -> Services:
    services = request.app.state.get("services")
    if not isinstance(services, Services):
        raise problem(503, "the service is starting or stopping", rule="unavailable")
    return services


ServicesDep = NamedDependency[Services]
GrantDep = NamedDependency[Grant]
WriterDep = NamedDependency[Writer]
