"""Speaking to a portfolio through the API, as its people do, and checking the answers.

`Folio` writes as a named person of the centre (each write waits for the read views, so a
read after it shows it) and reads the reports back; `Refusal` is what a client is told
when a rule refuses a write (status, problem+json `rule`, `field`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

import httpx

from tests.e2e.http.conftest import HttpCentre, Person
from tests.e2e.http.scenario import EVERYTHING, KNOWLEDGE, OTHER_PCS, days_ago

PROBLEM = "application/problem+json"
WAIT = {"wait": "true"}
OBSERVED = ("PC3", "PC4", "PC5", "PC6", "PC7", "a", "b")
OCR, WORKBOOK, TEAM_LEADERS, CHECKLIST = "OCR-354", "CS-RCSP-W", "CS-MSCSP-H", "CS-RCSP-C"
WORK: dict[str, Any] = {
    "method": "WP",
    "title": "Complaint log",
    "environment": "workplace",
    "authenticity_declared": True,
}


def now() -> str:
    return datetime.now(UTC).isoformat()


class Refusal(NamedTuple):
    """What a client is told when a write is refused: status, rule and the field at fault."""

    status: int
    rule: str
    field: str | None = None


NOT_INFERABLE = Refusal(422, "knowledge_not_inferable", "criteria")
METHOD_CANNOT_SHOW = Refusal(422, "method_cannot_show_criterion", "criteria")
ENVIRONMENT = Refusal(422, "environment_not_allowed", "criteria")
ASSESSORS_OWN = Refusal(403, "only_portfolio_assessor", "evidence_id")
NOT_OBSERVED = Refusal(422, "must_observe_needs_cited_observation", "evidence_ids")
SAMPLE_TOO_EARLY = Refusal(422, "sample_dated_before_decision", "effective_on")
CONFLICT = Refusal(403, "conflict_of_interest")
NO_OPEN_REFERRAL = Refusal(422, "no_open_referral")
NOT_CERTIFIABLE = Refusal(422, "certification_refused")
CLOSED = Refusal(422, "portfolio_closed")
ROLE_NOT_ALLOWED = Refusal(403, "role_not_allowed")  # the access policy, before any rule


def refused(response: httpx.Response, expected: Refusal) -> dict[str, Any]:
    """The problem document of a refusal, checked: status, rule and field at fault."""
    assert response.status_code == expected.status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["rule"], body.get("field")) == (expected.rule, expected.field), body
    return body


class Folio:
    """One portfolio, spoken to through the API by the centre's people, by name."""

    def __init__(self, centre: HttpCentre, portfolio_id: UUID, learner: str) -> None:
        self.centre = centre
        self.id = portfolio_id
        self.base = f"/portfolios/{portfolio_id}"
        self.learner = learner

    @classmethod
    def enrol(
        cls, centre: HttpCentre, unit: str = "CS-RCSP-H", learner: str = "learner", **extra: Any
    ) -> Folio:
        enrolled = centre.enrol(unit_code=unit, learner=learner, effective_on=days_ago(60), **extra)
        return cls(centre, enrolled, learner)

    def url(self, tail: str) -> str:
        return tail if tail.startswith("/") else f"{self.base}/{tail}"

    def post(self, who: str, tail: str, body: Any) -> httpx.Response:
        """A write that answers once the read views show it (?wait=true)."""
        return self.centre.as_(who).post(self.url(tail), body, params=WAIT)

    def refuse(self, who: str, tail: str, body: Any, expected: Refusal) -> dict[str, Any]:
        """A write that must be refused: its problem document, checked."""
        return refused(self.post(who, tail, body), expected)

    def make(self, who: str, tail: str, body: Any) -> str:
        """A write that must be accepted: the id of what it created."""
        response = self.post(who, tail, body)
        assert response.status_code == 201, response.text
        return str(response.json()["created_id"])

    def read(self, tail: str, who: str = "iqa", **params: str) -> Any:
        return self.centre.as_(who).ok("GET", self.url(tail), params=params)

    def coverage(self, **params: str) -> dict[str, Any]:
        report: dict[str, Any] = self.read("coverage", **params)
        return report

    def row(self, cid: str, **params: str) -> dict[str, Any]:
        return next(r for r in self.coverage(**params)["criteria"] if r["id"] == cid)

    def sufficiency(self, **params: str) -> dict[str, Any]:
        report: dict[str, Any] = self.read("sufficiency", **params)
        return report

    def history(self, **params: str) -> list[dict[str, Any]]:
        trail: list[dict[str, Any]] = self.read("history", **params)
        return trail

    def chain(self, decision_id: str, **params: str) -> dict[str, Any]:
        """The decision's signature chain in the EV's audit view."""
        page = self.centre.as_("ev").ok(
            "GET", self.centre.path("audit"), params={"portfolio_id": str(self.id), **params}
        )
        return next(c for c in page["decisions"] if c["decision_id"] == decision_id)

    def agree(self) -> None:
        """The stored (live) reports equal the reports folded from the events known now."""
        at = now()
        assert self.coverage() == self.coverage(as_known_at=at)
        assert self.sufficiency() == self.sufficiency(as_known_at=at)

    # ---- building blocks -----------------------------------------------------------------

    def observe(self, *criteria: str, who: str = "assessor", **extra: Any) -> str:
        body = {"environment": "workplace", "criteria": list(criteria), **extra}
        return self.make(who, "observations", body)

    def testimony(self, *criteria: str, who: str | None = None, **extra: Any) -> str:
        return self.make(who or self.learner, "witness-testimonies", self.said(*criteria, **extra))

    def said(self, *criteria: str, **extra: Any) -> dict[str, Any]:
        """A witness testimony's body: the centre's listed witness saw `criteria`."""
        return {
            "witness_id": str(self.centre.witness_id),
            "environment": "workplace",
            "criteria": list(criteria),
            "statement": "I saw the candidate deal with it.",
            **extra,
        }

    def question(self, *criteria: str, method: str = "Q", who: str = "assessor") -> str:
        return self.make(who, "questioning", {"method": method, "criteria": list(criteria)})

    def work(self, *criteria: str, who: str | None = None, **extra: Any) -> str:
        who = who or self.learner
        evidence_id = self.make(who, "evidence", WORK | extra)
        if criteria:
            self.make(who, f"evidence/{evidence_id}/mappings", {"criteria": list(criteria)})
        return evidence_id

    def decide(
        self, criteria: tuple[str, ...], *evidence: str, who: str = "assessor", **extra: Any
    ) -> str:
        return self.make(who, "decisions", met(criteria, *evidence, **extra))

    def complete(self, who: str = "assessor") -> str:
        """Everything seed 000 asks for, decided met: two occasions, customers and dates
        twenty days apart (the built-in sufficiency default asks for 2, 2, 2 and 14)."""
        seen = self.observe(
            *OBSERVED, who=who, customer_ref="cust-1", occasion="Lunch", effective_on=days_ago(30)
        )
        said = self.testimony(*OTHER_PCS, "c", customer_ref="cust-2", effective_on=days_ago(10))
        asked = self.question(*KNOWLEDGE, "d", who=who)
        why = "Phone complaints after hours: the assessor could not be there."
        return self.decide(EVERYTHING, seen, said, asked, who=who, observation_not_possible=why)


def met(criteria: tuple[str, ...], *evidence: str, **extra: Any) -> dict[str, Any]:
    """A "met" decision's body: `criteria` met, on `evidence`."""
    return {"outcome": "met", "criteria": list(criteria), "evidence_ids": list(evidence), **extra}


def staff(centre: HttpCentre, key: str, role: str, person: UUID, **extra: Any) -> httpx.Response:
    """Register `person` (an id someone already has) as staff in `role`; keep their token."""
    body = {"staff_id": str(person), "name": key.title(), "role": role, **extra}
    response = centre.as_("centre_admin").post(centre.path("staff"), body)
    if response.status_code == 201:
        centre.people[key] = Person(person, response.json()["token"])
    return response


def certification_reasons(folio: Folio) -> list[str]:
    """Why the centre may not certify the portfolio now (it must be refused)."""
    body = folio.refuse("centre_admin", "certification", {}, NOT_CERTIFIABLE)
    reasons: list[str] = body["reasons"]
    return reasons


def gaps_of(row: dict[str, Any]) -> list[str]:
    gaps: list[str] = row["gaps"]
    return gaps
