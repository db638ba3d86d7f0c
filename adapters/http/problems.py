"""RFC 9457 problem details for every error, each naming the rule and, where known, the field.

Every exception becomes a `ProblemDetailsException` (litestar's plugin) through one map, so
the status a rule gets is decided here and nowhere else:
400 malformed, 401 no/unknown token, 403 not allowed (the policy, or a domain rule about
who may act), 404 no such resource, 409 conflict (also: personal data still to be kept),
412 If-Match mismatch, 413 too large, 422 a domain rule (its `DomainError.rule`).
`type` is `urn:eportfolio:problem:{rule}`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from litestar.types import ExceptionHandler

from adapters.http.limits import retry_after
from adapters.store.blobs import BlobHashMismatch, BlobTooLarge
from domain.errors import AlreadyExists, DomainError, ErasureRefused, NotFound, NotPermitted
from service.errors import (
    ConcurrencyConflict,
    IdAlreadyUsed,
    IdempotencyKeyReused,
    ServiceError,
    VersionMismatch,
)
from service.personal_data import KeyDestroyed

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<at>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]+)`")
_HTTP_RULES = {
    400: "malformed_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "version_mismatch",
    413: "too_large",
    429: "too_many_requests",
}


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    field: str
    source: str  # body, query, path or header
    message: str


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """An RFC 9457 problem document, plus the rule broken and the field at fault."""

    type: str
    title: str
    status: int
    detail: str
    rule: str
    instance: str | None = None
    field: str | None = None
    errors: tuple[FieldError, ...] = ()
    #: Every reason, where a refusal has several (certification, a unit's sign-off).
    reasons: tuple[str, ...] = ()
    #: The last position in the log, when a cursor is past it (`cursor_ahead`).
    log_end: int | None = None


def problem(
    status: int,
    detail: str,
    *,
    rule: str | None = None,
    field: str | None = None,
    errors: tuple[FieldError, ...] = (),
    reasons: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
    members: Mapping[str, Any] | None = None,
) -> ProblemDetailsException:
    """The problem for `status`; `members` adds extension members (RFC 9457 §3.2)."""
    rule = rule or _HTTP_RULES.get(status, "error")
    extra: dict[str, Any] = {"rule": rule, **(members or {})}
    if field is not None:
        extra["field"] = field
    if errors:
        extra["errors"] = [msgspec.to_builtins(e) for e in errors]
    if reasons:
        extra["reasons"] = list(reasons)
    return ProblemDetailsException(
        status_code=status,
        detail=detail,
        type_=f"urn:eportfolio:problem:{rule}",
        title=HTTPStatus(status).phrase,
        extra=extra,
        headers=headers,
    )


class MissingReference(ProblemDetailsException):
    """A domain NotFound: 404 if the path names the missing thing, 422 if the body does."""


def _domain(exc: DomainError) -> ProblemDetailsException:
    if isinstance(exc, NotFound):
        found = problem(404, exc.message, rule=exc.rule, field=exc.field)
        return MissingReference(
            status_code=404,
            detail=found.detail,
            type_=found.type_,
            title=found.title,
            extra=found.extra,
        )
    status = 422
    if isinstance(exc, AlreadyExists | ErasureRefused):
        status = 409
    elif isinstance(exc, NotPermitted):
        status = 403
    return problem(status, exc.message, rule=exc.rule, field=exc.field, reasons=exc.reasons)


def _service(exc: ServiceError) -> ProblemDetailsException:
    statuses = {
        VersionMismatch: 412,
        ConcurrencyConflict: 409,
        IdAlreadyUsed: 409,
        IdempotencyKeyReused: 422,
    }
    return problem(statuses.get(type(exc), 422), exc.message, rule=exc.rule, field=exc.field)


def split_location(message: str) -> tuple[str, str]:
    """msgspec's "msg - at `$.a.b`" as ("a.b", "msg"), naming an unknown/missing field too."""
    match = _AT.match(message)
    text, at = (match["message"], match["at"] or "") if match else (message, "")
    named = _NAMED.search(text)
    path = at.lstrip(".")
    if named:
        path = f"{path}.{named['name']}" if path else named["name"]
    return path, text


def _msgspec(exc: msgspec.ValidationError) -> ProblemDetailsException:
    path, text = split_location(str(exc))
    error = FieldError(field=path or "body", source="body", message=text)
    return problem(400, f"{error.field}: {text}", field=error.field, errors=(error,))


def _validation(exc: ValidationException) -> ProblemDetailsException:
    errors: list[FieldError] = []
    items = exc.extra if isinstance(exc.extra, list) else []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        message, key, source = (str(item.get(k, "")) for k in ("message", "key", "source"))
        path, text = split_location(message)
        base = "" if source == "body" and key == "data" else key
        field = ".".join(p for p in (base, path) if p) or "body"
        errors.append(FieldError(field=field, source=source or "body", message=text))
    if not errors:
        return problem(400, str(exc.detail), field="body")
    first = errors[0]
    return problem(400, f"{first.field}: {first.message}", field=first.field, errors=tuple(errors))


def _http(exc: HTTPException) -> ProblemDetailsException:
    if isinstance(exc, ValidationException):
        return _validation(exc)
    if isinstance(exc, ProblemDetailsException):
        return exc
    status = exc.status_code
    headers = exc.headers
    if status == 429:
        headers = retry_after(dict(headers or {}))
    return problem(status, str(exc.detail), headers=headers)


def _unexpected(exc: Exception) -> ProblemDetailsException:
    log.error("unexpected error", exc_info=exc)
    return problem(500, "an unexpected error; it has been logged", rule="internal_error")


def _finish(request: Request[Any, Any, Any], exc: ProblemDetailsException) -> Response[Any]:
    """Every problem leaves here: names the request and refines body-named misses to 422.

    A missing thing named by the path or the query is not there (404); one named in the
    body is a bad reference in an otherwise well-formed request (422).
    """
    extra = exc.extra if isinstance(exc.extra, dict) else {}
    field = extra.get("field")
    named = request.path_params.keys() | request.query_params.keys()
    if isinstance(exc, MissingReference) and field is not None and field not in named:
        exc.status_code = 422
        exc.title = HTTPStatus(422).phrase
    exc.instance = request.url.path
    return exc.to_response(request)


CONVERTERS: Mapping[type[Any], Callable[[Any], ProblemDetailsException]] = {
    DomainError: _domain,
    ServiceError: _service,
    msgspec.ValidationError: _msgspec,
    KeyDestroyed: lambda exc: problem(409, str(exc), rule="learner_erased"),
    BlobTooLarge: lambda exc: problem(413, str(exc), rule=exc.rule, field="body"),
    BlobHashMismatch: lambda exc: problem(422, str(exc), rule=exc.rule, field="sha256"),
    HTTPException: _http,
    Exception: _unexpected,
}


def as_problem(exc: Exception) -> ProblemDetailsException:
    """Any exception as the problem the API would answer with (the desk shows it as a page)."""
    if isinstance(exc, ProblemDetailsException):
        return exc
    for kind in type(exc).__mro__:
        if kind in CONVERTERS:
            return CONVERTERS[kind](exc)
    return _unexpected(exc)


def finish(request: Request[Any, Any, Any], exc: ProblemDetailsException) -> Response[Any]:
    return _finish(request, exc)


def problem_plugin() -> ProblemDetailsPlugin:
    """litestar's plugin, finishing every ProblemDetailsException through `_finish`."""
    return ProblemDetailsPlugin(ProblemDetailsConfig(exception_handler=_finish))


def exception_handlers() -> dict[type[Exception], ExceptionHandler[Any]]:
    """Handlers converting everything else to a problem, then finishing it the same way."""

    def handler(convert: Callable[[Any], ProblemDetailsException]) -> ExceptionHandler[Any]:
        def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
            return _finish(request, convert(exc))

        return handle

    return {exc_type: handler(convert) for exc_type, convert in CONVERTERS.items()}


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented problem responses of an operation."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=MEDIA_TYPE,
            description=f"{HTTPStatus(status).phrase} (problem details)",
            generate_examples=False,
        )
        for status in statuses
    }


READ = (400, 401, 403, 404, 429)
WRITE = (400, 401, 403, 404, 409, 413, 422, 429)
PORTFOLIO_WRITE = (*WRITE, 412)
