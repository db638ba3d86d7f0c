"""The OpenAPI document at /schema, and schemathesis against it: no 5xx, nothing off-schema.

schemathesis generates requests from the document (valid ones, then invalid ones) and
checks each response: status code documented, content type documented, body valid against
the documented schema, declared headers right, never a server error. Requests go through
litestar's test client (in process), carrying a token of a role the operation allows, with
the path's ids pointing at a real centre, portfolio and decision so handlers run deep.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from litestar import Litestar
from litestar.testing import TestClient
from openapi_spec_validator import OpenAPIV31SpecValidator
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import ignored_auth

from adapters.config import Config
from adapters.http.app import create_app
from adapters.http.policy import POLICY, PUBLIC_OPERATIONS
from adapters.streams.envelope import TYPES
from domain.events import Role
from tests.conftest import with_kek
from tests.e2e.http.conftest import ADMIN_TOKEN, settings, with_signing_key
from tests.e2e.http.test_permissions import World, build_world

EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 8}
#: Auth is ours (a real token), not generated: 401s are tested by the permission test.
NOT_CHECKED = [ignored_auth]
#: A schema-valid request must be accepted (a 400 means the document promised too much),
#: unless it breaks a business rule the operation documents: it names what is not there
#: (404), conflicts (409), names a stale version (412) or breaks a domain rule (422).
#: Every answer must match its documented schema, status, content type and headers.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "response_schema_conformance": {"enabled": True},
            "positive_data_acceptance": {
                "enabled": True,
                "expected-statuses": ["2xx", "401", "403", "404", "409", "412", "422", "429"],
            },
        }
    }
)
#: A live SSE stream never ends, so a generated request would never get its whole answer;
#: tests/e2e/streams/test_sse.py drives it with an SSE client instead.
ENDLESS = {"stream_events"}
WHO = {
    Role.ADMIN: "admin",
    Role.CENTRE_ADMIN: "centre_admin",
    Role.ASSESSOR: "assessor",
    Role.IQA: "iqa",
    Role.EV: "ev",
    Role.LEARNER: "learner",
    Role.INTEGRATOR: "integrator",
}


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient[Litestar], World]]:
    """One SQLite-backed app for the whole run: the document is the same on either store."""
    data = tmp_path_factory.mktemp("schema")
    app = create_app(
        with_signing_key(with_kek(Config(data_dir=data)), data), settings(data / "blobs")
    )
    with TestClient(app) as client:
        yield client, build_world(client)


def test_the_document_is_served_and_every_operation_is_typed(
    served: tuple[TestClient[Litestar], World],
) -> None:
    client, _ = served
    document = client.get("/schema/openapi.json").json()
    operations = [op for item in document["paths"].values() for op in item.values()]
    desk = {op for op in POLICY if op.startswith("ui_")}  # pages, not in the API document
    assert {op["operationId"] for op in operations} == (set(POLICY) | PUBLIC_OPERATIONS) - desk
    for op in operations:
        if op["operationId"] in PUBLIC_OPERATIONS:
            assert op["security"] == [{}], op["operationId"]  # no token: none refused
            continue
        assert {"401", "403"} <= set(op["responses"]), op["operationId"]
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"], status
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_document_is_valid_openapi_3_1(
    served: tuple[TestClient[Litestar], World],
) -> None:
    """An independent validator (openapi-spec-validator) accepts /schema/openapi.json whole."""
    client, _ = served
    document = client.get("/schema/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in OpenAPIV31SpecValidator(document).iter_errors()
    ]
    assert errors == []


def _bounds(node: Any) -> Iterator[tuple[str, Any]]:
    """Every minimum/maximum in a document, with its value."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"minimum", "maximum"}:
                yield key, value
            yield from _bounds(value)
    elif isinstance(node, list):
        for item in node:
            yield from _bounds(item)


def test_integer_bounds_are_exact_integers(
    served: tuple[TestClient[Litestar], World],
) -> None:
    """A client generated from the document gets the real cursor limit, not a float past it."""
    client, world = served
    document = client.get("/schema/openapi.json").json()
    events = {p["name"]: p["schema"] for p in document["paths"]["/events"]["get"]["parameters"]}
    assert events["after"]["maximum"] == 2**63 - 1
    assert events["after"]["minimum"] == 0
    integers = [v for _, v in _bounds(document) if isinstance(v, float) and v.is_integer()]
    assert integers == [], "an integer bound written as a float"
    token = world.a.as_("ev").token
    past = client.get(
        f"/centres/{world.a.id}/audit",
        params={"after": 2**63},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert past.status_code == 400
    assert past.json()["field"] == "after"


@pytest.mark.parametrize(
    ("value", "accepted"),
    [('"3"', True), ("*", True), ('\t"3" ', True), ("3", False), ('W/"3"', False),
     ('"3", "4"', False), ('"-1"', False), ('"1234567890123456789"', False)],
)  # fmt: skip
def test_if_match_is_taken_exactly_as_documented(
    served: tuple[TestClient[Litestar], World], value: str, accepted: bool
) -> None:
    """What the pattern in /schema allows is what the server reads, and nothing else."""
    client, world = served
    document = client.get("/schema/openapi.json").json()
    parameters = document["paths"]["/webhooks/{webhook_id}"]["patch"]["parameters"]
    (header,) = [p["schema"] for p in parameters if p["name"] == "If-Match"]
    assert header["type"] == "string"
    assert (re.fullmatch(header["pattern"], value) is not None) is accepted
    token = world.a.as_("integrator").token
    answer = client.patch(
        f"/webhooks/{uuid4()}",
        json={},
        headers={"If-Match": value, "Authorization": f"Bearer {token}"},
    )
    # read, then the webhook looked up: an unknown one is 404 once the header is accepted
    assert (answer.status_code, answer.json()["field"]) == (
        (404, "webhook_id") if accepted else (400, "If-Match")
    )


def test_idempotency_key_is_documented_as_checked(
    served: tuple[TestClient[Litestar], World],
) -> None:
    client, _ = served
    document = client.get("/schema/openapi.json").json()
    parameters = document["paths"]["/portfolios/{portfolio_id}/evidence"]["post"]["parameters"]
    (header,) = [p["schema"] for p in parameters if p["name"] == "Idempotency-Key"]
    assert (header["type"], header["minLength"], header["maxLength"]) == ("string", 1, 200)
    for key in ("a b", "x" * 201, ""):
        assert re.fullmatch(header["pattern"], key) is None
        answer = client.post(
            "/centres",
            json={},
            headers={"Idempotency-Key": key, "Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert (answer.status_code, answer.json()["field"]) == (400, "Idempotency-Key")


def test_event_types_and_webhook_urls_are_documented_as_refused(
    served: tuple[TestClient[Litestar], World],
) -> None:
    """A type outside the documented enum is refused naming it; a URL must be a URI."""
    client, world = served
    document = client.get("/schema/openapi.json").json()
    feed = {p["name"]: p["schema"] for p in document["paths"]["/events"]["get"]["parameters"]}
    assert feed["type"]["type"] == "array"
    assert set(feed["type"]["items"]["enum"]) == set(TYPES)
    for body in ("NewWebhook", "WebhookChanges"):
        fields = document["components"]["schemas"][body]["properties"]
        assert fields["types"]["items"]["enum"] == feed["type"]["items"]["enum"]
        assert fields["url"]["format"] == "uri"
    auth = {"Authorization": f"Bearer {world.a.as_('integrator').token}"}
    known = client.get("/events", params={"type": sorted(TYPES)[0]}, headers=auth)
    assert known.status_code == 200
    unknown = client.get("/events", params={"type": "uk.eportfolio.nothing.v9"}, headers=auth)
    assert (unknown.status_code, unknown.json()["field"]) == (400, "type")
    not_a_uri = client.post("/webhooks", json={"url": "not a uri"}, headers=auth)
    assert (not_a_uri.status_code, not_a_uri.json()["field"]) == (422, "url")


def test_an_event_schema_is_documented_as_the_json_schema_it_answers(
    served: tuple[TestClient[Litestar], World],
) -> None:
    client, world = served
    document = client.get("/schema/openapi.json").json()
    operation = document["paths"]["/schemas/events/{name}"]["get"]
    (name,) = operation["parameters"]
    documented = operation["responses"]["200"]["content"]["application/schema+json"]["schema"]
    assert documented["type"] == "object"
    auth = {"Authorization": f"Bearer {world.a.as_('integrator').token}"}
    for each in (name["schema"]["enum"][0], name["schema"]["enum"][-1]):
        answer = client.get(f"/schemas/events/{each}", headers=auth)
        assert answer.headers["content-type"].startswith("application/schema+json")
        assert answer.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert client.get("/schemas/events/nothing.v9", headers=auth).status_code == 404


def test_request_texts_are_documented_nul_free_and_answers_promise_nothing(
    served: tuple[TestClient[Litestar], World],
) -> None:
    """The body guard refuses NUL in any text (400 naming it); /schema says so of bodies."""
    client, world = served
    components = client.get("/schema/openapi.json").json()["components"]["schemas"]
    notes = components["NewObservation"]["properties"]["notes"]
    assert re.search(notes["not"]["pattern"], "a\x00b")
    assert "not" not in components["WebhookView"]["properties"]["url"]  # an answer
    seen = {"environment": "workplace", "criteria": ["PC3"], "notes": "a\x00b"}
    answer = client.post(
        f"/portfolios/{world.of_a.portfolio}/observations",
        json=seen,
        headers={"Authorization": f"Bearer {world.a.as_('assessor').token}"},
    )
    assert (answer.status_code, answer.json()["field"]) == (400, "notes")


def _ids(world: World) -> dict[str, str]:
    return {
        "centre_id": str(world.a.id),
        "portfolio_id": str(world.of_a.portfolio),
        "decision_id": str(world.of_a.pending),
        "evidence_id": str(world.of_a.evidence),
    }


def _positive(case: Any, location: ParameterLocation) -> bool:
    info = case.meta.components.get(location) if case.meta else None
    return info is None or info.mode.is_positive


def _send(client: TestClient[Litestar], case: Any, world: World, token: str) -> Any:
    """The case as generated, but with real ids and a real token where those are not the
    part deliberately made invalid (so an invalid body meets the handler, not a 404)."""
    if _positive(case, ParameterLocation.PATH) and case.path_parameters:
        for name, value in _ids(world).items():
            if name in case.path_parameters:
                case.path_parameters[name] = value
    auth = {"Authorization": f"Bearer {token}"}
    kwargs = case.as_transport_kwargs(
        headers=auth if _positive(case, ParameterLocation.HEADER) else None
    )
    body = kwargs.get("json")
    content = None if "json" in kwargs else kwargs.get("data")
    # A generated header may hold any byte a server can be sent; httpx encodes str as ASCII.
    headers = {k: v.encode() if isinstance(v, str) else v for k, v in kwargs["headers"].items()}
    return client.request(
        kwargs["method"],
        kwargs["url"].removeprefix("http://localhost"),
        headers=headers,
        params=kwargs.get("params"),
        json=body,
        content=content.encode() if isinstance(content, str) else content,
    )


def _fuzz(
    client: TestClient[Litestar],
    world: World,
    operation: Any,
    mode: GenerationMode,
) -> None:
    """Run one operation's examples as a caller whose role the operation allows."""
    rule = POLICY.get(operation.definition.raw["operationId"])
    role = next(iter(rule.roles)) if rule is not None else Role.LEARNER  # public: anyone
    token = world.a.as_(WHO[role]).token or ""

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = _send(client, case, world, token)
        case.validate_response(response, excluded_checks=NOT_CHECKED)

    check()


@pytest.mark.parametrize("mode", list(EXAMPLES))
def test_schemathesis_finds_no_server_error_and_no_off_schema_answer(
    served: tuple[TestClient[Litestar], World], mode: GenerationMode
) -> None:
    client, world = served
    document = client.get("/schema/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    failures: list[str] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        raw = operation.definition.raw
        if raw["operationId"] in ENDLESS:
            continue
        if mode is GenerationMode.NEGATIVE and raw.get("security") == [{}]:
            continue  # the public contracts take no token and no constrained input
        try:
            _fuzz(client, world, operation, mode)
        except (AssertionError, BaseExceptionGroup) as failure:  # every operation's failures
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
