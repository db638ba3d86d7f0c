"""The tamper-evident log over HTTP: what an EV fetches and then checks offline.

An EV sample is covered by a signed checkpoint as soon as it is recorded; the export the EV
downloads verifies with no server, against the public key the API publishes; a GET never
issues a checkpoint, and a caller never exports another centre's portfolio.
"""

from __future__ import annotations

import io
import zipfile
from uuid import uuid4

from litestar import Litestar
from litestar.testing import TestClient

from adapters.audit.verify import verify_bundle
from tests.e2e.http.conftest import HttpCentre


def _sampled_portfolio(centre: HttpCentre) -> tuple[str, str]:
    pid = centre.enrol()
    p = f"/portfolios/{pid}"
    seen = {"environment": "workplace", "criteria": ["PC3"]}
    observed = centre.as_("assessor").ok("POST", f"{p}/observations", seen)["created_id"]
    decided = {"outcome": "met", "criteria": ["PC3"], "evidence_ids": [observed]}
    decision = centre.as_("assessor").ok("POST", f"{p}/decisions", decided)["created_id"]
    sample = {"decision_ids": [decision], "outcome": "agreed"}
    return str(centre.as_("ev").ok("POST", f"{p}/ev-samples", sample)["position"]), str(pid)


def test_before_any_checkpoint_there_is_nothing_to_export(centre: HttpCentre) -> None:
    ev = centre.as_("ev")
    latest = ev.get("/audit/checkpoints/latest")
    assert latest.status_code == 404
    assert latest.json()["rule"] == "no_checkpoint"
    refused = ev.get("/audit/export", params={"centre_id": str(centre.id)})
    assert refused.status_code == 409
    assert "POST /audit/checkpoints" in refused.json()["detail"]
    assert ev.get("/audit/checkpoints").json() == []  # and the GETs issued none


def test_an_ev_sample_is_checkpointed_and_its_export_verifies_offline(
    centre: HttpCentre,
) -> None:
    position, pid = _sampled_portfolio(centre)
    ev = centre.as_("ev")
    issued = ev.ok("GET", "/audit/checkpoints")
    assert [c["reason"] for c in issued] == ["ev_sample"]
    latest = ev.ok("GET", "/audit/checkpoints/latest")
    assert latest == issued[-1]
    assert latest["tree_size"] >= int(position)  # positions count from 1, as leaves do
    key = ev.ok("GET", "/audit/public-key")
    assert latest["key_id"] == key["key_id"]

    for params in ({"centre_id": str(centre.id)}, {"portfolio_id": pid}):
        response = ev.get("/audit/export", params=params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/zip"
        report = verify_bundle(response.content, trusted_key=key["vkey"])
        assert report.verified, report.lines()
        names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
        assert any(name.endswith(".html") for name in names)


def test_a_checkpoint_on_demand_is_issued_only_when_the_log_moved(centre: HttpCentre) -> None:
    admin = centre.as_("admin")
    first = admin.ok("POST", "/audit/checkpoints")
    again = admin.ok("POST", "/audit/checkpoints")
    assert again["event_id"] == first["event_id"]
    centre.learner("newcomer")
    moved = admin.ok("POST", "/audit/checkpoints")
    assert moved["tree_size"] > first["tree_size"]
    assert [c["event_id"] for c in admin.ok("GET", "/audit/checkpoints")] == [
        first["event_id"],
        moved["event_id"],
    ]


def test_nobody_exports_another_centres_portfolio(client: TestClient[Litestar]) -> None:
    a, b = HttpCentre.create(client, "Centre A"), HttpCentre.create(client, "Centre B")
    _, theirs = _sampled_portfolio(b)
    a.as_("admin").ok("POST", "/audit/checkpoints")
    for who in ("centre_admin", "ev"):
        refused = a.as_(who).get("/audit/export", params={"portfolio_id": theirs})
        assert (refused.status_code, refused.json()["rule"]) == (403, "out_of_scope")
    mixed = {"portfolio_id": theirs, "centre_id": str(a.id)}
    assert a.as_("admin").get("/audit/export", params=mixed).status_code == 404


def test_exporting_an_unknown_centre_is_404_naming_it(centre: HttpCentre) -> None:
    """As everywhere else: a query naming what is not there is 404 (documented), not 422."""
    admin = centre.as_("admin")
    admin.ok("POST", "/audit/checkpoints")
    unknown = str(uuid4())
    refused = admin.get("/audit/export", params={"centre_id": unknown})
    assert (refused.status_code, refused.json()["field"]) == (404, "centre_id")
    assert unknown in refused.json()["detail"]
