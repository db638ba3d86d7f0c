"""Who may call what: one table, enforced by one guard on every route.

`POLICY` maps each operation id to what it acts on (its target) and, per role, the scope
that role needs on that target. A role absent from an operation's row is refused (403);
an operation absent from the table is refused to everyone (fail closed), and a test checks
every route has a row. The domain still checks its own rules (a countersigner must be
qualified, nobody samples their own decision); this table decides reach: whose portfolio,
which centre.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import partial
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

import msgspec
from litestar.connection import ASGIConnection, Request
from litestar.handlers.base import BaseRouteHandler

from adapters.http.auth import Principal
from adapters.http.body_guard import check_body
from adapters.http.dependencies import Services
from adapters.http.lookups import decision_portfolio, enrolment
from adapters.http.problems import problem
from domain.centre import CentreState
from domain.errors import NotFound
from domain.events import LearnerEnrolled, Role


class Target(StrEnum):
    NONE = "none"
    CENTRE = "centre"  # path {centre_id}
    CENTRE_IN_BODY = "centre_in_body"  # the JSON body's centre_id
    PORTFOLIO = "portfolio"  # path {portfolio_id}
    DECISION = "decision"  # path {decision_id}, found among the caller's centre's portfolios
    BLOB = "blob"  # ?centre_id=, or the caller's own centre
    QUERY_SCOPE = "query_scope"  # ?portfolio_id=, else ?centre_id=, else the caller's centre
    LEARNER = "learner"  # path {learner_id}, found among the caller's own centre's learners


class Scope(StrEnum):
    ANYONE = "anyone"  # any caller in the role
    CENTRE_STAFF = "centre_staff"  # registered at the target centre in that role
    CENTRE_MEMBER = "centre_member"  # staff or learner of the target centre
    EV_OF_CENTRE = "ev_of_centre"  # an EV allocated to the target centre
    INTEGRATOR_OF_CENTRE = "integrator_of_centre"  # an integrator token for the centre
    OWN_PORTFOLIO = "own_portfolio"  # the portfolio's learner
    PORTFOLIO_ASSESSOR = "portfolio_assessor"  # the portfolio's assessor
    PORTFOLIO_IQA = "portfolio_iqa"  # the portfolio's IQA


class Rule(NamedTuple):
    target: Target
    roles: Mapping[Role, Scope]


R, S, T = Role, Scope, Target
_T = TypeVar("_T")
API_ROLES = (R.ADMIN, R.CENTRE_ADMIN, R.ASSESSOR, R.IQA, R.EV, R.LEARNER, R.INTEGRATOR)
EVERYONE = dict.fromkeys(API_ROLES, S.ANYONE)
CENTRE_ADMINS = {R.ADMIN: S.ANYONE, R.CENTRE_ADMIN: S.CENTRE_STAFF}
PORTFOLIO_READERS = {
    R.LEARNER: S.OWN_PORTFOLIO,
    R.CENTRE_ADMIN: S.CENTRE_STAFF,
    R.ASSESSOR: S.CENTRE_STAFF,
    R.IQA: S.CENTRE_STAFF,
    R.EV: S.EV_OF_CENTRE,
    R.INTEGRATOR: S.INTEGRATOR_OF_CENTRE,
}
EVIDENCE_WRITERS = {R.LEARNER: S.OWN_PORTFOLIO, R.ASSESSOR: S.PORTFOLIO_ASSESSOR}
ASSESSOR = {R.ASSESSOR: S.PORTFOLIO_ASSESSOR}
CENTRE_PEOPLE = {R.CENTRE_ADMIN: S.CENTRE_MEMBER, R.ASSESSOR: S.CENTRE_MEMBER}
CENTRE_PEOPLE |= {R.IQA: S.CENTRE_MEMBER, R.LEARNER: S.CENTRE_MEMBER}

AUDIT_READERS = {R.CENTRE_ADMIN: S.CENTRE_STAFF, R.IQA: S.CENTRE_STAFF, R.EV: S.EV_OF_CENTRE}
EXPORTERS = {R.ADMIN: S.ANYONE, **AUDIT_READERS}
DESK_ROLES: tuple[Role, ...] = (R.CENTRE_ADMIN, R.ASSESSOR, R.IQA, R.EV, R.LEARNER)
DESK: Mapping[Role, Scope] = dict.fromkeys(DESK_ROLES, S.ANYONE)
CENTRE_READERS = {**AUDIT_READERS, R.ASSESSOR: S.CENTRE_STAFF}
DESK_PORTFOLIO_READERS: Mapping[Role, Scope] = {
    r: s for r, s in PORTFOLIO_READERS.items() if r is not R.INTEGRATOR
}

POLICY: Mapping[str, Rule] = {
    "whoami": Rule(T.NONE, EVERYONE),
    "list_units": Rule(T.NONE, EVERYONE),
    "get_unit": Rule(T.NONE, EVERYONE),
    "create_centre": Rule(T.NONE, {R.ADMIN: S.ANYONE}),
    "get_centre": Rule(
        T.CENTRE,
        {
            R.ADMIN: S.ANYONE,
            R.CENTRE_ADMIN: S.CENTRE_STAFF,
            R.ASSESSOR: S.CENTRE_STAFF,
            R.IQA: S.CENTRE_STAFF,
            R.EV: S.EV_OF_CENTRE,
            R.INTEGRATOR: S.INTEGRATOR_OF_CENTRE,
        },
    ),
    "register_staff": Rule(T.CENTRE, CENTRE_ADMINS),
    "change_qualification": Rule(T.CENTRE, CENTRE_ADMINS),
    "register_learner": Rule(T.CENTRE, CENTRE_ADMINS),
    "set_retention_policy": Rule(T.CENTRE, CENTRE_ADMINS),
    "place_legal_hold": Rule(T.CENTRE, CENTRE_ADMINS),
    "lift_legal_hold": Rule(T.CENTRE, CENTRE_ADMINS),
    "certify_unit": Rule(T.PORTFOLIO, CENTRE_ADMINS),
    "withdraw_learner": Rule(T.PORTFOLIO, CENTRE_ADMINS),
    "erase_learner": Rule(T.LEARNER, {R.CENTRE_ADMIN: S.CENTRE_STAFF}),
    "add_witness": Rule(T.CENTRE, CENTRE_ADMINS),
    "set_sufficiency_policy": Rule(T.CENTRE, CENTRE_ADMINS),
    "set_observed_criteria": Rule(T.CENTRE, CENTRE_ADMINS),
    "set_sampling_plan": Rule(T.CENTRE, {**CENTRE_ADMINS, R.IQA: S.CENTRE_STAFF}),
    "allocate_ev": Rule(T.CENTRE, {R.ADMIN: S.ANYONE}),
    "get_audit": Rule(T.CENTRE, AUDIT_READERS),
    "enrol": Rule(T.CENTRE_IN_BODY, CENTRE_ADMINS),
    "get_portfolio": Rule(T.PORTFOLIO, PORTFOLIO_READERS),
    "get_coverage": Rule(T.PORTFOLIO, PORTFOLIO_READERS),
    "get_sufficiency": Rule(T.PORTFOLIO, PORTFOLIO_READERS),
    "get_history": Rule(T.PORTFOLIO, PORTFOLIO_READERS),
    "submit_evidence": Rule(T.PORTFOLIO, EVIDENCE_WRITERS),
    "map_evidence": Rule(T.PORTFOLIO, EVIDENCE_WRITERS),
    "withdraw_evidence": Rule(T.PORTFOLIO, EVIDENCE_WRITERS),
    "record_witness_testimony": Rule(T.PORTFOLIO, EVIDENCE_WRITERS),
    "record_observation": Rule(T.PORTFOLIO, ASSESSOR),
    "record_questioning": Rule(T.PORTFOLIO, ASSESSOR),
    "record_decision": Rule(T.PORTFOLIO, ASSESSOR),
    "countersign_decision": Rule(T.DECISION, {R.ASSESSOR: S.CENTRE_STAFF}),
    "revoke_decision": Rule(T.DECISION, {R.ASSESSOR: S.PORTFOLIO_ASSESSOR, R.IQA: S.PORTFOLIO_IQA}),
    "record_iqa_sample": Rule(T.PORTFOLIO, {R.IQA: S.CENTRE_STAFF}),
    "record_ev_sample": Rule(T.PORTFOLIO, {R.EV: S.EV_OF_CENTRE}),
    "countersign_iqa_sample": Rule(T.PORTFOLIO, {R.IQA: S.CENTRE_STAFF}),
    "respond_to_sample": Rule(T.PORTFOLIO, ASSESSOR),
    "accept_sample_response": Rule(T.PORTFOLIO, {R.IQA: S.CENTRE_STAFF, R.EV: S.EV_OF_CENTRE}),
    "sign_off_unit": Rule(T.PORTFOLIO, ASSESSOR),
    "open_appeal": Rule(T.PORTFOLIO, CENTRE_ADMINS),
    "approve_realistic_environment": Rule(T.CENTRE, {R.ADMIN: S.ANYONE, R.EV: S.EV_OF_CENTRE}),
    "put_blob": Rule(T.BLOB, CENTRE_PEOPLE),
    "get_blob": Rule(T.BLOB, {**CENTRE_PEOPLE, R.EV: S.EV_OF_CENTRE}),
    "issue_token": Rule(T.NONE, {R.ADMIN: S.ANYONE}),
    "revoke_token": Rule(T.NONE, {R.ADMIN: S.ANYONE}),
    # Integrator streams (adapters/streams/endpoints.py): the stream layer scopes every event to
    # the caller's centre (an admin's: every centre), so reaching the endpoint is enough.
    **dict.fromkeys(
        (
            "list_events",
            "stream_events",
            "create_webhook",
            "list_webhooks",
            "get_webhook",
            "update_webhook",
            "rotate_webhook_secret",
            "delete_webhook",
            "list_webhook_deliveries",
            "redeliver_webhook",
        ),
        Rule(T.NONE, {R.ADMIN: S.ANYONE, R.INTEGRATOR: S.ANYONE}),
    ),
    # A centre's Learning Record Stores (adapters/streams/lrs_endpoints.py): its centre
    # admin's alone; the endpoints act on the token's centre (another centre's LRS: 404).
    **dict.fromkeys(
        ("create_lrs", "list_lrs", "get_lrs", "delete_lrs", "list_lrs_deliveries"),
        Rule(T.NONE, {R.CENTRE_ADMIN: S.ANYONE}),
    ),
    # The tamper-evident log (adapters/http/checkpoints.py): checkpoints and the key are
    # public material; an export is scoped like the audit view (an admin: any, or all).
    "list_checkpoints": Rule(T.NONE, EVERYONE),
    "latest_checkpoint": Rule(T.NONE, EVERYONE),
    "get_public_key": Rule(T.NONE, EVERYONE),
    "issue_checkpoint": Rule(T.NONE, {R.ADMIN: S.ANYONE, R.CENTRE_ADMIN: S.ANYONE, R.EV: S.ANYONE}),
    "export_bundle": Rule(T.QUERY_SCOPE, EXPORTERS),
    # The audit pack (adapters/http/pack.py): scoped like the export it describes.
    "audit_pack": Rule(T.QUERY_SCOPE, EXPORTERS),
    # The desk (adapters/http/ui): people reading evidence, never integrators; the same
    # scopes as the API reads they show. Sign-in itself is public (it takes the token).
    "ui_home": Rule(T.NONE, DESK),
    "ui_go": Rule(T.NONE, DESK),
    "ui_sign_out": Rule(T.NONE, DESK),
    "ui_centre": Rule(T.CENTRE, CENTRE_READERS),
    "ui_centre_coverage_csv": Rule(T.CENTRE, CENTRE_READERS),
    "ui_centre_decisions_csv": Rule(T.CENTRE, CENTRE_READERS),
    "ui_trail": Rule(T.CENTRE, AUDIT_READERS),
    "ui_portfolio": Rule(T.PORTFOLIO, DESK_PORTFOLIO_READERS),
    "ui_coverage_csv": Rule(T.PORTFOLIO, DESK_PORTFOLIO_READERS),
    "ui_decisions_csv": Rule(T.PORTFOLIO, DESK_PORTFOLIO_READERS),
    "ui_pack": Rule(T.QUERY_SCOPE, EXPORTERS),
    "ui_export": Rule(T.QUERY_SCOPE, EXPORTERS),
}


PUBLIC_OPERATIONS = frozenset({"get_event_schema", "get_asyncapi"})
"""Served with no token and no guard: the streams' contracts describe shapes, never data
(the JSON Schemas behind each event's `dataschema` URL, and the AsyncAPI document)."""


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    """What the guard established: who calls, and the centre and portfolio they act on."""

    principal: Principal
    centre_id: UUID | None = None
    portfolio: LearnerEnrolled | None = None


class _CentreRef(msgspec.Struct, frozen=True):
    centre_id: UUID


def may(role: Role, operation: str) -> bool:
    """Whether the role has a row for the operation at all (its scope is checked on the call):
    what a page offers, never what decides."""
    rule = POLICY.get(operation)
    return rule is not None and role in rule.roles


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    services = connection.app.state.get("services")
    if not isinstance(services, Services):
        raise problem(503, "the service is starting or stopping", rule="unavailable")
    return services


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The guard on every API route: 401, then 403 by role, then 404, then 403 by scope.

    Authenticating and the grant's lookups read the stores, so they run off the event loop,
    in one trip to a worker thread: each trip costs the loop a wake-up of another thread,
    which under the GIL was the guard's largest cost. A decision that needs no read (a
    token the store holds, a portfolio's held enrolment) is made on the loop, no trip at
    all. Only a grant that needs the body (the centre it names) goes through `admit`,
    with the body read on the loop between.
    """
    services = services_of(connection)
    header = connection.headers.get("authorization")
    operation = _operation(handler)
    rule = POLICY.get(operation) if operation is not None else None
    if rule is None or rule.target is T.CENTRE_IN_BODY:
        principal = await _in_thread(services.authenticate, header)
        await admit(connection, handler, principal)
        return
    path, query = _scope_params(connection)
    grant = _held_grant(services, header, operation, rule, path, query)
    if grant is None:
        grant = await _in_thread(_authorized, services, header, operation, rule, path, query)
    connection.state["grant"] = grant


async def admit(
    connection: ASGIConnection[Any, Any, Any, Any],
    handler: BaseRouteHandler,
    principal: Principal,
) -> None:
    """Decide for an authenticated caller (a bearer token, or the desk's session): 403 by
    role, 404, 403 by scope; on success the grant is in `connection.state`."""
    services = services_of(connection)
    operation = _operation(handler)
    rule = POLICY.get(operation) if operation is not None else None
    scope = _scope(rule, principal, operation)
    assert rule is not None  # _scope refused a missing rule
    centre_ref: UUID | None = None
    if rule.target is T.CENTRE_IN_BODY and isinstance(connection, Request):
        body = await connection.body()
        await check_body(body)
        try:
            centre_ref = msgspec.json.decode(body, type=_CentreRef).centre_id
        except msgspec.DecodeError as error:
            raise problem(400, f"centre_id: {error}", field="centre_id") from error
    path, query = _scope_params(connection)
    grant = await _in_thread(
        _grant, services, principal, rule.target, scope, path, centre_ref, query
    )
    connection.state["grant"] = grant


async def _in_thread(function: Callable[..., _T], *args: object) -> _T:
    """`function(*args)` in the event loop's default executor, where sync handlers run too.

    Lighter than anyio's `to_thread.run_sync` (no capacity limiter or cancel scope per
    call), and the threads are the ones the handlers keep warm.
    """
    return await asyncio.get_running_loop().run_in_executor(None, partial(function, *args))


def _operation(handler: BaseRouteHandler) -> str | None:
    operation = getattr(handler, "operation_id", None)
    return operation if isinstance(operation, str) else None


def _scope(rule: Rule | None, principal: Principal, operation: str | None) -> Scope:
    """The scope the caller's role needs here; 403 if the role has no row."""
    scope = rule.roles.get(principal.role) if rule is not None else None
    if scope is None:
        raise problem(403, f"a {principal.role} may not call {operation}", rule="role_not_allowed")
    return scope


def _scope_params(
    connection: ASGIConnection[Any, Any, Any, Any],
) -> tuple[dict[str, Any], dict[str, str | None]]:
    query = {k: connection.query_params.get(k) for k in ("centre_id", "portfolio_id")}
    return dict(connection.path_params), query


def _authorized(  # noqa: PLR0917 - called through run_in_executor, which is positional
    services: Services,
    header: str | None,
    operation: str,
    rule: Rule,
    path: dict[str, Any],
    query: dict[str, str | None],
) -> Grant:
    """Authenticate, then grant: the guard's whole decision in one worker-thread trip."""
    principal = services.authenticate(header)
    scope = _scope(rule, principal, operation)
    return _grant(services, principal, rule.target, scope, path, None, query)


class _NotHeld(Exception):
    """The grant needs a stored read: decide it in a worker thread."""


def _held_grant(  # noqa: PLR0917 - the same arguments as `_authorized`
    services: Services,
    header: str | None,
    operation: str | None,
    rule: Rule,
    path: dict[str, Any],
    query: dict[str, str | None],
) -> Grant | None:
    """`_authorized`'s answer (or its refusal) when it needs no read: a token the store
    holds and a grant from held facts (a portfolio's enrolment, no centre). Decided on the
    event loop, so the request costs no trip to a worker thread before its handler's.
    None: something is not held; `_authorized` decides, in a thread, as before.
    """
    if rule.target not in _HELD_TARGETS:
        return None
    principal = services.authenticate.held(header)
    if principal is None:
        return None
    scope = _scope(rule, principal, operation)
    try:
        return _grant(services, principal, rule.target, scope, path, None, query, held=True)
    except _NotHeld:
        return None


def _grant(  # noqa: PLR0917 - called through run_in_executor, which is positional
    services: Services,
    principal: Principal,
    target: Target,
    scope: Scope,
    path: dict[str, Any],
    body_centre: UUID | None,
    query: dict[str, str | None],
    *,
    held: bool = False,
) -> Grant:
    """The grant, or its refusal. `held`: from memory only, else `_NotHeld` (no read is made)."""
    portfolio: LearnerEnrolled | None = None
    centre_id: UUID | None = None
    if target is T.CENTRE:
        centre_id = path["centre_id"]
    elif target is T.CENTRE_IN_BODY:
        centre_id = body_centre
    elif target is T.PORTFOLIO:
        portfolio = _enrolment(services, path["portfolio_id"], held=held)
    elif target is T.DECISION:
        portfolio = _decision(services, principal, path["decision_id"])
    elif target is T.BLOB:
        centre_id = _query_centre(principal, query["centre_id"])
    elif target is T.LEARNER:
        centre_id = _learner_centre(services, principal, path["learner_id"])
    elif target is T.QUERY_SCOPE:
        centre_id = _query_centre(principal, query["centre_id"])
        if query["portfolio_id"] is not None:
            portfolio = enrolment(services.app, _uuid(query["portfolio_id"], "portfolio_id"))
            if query["centre_id"] is not None and portfolio.centre_id != centre_id:
                raise NotFound(
                    f"no portfolio {portfolio.portfolio_id} at centre {centre_id}",
                    field="portfolio_id",
                )
    if portfolio is not None:
        centre_id = portfolio.centre_id
    if held and scope in _CENTRE_READ and centre_id is not None:
        raise _NotHeld  # whether `_allowed` reads the centre depends on the caller too
    if not _allowed(services, principal, scope, centre_id, portfolio):
        raise problem(403, f"this {principal.role} has no access here", rule="out_of_scope")
    return Grant(principal=principal, centre_id=centre_id, portfolio=portfolio)


def _enrolment(services: Services, portfolio_id: UUID, *, held: bool) -> LearnerEnrolled:
    if not held:
        return enrolment(services.app, portfolio_id)
    portfolio = services.app.ledger.held_enrolment(portfolio_id)
    if portfolio is None:
        raise _NotHeld
    return portfolio


_HELD_TARGETS = frozenset({T.NONE, T.CENTRE, T.PORTFOLIO})
"""The targets a held grant decides: the others read a view, a centre or a portfolio."""
_CENTRE_READ = frozenset({S.EV_OF_CENTRE, S.CENTRE_STAFF, S.CENTRE_MEMBER})
"""The scopes `_allowed` may decide by reading the centre."""


def _allowed(
    services: Services,
    who: Principal,
    scope: Scope,
    centre_id: UUID | None,
    portfolio: LearnerEnrolled | None,
) -> bool:
    if scope is S.ANYONE:
        return True
    if centre_id is None:
        return False
    if scope is S.EV_OF_CENTRE:
        return who.subject_id in _centre(services, centre_id).evs
    if who.centre_id != centre_id:
        return False
    if scope is S.INTEGRATOR_OF_CENTRE:
        return True
    if scope is S.CENTRE_STAFF:
        return _centre(services, centre_id).staff_with_role(who.subject_id, who.role) is not None
    if scope is S.CENTRE_MEMBER:
        centre = _centre(services, centre_id)
        if who.role is R.LEARNER:
            return who.subject_id in centre.learners
        return centre.staff_with_role(who.subject_id, who.role) is not None
    people = {
        S.OWN_PORTFOLIO: portfolio.learner_id if portfolio else None,
        S.PORTFOLIO_ASSESSOR: portfolio.assessor_id if portfolio else None,
        S.PORTFOLIO_IQA: portfolio.iqa_id if portfolio else None,
    }
    return people.get(scope) == who.subject_id


def _centre(services: Services, centre_id: UUID) -> CentreState:
    """Ids and roles are all a grant reads: the facts (held decoded, names left sealed)."""
    return services.app.centre_facts(centre_id)


def _decision(services: Services, who: Principal, decision_id: UUID) -> LearnerEnrolled:
    missing = NotFound(f"no decision {decision_id} at your centre", field="decision_id")
    if who.centre_id is None:
        raise missing
    portfolio_id = decision_portfolio(services.view, decision_id, who.centre_id)
    if portfolio_id is None:
        services.catch_up()  # the decision may be newer than the view
        portfolio_id = decision_portfolio(services.view, decision_id, who.centre_id)
    if portfolio_id is None:
        raise missing
    return enrolment(services.app, portfolio_id)


def _learner_centre(services: Services, who: Principal, learner_id: UUID) -> UUID:
    """A learner is found at the caller's own centre or not at all (like a decision)."""
    if who.centre_id is None or learner_id not in _centre(services, who.centre_id).learners:
        raise NotFound(f"no learner {learner_id} at your centre", field="learner_id")
    return who.centre_id


def _query_centre(who: Principal, query_centre: str | None) -> UUID | None:
    return who.centre_id if query_centre is None else _uuid(query_centre, "centre_id")


def _uuid(text: str, field: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise problem(400, f"{field}: not a UUID", field=field) from None
