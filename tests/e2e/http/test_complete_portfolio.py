"""A complete seed-000 portfolio through the ASGI app, on SQLite and on PostgreSQL."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import TestClient

from tests.e2e.http.scenario import EVERYTHING, build_complete_portfolio


def test_a_portfolio_built_over_http_is_complete_and_sufficient(
    client: TestClient[Litestar],
) -> None:
    centre, pid, coverage, sufficiency = build_complete_portfolio(client)
    assert (coverage["complete"], coverage["gaps"]) == (True, [])
    assert {row["id"] for row in coverage["criteria"]} == set(EVERYTHING)
    assert {row["status"] for row in coverage["criteria"]} == {"iqa_sampled"}
    assert sufficiency["passed"], sufficiency
    assert (sufficiency["policy_version"], sufficiency["figures"]["occasions"]["value"]) == (1, 3)

    history = centre.as_("iqa").ok("GET", f"/portfolios/{pid}/history")
    kinds = [entry["event_type"].rsplit(".", 1)[-1] for entry in history]
    assert kinds[0] == "learner_enrolled"
    assert kinds[-3:] == ["decision_recorded", "decision_countersigned", "iqa_sample_recorded"]
    portfolio = centre.as_("learner").ok("GET", f"/portfolios/{pid}")
    assert portfolio["version"] == len(history)
    assert [d["stands"] for d in portfolio["decisions"]] == [True]
