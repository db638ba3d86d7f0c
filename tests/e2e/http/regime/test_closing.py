"""Closing a unit: the assessor's sign-off, certification refused with every reason,
closed portfolios that refuse assessment writes, and appeals that reopen them."""

from __future__ import annotations

from tests.e2e.http.conftest import HttpCentre
from tests.e2e.http.regime.folio import (
    CLOSED,
    NOT_CERTIFIABLE,
    ROLE_NOT_ALLOWED,
    WAIT,
    WORK,
    Folio,
    Refusal,
    certification_reasons,
    met,
    now,
    refused,
)
from tests.e2e.http.scenario import days_ago

# ---- 8. sign-off, certification, closed portfolios and appeals ----------------------------


def test_sign_off_is_refused_while_the_unit_is_incomplete_listing_why(centre: HttpCentre) -> None:
    folio = Folio.enrol(centre)
    folio.decide(("PC3",), folio.observe("PC3", customer_ref="cust-1"))
    feedback = {"feedback": "Well done on the complaint handling."}
    folio.refuse("learner", "sign-off", feedback, ROLE_NOT_ALLOWED)
    body = folio.refuse("assessor", "sign-off", feedback, Refusal(422, "unit_not_complete"))
    coverage, sufficiency = folio.coverage(), folio.sufficiency()
    assert body["reasons"] == coverage["gaps"] + sufficiency["reasons"]
    assert len(body["reasons"]) > 20

    decided = folio.complete()
    folio.make("assessor", "sign-off", feedback)
    folio.refuse("assessor", "sign-off", feedback, Refusal(409, "already_exists"))
    assert folio.history()[-1]["summary"] == (
        "Unit completion signed off by the assessor: Well done on the complaint handling."
    )
    assert folio.history()[-1]["actor_id"] == str(centre.people["assessor"].id)
    # a decision after the sign-off changes what was signed: it is given again
    folio.make("assessor", f"/decisions/{decided}/revocation", {"reason": "Recorded twice"})
    folio.complete()
    assert certification_reasons(folio) == [
        f"The assessor's sign-off of {days_ago(0)} predates later decisions or withdrawals: "
        "the assessor signs off again"
    ]
    folio.make("assessor", "sign-off", feedback)
    folio.make("centre_admin", "certification", {})


def test_an_incomplete_portfolio_cannot_be_certified_and_the_answer_lists_why(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    folio.decide(("PC3",), folio.observe("PC3"))
    certify = folio.post("centre_admin", "certification", {})
    body = refused(certify, NOT_CERTIFIABLE)
    coverage, sufficiency = folio.coverage(), folio.sufficiency()
    assert body["reasons"] == [
        *(f"Coverage: {gap}" for gap in coverage["gaps"]),
        *(f"Sufficiency: {why}" for why in sufficiency["reasons"]),
        "The assessor has not signed off unit completion",
    ]
    assert f"({len(body['reasons'])} reasons)" in body["detail"]
    folio.refuse("assessor", "certification", {}, ROLE_NOT_ALLOWED)


def test_certification_waits_for_the_sign_off_and_the_summative_sample_the_plan_requires(
    centre: HttpCentre,
) -> None:
    centre.staff("trainee_iqa", "iqa", qualification="trainee")
    plan = {"summative_before_certification": "every_portfolio"}
    centre.as_("iqa").ok("PUT", centre.path("sampling-plan"), plan)
    folio = Folio.enrol(centre)
    decided = folio.complete()
    assert (folio.coverage()["complete"], folio.sufficiency()["passed"]) == (True, True)
    need = (
        "The sampling plan v1 requires an agreed IQA summative sample of every portfolio "
        "before certification"
    )
    body = folio.refuse("centre_admin", "certification", {}, NOT_CERTIFIABLE)
    assert body["reasons"] == [
        "The assessor has not signed off unit completion",
        f"{need}: none recorded",
    ]
    folio.make("assessor", "sign-off", {"feedback": "Complete and consistent."})
    sample = {"stage": "summative", "decision_ids": [decided], "outcome": "agreed"}
    pending = folio.make("trainee_iqa", "iqa-samples", sample)
    body = folio.refuse("centre_admin", "certification", {}, NOT_CERTIFIABLE)
    assert body["reasons"] == [f"{need}: the trainee IQA's sample awaits countersignature"]
    folio.make("iqa", f"iqa-samples/{pending}/countersignatures", {})
    folio.make("centre_admin", "certification", {"certificate_ref": "CERT-1"})
    assert folio.history()[-1]["summary"] == (
        "Unit certified (ref CERT-1), judged by the built-in sufficiency default"
    )
    # certified under the built-in default, it stays judged by it
    strict = {"default": {"min_occasions": 9}}
    centre.as_("centre_admin").ok("PUT", centre.path("sufficiency-policy"), strict, params=WAIT)
    assert (folio.sufficiency()["policy_version"], folio.sufficiency()["passed"]) == (0, True)


def test_an_open_ev_referral_or_action_blocks_certification_until_the_ev_accepts_a_response(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    decided = folio.complete()
    folio.make("assessor", "sign-off", {"feedback": "Complete."})
    actions = {"decision_ids": [decided], "outcome": "agreed", "actions": ["Date the statements"]}
    sample_id = folio.make("ev", "ev-samples", actions)
    assert folio.row("PC1")["complete"] is True  # agreed: the decision stands
    body = folio.refuse("centre_admin", "certification", {}, NOT_CERTIFIABLE)
    assert body["reasons"] == [
        f"The EV's sample of {days_ago(0)} set 1 action: not yet closed (no response yet)"
    ]
    folio.make("assessor", f"samples/{sample_id}/responses", {"response": "Dated them all."})
    body = folio.refuse("centre_admin", "certification", {}, NOT_CERTIFIABLE)
    assert body["reasons"] == [
        f"The EV's sample of {days_ago(0)} set 1 action: not yet closed "
        "(the assessor's response awaits the EV)"
    ]
    folio.make("ev", f"samples/{sample_id}/acceptance", {})
    folio.make("centre_admin", "certification", {})


def test_a_certified_portfolio_refuses_every_assessment_write_and_an_appeal_reopens_it(
    centre: HttpCentre,
) -> None:
    """...with `portfolio_closed`, while quality assurance goes on; the appeal is on record."""
    folio = Folio.enrol(centre)
    decided = folio.complete()
    log = folio.work()
    folio.make("assessor", "sign-off", {"feedback": "Complete."})
    folio.make("centre_admin", "certification", {"effective_on": days_ago(1)})
    writes = [
        ("learner", "evidence", WORK),
        ("learner", f"evidence/{log}/mappings", {"criteria": ["PC12"]}),
        ("learner", f"evidence/{log}/withdrawal", {"reason": "Not needed"}),
        ("learner", "witness-testimonies", folio.said("PC1")),
        ("assessor", "observations", {"environment": "workplace", "criteria": ["PC3"]}),
        ("assessor", "questioning", {"method": "Q", "criteria": ["K1"]}),
        ("assessor", "decisions", met(("PC12",), log)),
        ("assessor", f"/decisions/{decided}/revocation", {"reason": "Second thoughts"}),
        ("assessor", "sign-off", {"feedback": "Again."}),
        ("centre_admin", "certification", {}),
        ("centre_admin", "withdrawal", {}),
    ]
    for who, tail, body in writes:
        problem = folio.refuse(who, tail, body, CLOSED)
        assert f"certified on {days_ago(1)}" in problem["detail"], tail
    assert folio.coverage()["complete"] is True
    agreed = {"decision_ids": [decided], "outcome": "agreed"}
    folio.make("iqa", "iqa-samples", agreed | {"stage": "summative"})
    folio.make("ev", "ev-samples", agreed)

    appeal = {"reason": "The learner appeals the grading of PC12"}
    folio.refuse("learner", "appeals", appeal, ROLE_NOT_ALLOWED)
    before = now()
    folio.make("centre_admin", "appeals", appeal)
    assert folio.history(as_known_at=before)[-1]["event_type"].endswith("ev_sample_recorded")
    assert folio.history()[-1]["summary"] == (
        "Appeal opened; the portfolio is open again: The learner appeals the grading of PC12"
    )
    folio.make("learner", f"evidence/{log}/mappings", {"criteria": ["PC12"]})
    folio.refuse("centre_admin", "appeals", appeal, Refusal(422, "portfolio_not_closed"))


def test_a_withdrawn_learners_portfolio_is_closed_until_an_appeal(centre: HttpCentre) -> None:
    folio = Folio.enrol(centre)
    folio.make("centre_admin", "withdrawal", {"reason": "Left the job"})
    body = folio.refuse("learner", "evidence", WORK, CLOSED)
    assert "withdrawn on" in body["detail"]
    folio.make("centre_admin", "appeals", {"reason": "Withdrawn in error"})
    folio.work()
