"""Sufficiency over time you can rely on: only assessed performance evidence counts, the
policy is named (or labelled the built-in default), each failed figure is said in words,
and a certified portfolio keeps the policy it was certified under."""

from __future__ import annotations

from tests.e2e.http.conftest import HttpCentre
from tests.e2e.http.regime.folio import OCR, WAIT, Folio, Refusal, now, refused
from tests.e2e.http.scenario import days_ago

# ---- 9. sufficiency you can rely on ---------------------------------------------------------


def test_sufficiency_counts_only_evidence_an_assessor_has_assessed_and_says_which_figure_failed(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    seen = folio.observe("PC3", customer_ref="cust-1", effective_on=days_ago(20))
    folio.work("PC12", customer_ref="cust-2", effective_on=days_ago(2))  # mapped, not assessed
    folio.work(customer_ref="cust-3", effective_on=days_ago(1))  # not even mapped
    folio.question("K1")  # knowledge, not performance
    folio.decide(("PC3",), seen)
    report = folio.sufficiency()
    assert (report["policy_version"], report["passed"]) == (0, False)
    assert report["policy_note"].startswith("built-in default, not set by the centre")
    assert report["figures"]["evidence_count"] == 1
    assert report["reasons"] == [
        "assessed performance evidence from 1 occasion; the built-in default needs 2 "
        "(different occasions, so the standard is shown consistently)",
        "assessed performance evidence from 1 date; the built-in default needs 2 "
        "(different dates, so the standard is shown consistently)",
        "assessed performance evidence from 1 customer; the built-in default needs 2 "
        "(different customers, so the standard is shown consistently)",
        "assessed performance evidence spans 0 days; the built-in default needs at least 14 "
        "(over a period of time)",
    ]

    later = folio.observe("PC4", customer_ref="cust-2", effective_on=days_ago(2))
    folio.decide(("PC4",), later)
    report = folio.sufficiency()
    assert (report["passed"], report["figures"]["evidence_count"]) == (True, 2)
    assert report["reasons"] == []
    before = now()
    folio.make("assessor", f"evidence/{later}/withdrawal", {"reason": "Wrong customer"})
    report = folio.sufficiency()
    assert (report["passed"], report["figures"]["evidence_count"]) == (False, 1)
    assert folio.sufficiency(as_known_at=before)["passed"] is True
    folio.agree()


def test_sufficiency_counts_performance_not_written_answers_to_knowledge_questions(
    centre: HttpCentre,
) -> None:
    """Written answers show knowledge, as questioning does: they are not occasions on which
    the learner performed to the standard."""
    folio = Folio.enrol(centre)
    seen = folio.observe("PC3", customer_ref="cust-1", effective_on=days_ago(20))
    answers = folio.work("K1", written_answers=True, customer_ref="c2", effective_on=days_ago(2))
    folio.decide(("PC3", "K1"), seen, answers)
    report = folio.sufficiency()
    assert report["figures"]["evidence_count"] == 1, report["figures"]
    assert report["passed"] is False


def test_sufficiency_stops_counting_a_decision_the_ev_referred_until_the_referral_closes(
    centre: HttpCentre,
) -> None:
    """Coverage and sufficiency agree: a referred decision is not in force, for either."""
    folio = Folio.enrol(centre)
    first = folio.observe("PC3", customer_ref="cust-1", effective_on=days_ago(20))
    second = folio.observe("PC3", customer_ref="cust-2", effective_on=days_ago(2))
    decided = folio.decide(("PC3",), first, second)
    assert folio.sufficiency()["passed"] is True
    sample_id = folio.make("ev", "ev-samples", {"decision_ids": [decided], "outcome": "referred"})
    assert folio.row("PC3")["complete"] is False
    report = folio.sufficiency()
    assert (report["passed"], report["figures"]["evidence_count"]) == (False, 0)
    folio.make("assessor", f"samples/{sample_id}/responses", {"response": "Notes redone."})
    folio.make("ev", f"samples/{sample_id}/acceptance", {})
    assert (folio.row("PC3")["complete"], folio.sufficiency()["passed"]) == (True, True)


def test_sufficiency_names_the_centres_policy_and_per_criterion_figures(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    seen = folio.observe("PC3", "PC4", customer_ref="cust-1", effective_on=days_ago(20))
    again = folio.observe("PC3", customer_ref="cust-2", effective_on=days_ago(5))
    folio.decide(("PC3", "PC4"), seen, again)
    once = dict.fromkeys(("min_occasions", "min_distinct_dates", "min_distinct_customers"), 1)
    once |= {"min_span_days": 0}
    twice = {"PC4": once | {"min_occasions": 2}}
    unit = {"unit_code": "CS-RCSP-H", "thresholds": once, "per_criterion": twice}
    policy = {"default": once, "per_unit": [unit], "decision_ref": "Standardisation, March"}
    centre.as_("centre_admin").ok("PUT", centre.path("sufficiency-policy"), policy, params=WAIT)
    report = folio.sufficiency()
    assert (report["policy_version"], report["passed"]) == (1, False)
    assert report["policy_note"] == (
        f"standardisation decision of {days_ago(0)} (Standardisation, March): "
        "thresholds for unit CS-RCSP-H"
    )
    assert [c["criterion_id"] for c in report["criteria"]] == ["PC4"]
    assert report["reasons"] == [
        "PC4: assessed performance evidence from 1 occasion; policy v1 needs 2 "
        "(different occasions, so the standard is shown consistently)"
    ]
    folio.agree()


def test_a_certified_portfolio_keeps_the_policy_it_was_certified_under(
    centre: HttpCentre,
) -> None:
    lenient = {"default": {"min_occasions": 2, "min_span_days": 14}, "decision_ref": "v1"}
    sufficiency_policy = centre.path("sufficiency-policy")
    centre.as_("centre_admin").ok("PUT", sufficiency_policy, lenient)
    folio, other = Folio.enrol(centre), Folio.enrol(centre, learner="other_learner")
    folio.complete()
    other.complete()
    folio.make("assessor", "sign-off", {"feedback": "Complete."})
    folio.make("centre_admin", "certification", {})
    certified = now()
    strict = {"default": {"min_occasions": 5}, "decision_ref": "v2"}
    centre.as_("centre_admin").ok("PUT", sufficiency_policy, strict, params=WAIT)

    kept, judged = folio.sufficiency(), other.sufficiency()
    assert (kept["policy_version"], kept["passed"]) == (1, True)
    assert (judged["policy_version"], judged["passed"]) == (2, False)
    assert folio.sufficiency(as_known_at=certified)["policy_version"] == 1
    assert [e["summary"] for e in folio.history() if "certified" in e["event_type"]] == [
        "Unit certified, judged by sufficiency policy v1"
    ]
    folio.agree()
    folio.make("centre_admin", "appeals", {"reason": "Appeal against the grading"})
    assert folio.sufficiency()["policy_version"] == 2  # open again: today's policy


def test_a_policy_naming_an_unknown_unit_or_criterion_is_refused(centre: HttpCentre) -> None:
    path, admin = centre.path("sufficiency-policy"), centre.as_("centre_admin")
    thresholds = {"min_occasions": 3}
    unknown_unit = {"per_unit": [{"unit_code": "NO-SUCH-UNIT", "thresholds": thresholds}]}
    refused(admin.put(path, unknown_unit), Refusal(422, "not_found", "per_unit[0].unit_code"))
    unknown_criterion = {
        "per_unit": [
            {"unit_code": OCR, "thresholds": thresholds, "per_criterion": {"1.1": thresholds}},
            {"unit_code": "CS-RCSP-H", "thresholds": thresholds, "per_criterion": {"PC17": {}}},
        ]
    }
    no_such = Refusal(422, "unknown_criterion", "per_unit[1].per_criterion")
    body = refused(admin.put(path, unknown_criterion), no_such)
    assert "PC17" in body["detail"]
    assert admin.ok("GET", f"/centres/{centre.id}")["sufficiency_policy_version"] is None
    unknown_criterion["per_unit"].pop()
    admin.ok("PUT", path, unknown_criterion)
    assert admin.ok("GET", f"/centres/{centre.id}")["sufficiency_policy_version"] == 1
