"""A trainee assessor qualifies: from then on their decisions stand alone; earlier ones wait.

Each decision records its author's qualification when it was made, so qualifying later
never turns an uncountersigned decision into one that stands.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.http.conftest import HttpCentre


def _decide(centre: HttpCentre, pid: str) -> Any:
    p = f"/portfolios/{pid}"
    seen = {"environment": "workplace", "criteria": ["PC3"]}
    observed = centre.as_("trainee").ok("POST", f"{p}/observations", seen)["created_id"]
    decided = {"outcome": "met", "criteria": ["PC3"], "evidence_ids": [observed]}
    return centre.as_("trainee").ok("POST", f"{p}/decisions", decided)


def test_decisions_after_qualifying_stand_and_earlier_ones_still_need_countersigning(
    centre: HttpCentre,
) -> None:
    pid = str(centre.enrol(assessor="trainee"))
    _decide(centre, pid)
    trainee = centre.people["trainee"].id
    path = centre.path(f"staff/{trainee}/qualification")
    change = {"role": "assessor", "qualification": "qualified"}
    refused = centre.as_("assessor").put(path, change)
    assert (refused.status_code, refused.json()["rule"]) == (403, "role_not_allowed")
    centre.as_("centre_admin").ok("PUT", path, change)
    _decide(centre, pid)

    staff = centre.as_("centre_admin").ok("GET", f"/centres/{centre.id}")["staff"]
    assert {s["qualification"] for s in staff if s["staff_id"] == str(trainee)} == {"qualified"}
    decisions = centre.as_("learner").ok("GET", f"/portfolios/{pid}")["decisions"]
    assert [(d["author_qualification"], d["stands"]) for d in decisions] == [
        ("trainee", False),
        ("qualified", True),
    ]


def test_an_unknown_member_of_staff_is_not_found(centre: HttpCentre) -> None:
    path = centre.path("staff/00000000-0000-4000-8000-000000000000/qualification")
    missing = centre.as_("centre_admin").put(
        path, {"role": "assessor", "qualification": "qualified"}
    )
    assert missing.status_code == 404, missing.text
    assert missing.json()["field"] == "staff_id"
