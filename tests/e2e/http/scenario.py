"""A complete seed-000 portfolio built through HTTP alone, as a centre would.

Seed 000: "The assessor must assess PCs 3-7 by directly observing"; "two from (a)-(d)"
by direct observation, the rest by questioning or witness testimony; knowledge may be
inferred or asked. A trainee assessor decides, a qualified assessor countersigns, the IQA
samples. Evidence spans several occasions, customers and weeks (effective dates in the
past: what was done then, recorded now), against a sufficiency policy set through the API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from tests.e2e.http.conftest import HttpCentre, sha256

OBSERVED = ("PC3", "PC4", "PC5", "PC6", "PC7", "a", "b")
OTHER_PCS = ("PC1", "PC2", *(f"PC{n}" for n in range(8, 17)))
KNOWLEDGE = tuple(f"K{n}" for n in range(1, 8))
EVERYTHING = (*OBSERVED[:5], *OTHER_PCS, *KNOWLEDGE, "a", "b", "c", "d")


def days_ago(n: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=n)).isoformat()


def build_complete_portfolio(
    client: httpx.Client | TestClient[Litestar],
) -> tuple[HttpCentre, str, dict[str, Any], dict[str, Any]]:
    """Returns the centre, the portfolio id and its coverage and sufficiency reports."""
    centre = HttpCentre.create(client, "Riverside Hospitality Academy")
    policy = {
        "default": {
            "min_occasions": 3,
            "min_distinct_dates": 3,
            "min_distinct_customers": 3,
            "min_span_days": 21,
        },
        "decision_ref": "Standardisation meeting, spring term",
    }
    centre.as_("centre_admin").ok("PUT", centre.path("sufficiency-policy"), policy)
    pid = str(centre.enrol(assessor="trainee", effective_on=days_ago(60)))
    trainee, learner = centre.as_("trainee"), centre.as_("learner")
    base = f"/portfolios/{pid}"

    observation = {
        "occasion": "Saturday lunch service",
        "customer_ref": "cust-101",
        "environment": "workplace",
        "criteria": list(OBSERVED),
        "notes": "Handled a double-booking end to end.",
        "effective_on": days_ago(40),
    }
    evidence = [trainee.ok("POST", f"{base}/observations", observation)["created_id"]]

    testimony = {
        "witness_id": str(centre.witness_id),
        "occasion": "Conference week",
        "customer_ref": "cust-202",
        "environment": "workplace",
        "criteria": [*OTHER_PCS, "c"],
        "statement": "I saw the candidate resolve a billing complaint.",
        "effective_on": days_ago(25),
    }
    evidence.append(learner.ok("POST", f"{base}/witness-testimonies", testimony)["created_id"])

    log = b"Complaint log, 3 pages\n"
    uploaded = learner.request("PUT", f"/blobs/{sha256(log)}", content=log)
    assert uploaded.status_code == 200, uploaded.text
    work = {
        "method": "WP",
        "title": "Complaint log",
        "occasion": "Late shift",
        "customer_ref": "cust-303",
        "environment": "workplace",
        "attachments": [{"sha256": sha256(log), "media_type": "text/plain", "size": len(log)}],
        "authenticity_declared": True,
        "effective_on": days_ago(10),
    }
    work_id = learner.ok("POST", f"{base}/evidence", work)["created_id"]
    learner.ok("POST", f"{base}/evidence/{work_id}/mappings", {"criteria": ["PC12", "PC14"]})
    evidence.append(work_id)

    questions = {"method": "Q", "criteria": [*KNOWLEDGE, "d"], "summary": "Oral questions."}
    evidence.append(trainee.ok("POST", f"{base}/questioning", questions)["created_id"])

    decision = {
        "outcome": "met",
        "criteria": list(EVERYTHING),
        "evidence_ids": evidence,
        # "PCs 1, 2 and 8-16 may be assessed by alternative methods if observation is not
        # possible": the decision rests on testimony for them, so it says why
        "observation_not_possible": "Billing complaints come in by phone after hours.",
    }
    decision_id = trainee.ok("POST", f"{base}/decisions", decision)["created_id"]
    signed = centre.as_("assessor").ok("POST", f"/decisions/{decision_id}/countersignatures", {})
    assert signed["stream_id"] == pid
    sample = {"stage": "summative", "decision_ids": [decision_id], "outcome": "agreed"}
    centre.as_("iqa").ok("POST", f"{base}/iqa-samples", sample, params={"wait": "true"})

    reader = centre.as_("learner")
    return (
        centre,
        pid,
        reader.ok("GET", f"{base}/coverage"),
        reader.ok("GET", f"{base}/sufficiency"),
    )
