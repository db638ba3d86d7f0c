"""Reads: read-your-writes with ?wait=true, time travel, the EV audit view, units, blobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from adapters.config import Config
from adapters.http.app import create_app
from adapters.http.settings import HttpSettings
from tests.e2e.http.conftest import ADMIN_TOKEN, SEED_000, HttpCentre, sha256

SEEN = {"environment": "workplace", "criteria": ["PC3", "a"], "customer_ref": "cust-1"}


def pc3(coverage: dict[str, object]) -> str:
    rows = coverage["criteria"]
    assert isinstance(rows, list)
    return str(next(r["status"] for r in rows if r["id"] == "PC3"))


def test_wait_true_answers_once_coverage_shows_the_write(centre: HttpCentre) -> None:
    pid = centre.enrol()
    assessor = centre.as_("assessor")
    seen = assessor.ok("POST", f"/portfolios/{pid}/observations", SEEN, params={"wait": "true"})
    assert seen["visible"] is True
    decision = {"outcome": "met", "criteria": ["PC3"], "evidence_ids": [seen["created_id"]]}
    made = assessor.ok("POST", f"/portfolios/{pid}/decisions", decision, params={"wait": "true"})
    assert made["visible"] is True
    assert pc3(centre.as_("learner").ok("GET", f"/portfolios/{pid}/coverage")) == "met"
    audit = centre.as_("ev").ok("GET", centre.path("audit"), params={"portfolio_id": str(pid)})
    assert [c["decision_id"] for c in audit["decisions"]] == [made["created_id"]]


@pytest.fixture
def stalled(config: Config, tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    """An app whose projections do not follow the log: views never catch up."""
    settings = HttpSettings(admin_token=ADMIN_TOKEN, wait_seconds=0.2, blob_dir=tmp_path)
    with TestClient(create_app(config, settings, follow=False)) as client:
        yield client


def test_wait_true_says_when_the_views_did_not_catch_up_in_time(
    stalled: TestClient[Litestar],
) -> None:
    admin = HttpCentre.create(stalled, "Slow College").as_("admin")
    made = admin.ok("POST", "/centres", {"name": "Another"}, params={"wait": "true"})
    assert (made["visible"], made["replayed"]) == (False, False)


def test_as_known_at_and_effective_at_show_the_portfolio_as_it_was(centre: HttpCentre) -> None:
    pid = centre.enrol(effective_on="2026-01-05")
    before = datetime.now(UTC).isoformat()
    backdated = SEEN | {"effective_on": "2026-02-01"}
    centre.as_("assessor").ok(
        "POST", f"/portfolios/{pid}/observations", backdated, params={"wait": "true"}
    )
    learner = centre.as_("learner")
    then = learner.ok("GET", f"/portfolios/{pid}/coverage", params={"as_known_at": before})
    now = learner.ok("GET", f"/portfolios/{pid}/coverage")
    true_in_january = learner.ok(
        "GET", f"/portfolios/{pid}/coverage", params={"effective_at": "2026-01-31"}
    )
    assert (pc3(then), pc3(now), pc3(true_in_january)) == (
        "not_evidenced",
        "evidenced",
        "not_evidenced",
    )
    history = learner.ok("GET", f"/portfolios/{pid}/history", params={"as_known_at": before})
    assert len(history) == 1
    naive = learner.get(f"/portfolios/{pid}/sufficiency?as_known_at=2026-01-01T00:00:00")
    assert (naive.status_code, naive.json()["field"]) == (400, "as_known_at")
    long_ago = learner.get(f"/portfolios/{pid}/history?as_known_at={quote('2000-01-01T00:00:00Z')}")
    assert long_ago.status_code == 404


def test_the_audit_trail_pages_with_a_cursor_and_filters(centre: HttpCentre) -> None:
    pid = centre.enrol()
    for n in range(3):
        seen = SEEN | {"customer_ref": f"cust-{n}"}
        centre.as_("assessor").ok("POST", f"/portfolios/{pid}/observations", seen)
    centre.as_("assessor").ok(
        "POST", f"/portfolios/{pid}/questioning", {"method": "Q", "criteria": ["K1"]},
        params={"wait": "true"},
    )  # fmt: skip
    ev = centre.as_("ev")
    first = ev.ok("GET", centre.path("audit"), params={"limit": "5"})
    assert len(first["trail"]) == 5
    assert first["next_after"] is not None
    rest = ev.ok("GET", centre.path("audit"), params={"after": str(first["next_after"])})
    positions = [e["position"] for e in first["trail"] + rest["trail"]]
    assert positions == sorted(set(positions))
    observed = ev.ok(
        "GET",
        centre.path("audit"),
        params={
            "portfolio_id": str(pid),
            "event_type": "eportfolio.portfolio.observation_recorded",
        },
    )
    assert len(observed["trail"]) == 3


def test_units_are_listed_and_read_by_code(centre: HttpCentre) -> None:
    learner = centre.as_("learner")
    codes = {u["code"] for u in learner.ok("GET", "/units")}
    assert SEED_000 in codes
    assert len(codes) == 5
    spec = learner.ok("GET", f"/units/{SEED_000}")
    assert [c["id"] for c in spec["criteria"] if c["must_observe"]] == [
        "PC3",
        "PC4",
        "PC5",
        "PC6",
        "PC7",
    ]
    assert learner.get("/units/NO-SUCH-UNIT").status_code == 404


def test_a_blob_is_read_back_by_its_centre_and_by_nobody_elses(
    client: TestClient[Litestar], centre: HttpCentre
) -> None:
    photo = b"\x89PNG pretend"
    uploaded = centre.as_("learner").ok("PUT", f"/blobs/{sha256(photo)}", content=photo)
    assert uploaded == {"sha256": sha256(photo), "size": len(photo), "created": True}
    again = centre.as_("assessor").ok("PUT", f"/blobs/{sha256(photo)}", content=photo)
    assert again["created"] is False
    assert centre.as_("iqa").get(f"/blobs/{sha256(photo)}").content == photo
    other = HttpCentre.create(client, "Elsewhere")
    assert other.as_("learner").get(f"/blobs/{sha256(photo)}").status_code == 404
    ev = centre.as_("ev")
    assert ev.get(f"/blobs/{sha256(photo)}").status_code == 403
    by_ev = ev.get(f"/blobs/{sha256(photo)}", params={"centre_id": str(centre.id)})
    assert by_ev.content == photo


def test_the_centre_and_the_caller_are_described(centre: HttpCentre) -> None:
    view = centre.as_("centre_admin").ok("GET", f"/centres/{centre.id}")
    roles = sorted(s["role"] for s in view["staff"])
    assert roles == ["assessor", "assessor", "assessor", "centre_admin", "iqa"]
    assert (len(view["learners"]), len(view["evs"])) == (2, 1)
    me = centre.as_("trainee").ok("GET", "/me")
    assert (me["role"], me["centre_id"]) == ("assessor", str(centre.id))
