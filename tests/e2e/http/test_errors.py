"""Problem details for every kind of error, each naming its rule or field; nothing half-written.

Each test that makes a write fail also checks the log did not move: a refused command
leaves no event, no receipt and no token behind.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from adapters.http.dependencies import Services
from tests.e2e.http.conftest import MAX_BLOB, Api, HttpCentre, sha256

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == f"urn:eportfolio:problem:{body['rule']}"
    assert body["instance"] == response.request.url.path
    return body


def head(client: TestClient[Litestar]) -> int:
    services = client.app.state.services
    assert isinstance(services, Services)
    return services.app.ledger.recorder.max_notification_id() or 0


def token_count(client: TestClient[Litestar]) -> int:
    services = client.app.state.services
    rows = services.tokens.db.execute("SELECT count(*) FROM {table}")
    return int(rows[0][0])


@pytest.fixture
def portfolio(centre: HttpCentre) -> str:
    return f"/portfolios/{centre.enrol()}"


def test_a_malformed_body_is_400_naming_the_field_path(
    client: TestClient[Litestar], centre: HttpCentre
) -> None:
    before = head(client)
    policy = {"default": {"min_occasions": 0}}
    body = problem(centre.as_("centre_admin").put(centre.path("sufficiency-policy"), policy), 400)
    assert (body["rule"], body["field"]) == ("malformed_request", "default.min_occasions")
    unknown = centre.as_("centre_admin").post(centre.path("learners"), {"name": "A", "age": 17})
    assert problem(unknown, 400)["field"] == "age"
    broken = centre.as_("centre_admin").request(
        "POST", centre.path("learners"), content=b"{not json"
    )
    assert problem(broken, 400)["rule"] == "malformed_request"
    assert head(client) == before


def test_no_token_or_an_unknown_one_is_401_with_a_bearer_challenge(centre: HttpCentre) -> None:
    for token in (None, "ep_not-a-real-token"):
        response = centre.api.as_(token).get("/units")
        assert problem(response, 401)["rule"] == "unauthenticated"
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_token_stops_working(centre: HttpCentre) -> None:
    issued = centre.as_("admin").ok(
        "POST", "/tokens", {"role": "integrator", "centre_id": str(centre.id)}
    )
    assert centre.api.as_(issued["token"]).get("/me").status_code == 200
    revoked = centre.as_("admin").request("DELETE", f"/tokens/{issued['token_id']}")
    assert revoked.status_code == 204
    problem(centre.api.as_(issued["token"]).get("/me"), 401)


def test_a_missing_portfolio_is_404_and_a_missing_reference_in_the_body_is_422(
    centre: HttpCentre, portfolio: str
) -> None:
    assert problem(centre.as_("learner").get(f"/portfolios/{uuid4()}"), 404)["field"] == (
        "portfolio_id"
    )
    decision = {"outcome": "met", "criteria": ["PC1"], "evidence_ids": [str(uuid4())]}
    body = problem(centre.as_("assessor").post(f"{portfolio}/decisions", decision), 422)
    assert (body["rule"], body["field"]) == ("not_found", "evidence_ids")


def test_registering_the_same_person_twice_is_409_and_leaves_no_token(
    client: TestClient[Litestar], centre: HttpCentre
) -> None:
    staff_id = str(centre.people["assessor"].id)
    before, tokens = head(client), token_count(client)
    again = {"staff_id": staff_id, "name": "Alex", "role": "assessor"}
    body = problem(centre.as_("centre_admin").post(centre.path("staff"), again), 409)
    assert (body["rule"], body["field"]) == ("already_exists", "staff_id")
    assert (head(client), token_count(client)) == (before, tokens)


def test_a_stale_if_match_is_412_and_the_current_one_writes(
    client: TestClient[Litestar], centre: HttpCentre, portfolio: str
) -> None:
    learner = centre.as_("learner")
    etag = learner.get(portfolio).headers["etag"]
    assert etag == '"1"'
    work = {"method": "WP", "title": "Log", "environment": "workplace"}
    work["authenticity_declared"] = True  # type: ignore[assignment]
    written = learner.post(f"{portfolio}/evidence", work, headers={"If-Match": etag})
    assert (written.status_code, written.headers["etag"]) == (201, '"2"')
    before = head(client)
    stale = learner.post(f"{portfolio}/evidence", work, headers={"If-Match": etag})
    assert problem(stale, 412)["field"] == "If-Match"
    assert problem(learner.post(f"{portfolio}/evidence", work, headers={"If-Match": "7"}), 400)
    assert head(client) == before
    assert learner.get(portfolio).headers["etag"] == '"2"'


def test_a_domain_rule_is_422_with_its_name_and_a_signing_rule_is_403_with_its_name(
    client: TestClient[Litestar], centre: HttpCentre
) -> None:
    pid = f"/portfolios/{centre.enrol(assessor='trainee')}"
    trainee = centre.as_("trainee")
    before = head(client)
    simulated = {"environment": "simulation", "criteria": ["PC3"]}
    body = problem(trainee.post(f"{pid}/observations", simulated), 422)
    assert (body["rule"], body["field"]) == ("simulation_not_allowed_for_performance", "criteria")
    assert head(client) == before
    seen = trainee.ok("POST", f"{pid}/observations", simulated | {"environment": "workplace"})
    decision = {"outcome": "met", "criteria": ["PC3"], "evidence_ids": [seen["created_id"]]}
    made = trainee.ok("POST", f"{pid}/decisions", decision)
    own = trainee.post(f"/decisions/{made['created_id']}/countersignatures", {})
    assert problem(own, 403)["rule"] == "not_own_decision"


def test_an_idempotency_key_replays_the_first_result_and_refuses_another_body(
    client: TestClient[Litestar], centre: HttpCentre, portfolio: str
) -> None:
    learner = centre.as_("learner")
    work = {"method": "WP", "title": "Log", "environment": "workplace"}
    work["authenticity_declared"] = True  # type: ignore[assignment]
    key = {"Idempotency-Key": "evidence-2026-09-01-1"}
    first = learner.ok("POST", f"{portfolio}/evidence", work, headers=key)
    before = head(client)
    again = learner.ok("POST", f"{portfolio}/evidence", work, headers=key)
    assert again == first | {"replayed": True, "visible": again["visible"]}
    assert head(client) == before
    other = learner.post(f"{portfolio}/evidence", work | {"title": "Other"}, headers=key)
    assert problem(other, 422)["rule"] == "idempotency_key_reused"
    assert head(client) == before


def test_a_replayed_registration_does_not_show_or_mint_another_token(
    client: TestClient[Litestar], centre: HttpCentre
) -> None:
    admin = centre.as_("centre_admin")
    key = {"Idempotency-Key": "new-starter-jo"}
    first = admin.ok("POST", centre.path("learners"), {"name": "Jo"}, headers=key)
    tokens = token_count(client)
    again = admin.ok("POST", centre.path("learners"), {"name": "Jo"}, headers=key)
    assert (again["created_id"], again["replayed"], again["token"]) == (
        first["created_id"],
        True,
        None,
    )
    assert token_count(client) == tokens
    assert Api(client, first["token"]).ok("GET", "/me")["subject_id"] == first["created_id"]


def test_too_large_is_413_for_a_blob_and_for_a_json_body(centre: HttpCentre) -> None:
    big = b"x" * (MAX_BLOB + 1)
    body = problem(centre.as_("learner").request("PUT", f"/blobs/{sha256(big)}", content=big), 413)
    assert body["rule"] in ("blob_too_large", "too_large")
    huge = {"name": "x", "position": "y" * 2_000_000}
    problem(centre.as_("centre_admin").post(centre.path("witnesses"), huge), 413)


def test_a_blob_whose_bytes_do_not_match_its_hash_is_refused_and_not_kept(
    centre: HttpCentre, portfolio: str
) -> None:
    learner = centre.as_("learner")
    body = problem(learner.request("PUT", f"/blobs/{sha256(b'a')}", content=b"b"), 422)
    assert (body["rule"], body["field"]) == ("blob_hash_mismatch", "sha256")
    problem(learner.get(f"/blobs/{sha256(b'a')}"), 404)
    attached = {
        "method": "WP",
        "title": "Photo",
        "environment": "workplace",
        "authenticity_declared": True,
        "attachments": [{"sha256": sha256(b"a"), "media_type": "image/png", "size": 1}],
    }
    body = problem(learner.post(f"{portfolio}/evidence", attached), 422)
    assert (body["rule"], body["field"]) == ("attachment_not_uploaded", "attachments[0].sha256")
