"""Ids belong to one centre: an admin at centre B holding a valid token, choosing any id.

Two attacks that worked before ids were claimed store-wide: B registers a learner id of
centre A and erases "their" learner (A's legal hold notwithstanding: key destroyed, tokens
revoked); B's assessor records a decision under A's decision id and takes over its routes.
Both are refused with 409 `id_already_used`, naming the field, and A's records are intact.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from tests.e2e.http.conftest import HttpCentre

ERASE = {"reason": "Learner request"}


def refused_as_used(response: httpx.Response, field: str) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["rule"], problem["field"]) == ("id_already_used", field)
    assert field.removesuffix("_id").replace("_", " ") in problem["detail"]


def names(centre: HttpCentre, kind: str) -> dict[str, str]:
    view = centre.as_("centre_admin").ok("GET", f"/centres/{centre.id}")
    return {person["id"]: person["name"] for person in view[kind]}


def test_another_centre_can_neither_register_nor_erase_a_learner_of_this_one(
    client: TestClient[Litestar],
) -> None:
    a, b = HttpCentre.create(client, "Centre A"), HttpCentre.create(client, "Centre B")
    learner = str(a.people["learner"].id)
    hold = {"learner_id": learner, "reason": "appeal"}
    a.as_("centre_admin").ok("POST", a.path("legal-holds"), hold)

    taken = b.as_("centre_admin").post(b.path("learners"), {"learner_id": learner, "name": "X"})
    refused_as_used(taken, "learner_id")
    erasure = b.as_("centre_admin").post(f"/learners/{learner}/erasure", ERASE)
    assert (erasure.status_code, erasure.json()["rule"]) == (404, "not_found")

    assert learner not in names(b, "learners")
    assert names(a, "learners")[learner] == "Learner"  # the key is still there
    assert a.as_("learner").ok("GET", "/me")["subject_id"] == learner  # the token too
    own = a.as_("centre_admin").post(f"/learners/{learner}/erasure", ERASE)
    assert (own.status_code, own.json()["rule"]) == (409, "legal_hold_applies")


def test_a_decision_id_of_another_centre_is_refused_and_keeps_its_routes(
    client: TestClient[Litestar],
) -> None:
    a, b = HttpCentre.create(client, "Centre A"), HttpCentre.create(client, "Centre B")
    seen = {"environment": "workplace", "criteria": ["PC3"]}
    trainees = a.enrol(assessor="trainee")
    observed = a.as_("trainee").ok("POST", f"/portfolios/{trainees}/observations", seen)
    decided = {"outcome": "met", "criteria": ["PC3"], "evidence_ids": [observed["created_id"]]}
    pending = a.as_("trainee").ok("POST", f"/portfolios/{trainees}/decisions", decided)
    decision_id = pending["created_id"]

    theirs = b.enrol()
    b_observed = b.as_("assessor").ok("POST", f"/portfolios/{theirs}/observations", seen)
    copied = decided | {"decision_id": decision_id, "evidence_ids": [b_observed["created_id"]]}
    refused_as_used(
        b.as_("assessor").post(f"/portfolios/{theirs}/decisions", copied, params={"wait": "true"}),
        "decision_id",
    )
    hijack = b.as_("assessor").post(f"/decisions/{decision_id}/countersignatures", {})
    assert hijack.status_code == 404

    signed = a.as_("assessor").post(f"/decisions/{decision_id}/countersignatures", {})
    assert signed.status_code == 201, signed.text
    assert UUID(signed.json()["stream_id"]) == trainees


def test_every_other_id_is_single_use_across_kinds_and_centres(
    client: TestClient[Litestar],
) -> None:
    a, b = HttpCentre.create(client, "Centre A"), HttpCentre.create(client, "Centre B")
    portfolio = a.enrol()
    work: dict[str, object] = {"method": "WP", "title": "Rota", "environment": "workplace"}
    work |= {"authenticity_declared": True}
    evidence = a.as_("learner").ok("POST", f"/portfolios/{portfolio}/evidence", work)
    evidence_id, ev_id = evidence["created_id"], str(a.people["ev"].id)
    theirs = b.enrol()
    refused_as_used(
        b.as_("learner").post(
            f"/portfolios/{theirs}/evidence", work | {"evidence_id": evidence_id}
        ),
        "evidence_id",
    )
    seen = {"environment": "workplace", "criteria": ["PC3"], "evidence_id": evidence_id}
    refused_as_used(
        a.as_("assessor").post(
            f"/portfolios/{a.enrol(learner='other_learner')}/observations", seen
        ),
        "evidence_id",
    )
    same = a.as_("learner").post(
        f"/portfolios/{portfolio}/evidence", work | {"evidence_id": evidence_id}
    )
    assert (same.status_code, same.json()["rule"]) == (409, "already_exists")  # the rule's own
    refused_as_used(
        a.as_("centre_admin").post(
            a.path("legal-holds"),
            {
                "hold_id": str(portfolio),
                "learner_id": str(a.people["learner"].id),
                "reason": "appeal",
            },
        ),
        "hold_id",
    )
    as_staff = {"staff_id": ev_id, "name": "E", "role": "iqa"}
    # at the EV's own centre the conflict-of-interest rule answers first, and says why
    own = a.as_("centre_admin").post(a.path("staff"), as_staff)
    assert (own.status_code, own.json()["rule"]) == (403, "conflict_of_interest")
    refused_as_used(b.as_("centre_admin").post(b.path("staff"), as_staff), "staff_id")
    staff = str(a.people["assessor"].id)
    refused_as_used(a.api.post(b.path("ev-allocations"), {"ev_id": staff, "name": "Alex"}), "ev_id")
    refused_as_used(a.api.post("/centres", {"centre_id": evidence_id, "name": "C"}), "centre_id")
    untouched = a.as_("learner").ok("GET", f"/portfolios/{portfolio}")
    assert untouched["version"] == 2  # enrolled, one evidence: nothing else landed there


def test_a_person_may_hold_several_roles_at_their_own_centre_only(
    client: TestClient[Litestar],
) -> None:
    a, b = HttpCentre.create(client, "Centre A"), HttpCentre.create(client, "Centre B")
    assessor = str(a.people["assessor"].id)
    admin = a.as_("centre_admin")
    admin.ok("POST", a.path("staff"), {"staff_id": assessor, "name": "Alex", "role": "iqa"})
    admin.ok("POST", a.path("witnesses"), {"witness_id": assessor, "name": "Alex"})
    admin.ok("POST", a.path("learners"), {"learner_id": assessor, "name": "Alex"})
    for path, body, field in (
        ("staff", {"staff_id": assessor, "name": "Alex", "role": "assessor"}, "staff_id"),
        ("witnesses", {"witness_id": assessor, "name": "Alex"}, "witness_id"),
        ("learners", {"learner_id": assessor, "name": "Alex"}, "learner_id"),
    ):
        refused_as_used(b.as_("centre_admin").post(b.path(path), body), field)

    ev = str(a.people["ev"].id)  # the awarding body's person: allocated to many centres
    shared = a.api.post(b.path("ev-allocations"), {"ev_id": ev, "name": "Evan Verifier"})
    assert shared.status_code == 201, shared.text
    assert b.api.as_(a.people["ev"].token).get(f"/centres/{b.id}").status_code == 200


def test_a_new_id_the_client_picks_is_taken_for_everyone_once_used(
    client: TestClient[Litestar],
) -> None:
    a, b = HttpCentre.create(client, "Centre A"), HttpCentre.create(client, "Centre B")
    chosen = str(uuid4())
    made = b.as_("centre_admin").post(b.path("learners"), {"learner_id": chosen, "name": "New"})
    assert made.status_code == 201, made.text
    again = a.as_("centre_admin").post(a.path("learners"), {"learner_id": chosen, "name": "Dup"})
    refused_as_used(again, "learner_id")
    assert chosen in names(b, "learners")
    assert chosen not in names(a, "learners")
