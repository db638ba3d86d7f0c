"""Decisions rest on their evidence, the observation rules, and who may sign what: dates,
withdrawals that lapse a decision, "if observation is not possible", conflicts of interest,
trainee IQAs, and referrals cleared only by the assessor acting on them."""

from __future__ import annotations

from tests.e2e.http.conftest import HttpCentre
from tests.e2e.http.regime.folio import (
    CONFLICT,
    NO_OPEN_REFERRAL,
    NOT_OBSERVED,
    ROLE_NOT_ALLOWED,
    SAMPLE_TOO_EARLY,
    Folio,
    Refusal,
    certification_reasons,
    gaps_of,
    met,
    now,
    refused,
    staff,
)
from tests.e2e.http.scenario import days_ago

# ---- 3. a decision rests on its evidence ---------------------------------------------------


def test_a_decision_dated_before_the_evidence_it_cites_is_refused(centre: HttpCentre) -> None:
    folio = Folio.enrol(centre)
    seen = folio.observe("PC3", effective_on=days_ago(5))
    early = met(("PC3",), seen, effective_on=days_ago(7))
    too_early = Refusal(422, "decision_dated_before_evidence", "effective_on")
    body = folio.refuse("assessor", "decisions", early, too_early)
    assert days_ago(5) in body["detail"]
    assert folio.row("PC3")["decision_id"] is None
    decided = folio.decide(("PC3",), seen, effective_on=days_ago(5))
    assert folio.row("PC3")["decision_id"] == decided


def test_a_countersignature_or_a_sample_dated_before_its_decision_is_refused(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre, assessor="trainee")
    seen = folio.observe("PC3", who="trainee", effective_on=days_ago(6))
    decided = folio.decide(("PC3",), seen, who="trainee", effective_on=days_ago(4))
    signature = f"/decisions/{decided}/countersignatures"
    too_early = Refusal(422, "countersignature_dated_before_decision", "effective_on")
    folio.refuse("assessor", signature, {"effective_on": days_ago(5)}, too_early)
    assert folio.row("PC3")["status"] == "evidenced"
    folio.make("assessor", signature, {"effective_on": days_ago(4)})
    assert folio.row("PC3")["status"] == "countersigned"
    sample = {"stage": "interim", "decision_ids": [decided], "outcome": "agreed"}
    folio.refuse("iqa", "iqa-samples", sample | {"effective_on": days_ago(5)}, SAMPLE_TOO_EARLY)
    ev_sample = {"decision_ids": [decided], "outcome": "agreed", "effective_on": days_ago(5)}
    folio.refuse("ev", "ev-samples", ev_sample, SAMPLE_TOO_EARLY)
    assert folio.chain(decided)["state"] == "stands"


def test_a_met_decision_must_cite_live_evidence_mapped_to_each_criterion_it_names(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    seen = folio.observe("PC3")
    log = folio.work("PC12")
    unsupported = Refusal(422, "decision_not_supported_by_evidence", "evidence_ids")
    body = folio.refuse("assessor", "decisions", met(("PC3", "PC8", "K1"), seen, log), unsupported)
    assert body["reasons"] == [
        "PC8: no cited evidence is mapped to it",
        "K1: no cited evidence is mapped to it",
    ]
    folio.make("learner", f"evidence/{log}/withdrawal", {"reason": "Wrong file"})
    withdrawn = Refusal(422, "withdrawn_evidence_cannot_be_relied_on", "evidence_ids")
    folio.refuse("assessor", "decisions", met(("PC12",), log), withdrawn)
    # "not yet" decides nothing is met, so it needs no supporting evidence
    not_yet = {"outcome": "not_yet", "criteria": ["PC8"], "evidence_ids": [seen]}
    folio.make("assessor", "decisions", not_yet)
    assert "PC8: assessed as not yet met" in " ".join(gaps_of(folio.row("PC8")))


def test_a_must_observe_criterion_needs_a_cited_observation_of_it(centre: HttpCentre) -> None:
    folio = Folio.enrol(centre)
    said = folio.testimony("PC3", "PC1")
    row = folio.row("PC3")
    assert (row["must_observe"], row["observed"]) == (True, False)
    assert gaps_of(row) == [
        "PC3 must be observed by the assessor; so far it has only witness testimony",
        "PC3: no assessment decision yet",
    ]
    body = folio.refuse("assessor", "decisions", met(("PC3",), said), NOT_OBSERVED)
    assert "PC3" in body["detail"]
    seen = folio.observe("PC3")
    folio.decide(("PC3",), said, seen)
    assert folio.row("PC3")["complete"] is True


def test_withdrawing_the_only_evidence_for_pc3_stops_the_decision_standing_for_pc3_only(
    centre: HttpCentre,
) -> None:
    """...and coverage says why, without reviving the earlier decision it replaced."""
    folio = Folio.enrol(centre)
    first_seen = folio.observe("PC3", effective_on=days_ago(20))
    earlier = folio.decide(("PC3",), first_seen, effective_on=days_ago(20))
    seen_again = folio.observe("PC3", effective_on=days_ago(3))
    seen_pc5 = folio.observe("PC5", effective_on=days_ago(3))
    later = folio.decide(("PC3", "PC5"), seen_again, seen_pc5, effective_on=days_ago(2))
    assert (folio.row("PC3")["decision_id"], folio.row("PC5")["decision_id"]) == (later, later)
    before = now()

    folio.make("assessor", f"evidence/{seen_again}/withdrawal", {"reason": "Wrong learner"})
    pc3, pc5 = folio.row("PC3"), folio.row("PC5")
    assert (pc3["decision_id"], pc3["complete"]) == (None, False)  # not `earlier`, revived
    assert gaps_of(pc3) == [
        f"PC3: the decision of {days_ago(2)} no longer stands for it: the evidence it "
        f"relied on was withdrawn ({seen_again})"
    ]
    assert (pc5["decision_id"], pc5["complete"]) == (later, True)
    assert folio.chain(later)["lapsed"] == ["PC3"]
    assert folio.chain(earlier)["lapsed"] == []
    # as it stood before the withdrawal: the later decision governed PC3
    then = folio.row("PC3", as_known_at=before)
    assert (then["decision_id"], then["complete"]) == (later, True)
    assert folio.chain(later, as_known_at=before)["lapsed"] == []
    folio.agree()


# ---- 6. "if observation is not possible" ----------------------------------------------------


def test_seed_000_pc1_decided_without_observation_is_a_gap_until_the_decision_says_why(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    said = folio.testimony("PC1", "PC2")
    first = folio.decide(("PC1",), said)
    pc1 = folio.row("PC1")
    assert (pc1["decision_id"], pc1["complete"]) == (first, False)
    assert gaps_of(pc1) == [
        f"PC1: the decision of {days_ago(0)} rests on no observation and does not record why "
        "observation was not possible"
    ]
    why = "The learner takes complaints by phone on night shifts."
    folio.decide(("PC1",), said, observation_not_possible=why)
    assert folio.row("PC1")["complete"] is True
    seen = folio.observe("PC2")  # observed: nothing to explain
    folio.decide(("PC2",), said, seen)
    assert folio.row("PC2")["complete"] is True
    folio.agree()


# ---- 7. conflicts of interest ---------------------------------------------------------------


def test_the_learner_is_never_their_own_assessor_iqa_countersigner_witness_or_sampler(
    centre: HttpCentre,
) -> None:
    """Someone may be both a learner and staff at a centre, but never on their own portfolio."""
    learner = centre.people["learner"].id
    for key, role in (("learner_as_assessor", "assessor"), ("learner_as_iqa", "iqa")):
        assert staff(centre, key, role, learner, effective_on=days_ago(90)).status_code == 201
    enrolment = {
        "centre_id": str(centre.id),
        "learner_id": str(learner),
        "unit_code": "CS-RCSP-H",
        "assessor_id": str(centre.people["assessor"].id),
        "iqa_id": str(centre.people["iqa"].id),
    }
    admin = centre.as_("centre_admin")
    for field in ("assessor_id", "iqa_id"):
        own = enrolment | {field: str(learner)}
        body = refused(admin.post("/portfolios", own), Refusal(403, "conflict_of_interest", field))
        assert "own portfolio" in body["detail"]

    witness = {"witness_id": str(learner), "name": "Learner", "position": "Supervisor"}
    admin.ok("POST", centre.path("witnesses"), witness)
    folio = Folio.enrol(centre, assessor="trainee")
    own_word = folio.said("PC1", witness_id=str(learner))
    as_witness = Refusal(403, "conflict_of_interest", "witness_id")
    folio.refuse("learner", "witness-testimonies", own_word, as_witness)

    seen = folio.observe("PC3", who="trainee")
    decided = folio.decide(("PC3",), seen, who="trainee")
    folio.refuse("learner_as_assessor", f"/decisions/{decided}/countersignatures", {}, CONFLICT)
    sample = {"stage": "interim", "decision_ids": [decided], "outcome": "agreed"}
    folio.refuse("learner_as_iqa", "iqa-samples", sample, CONFLICT)
    centre.staff("trainee_iqa", "iqa", qualification="trainee")
    by_trainee = folio.make("trainee_iqa", "iqa-samples", sample)
    folio.refuse("learner_as_iqa", f"iqa-samples/{by_trainee}/countersignatures", {}, CONFLICT)
    chain = folio.chain(decided)
    assert chain["countersignature"] is None
    assert [s["counts"] for s in chain["iqa_samples"]] == [False]


def test_an_ev_allocated_to_a_centre_is_never_its_staff_learner_or_witness(
    centre: HttpCentre,
) -> None:
    ev = centre.people["ev"].id
    admin = centre.as_("centre_admin")
    for role in ("assessor", "iqa", "centre_admin"):
        as_staff = staff(centre, "ev_as_staff", role, ev)
        refused(as_staff, Refusal(403, "conflict_of_interest", "staff_id"))
    for people, field in (("learners", "learner_id"), ("witnesses", "witness_id")):
        as_one = admin.post(centre.path(people), {field: str(ev), "name": "Evan"})
        refused(as_one, Refusal(403, "conflict_of_interest", field))
    allocation = {"ev_id": str(centre.people["iqa"].id), "name": "Priya"}
    allocated = centre.as_("admin").post(centre.path("ev-allocations"), allocation)
    body = refused(allocated, Refusal(403, "conflict_of_interest", "ev_id"))
    assert "independent" in body["detail"]
    view = centre.as_("centre_admin").ok("GET", f"/centres/{centre.id}")
    assert [e["id"] for e in view["evs"]] == [str(ev)]
    assert str(ev) not in {s["staff_id"] for s in view["staff"]}


def test_a_trainee_iqas_sample_counts_only_once_a_qualified_iqa_countersigns_it(
    centre: HttpCentre,
) -> None:
    centre.staff("trainee_iqa", "iqa", qualification="trainee")
    folio = Folio.enrol(centre)
    decided = folio.decide(("PC3",), folio.observe("PC3"))
    sample = {"stage": "interim", "decision_ids": [decided], "outcome": "agreed"}
    sample_id = folio.make("trainee_iqa", "iqa-samples", sample)
    assert folio.row("PC3")["status"] == "met"
    chain = folio.chain(decided)
    assert (chain["state"], chain["iqa_samples"][0]["counts"]) == ("stands", False)
    before = now()

    signature = f"iqa-samples/{sample_id}/countersignatures"
    folio.refuse("trainee_iqa", signature, {}, Refusal(403, "not_own_decision"))
    folio.refuse("assessor", signature, {}, ROLE_NOT_ALLOWED)
    folio.make("iqa", signature, {})
    assert folio.row("PC3")["status"] == "iqa_sampled"
    chain = folio.chain(decided)
    assert (chain["state"], chain["iqa_samples"][0]["counts"]) == ("iqa_sampled", True)
    assert folio.chain(decided, as_known_at=before)["state"] == "stands"
    assert folio.row("PC3", as_known_at=before)["status"] == "met"
    folio.refuse("iqa", signature, {}, Refusal(422, "already_corrected", "sample_id"))
    qualified = folio.make("iqa", "iqa-samples", sample)
    not_required = Refusal(422, "countersignature_not_required")
    folio.refuse("iqa", f"iqa-samples/{qualified}/countersignatures", {}, not_required)
    folio.agree()


def test_an_iqa_agreed_after_an_ev_referred_does_not_put_the_decision_back_in_force(
    centre: HttpCentre,
) -> None:
    """Only the assessor acting on the referral clears it: a response the EV accepts."""
    folio = Folio.enrol(centre)
    decided = folio.decide(("PC3",), folio.observe("PC3"))
    referral = {"decision_ids": [decided], "outcome": "referred", "feedback": "Thin notes"}
    sample_id = folio.make("ev", "ev-samples", referral)
    referred_gap = f"PC3: the EV referred the decision of {days_ago(0)} back to the assessor"
    assert gaps_of(folio.row("PC3")) == [referred_gap]
    agreed = {"stage": "interim", "decision_ids": [decided], "outcome": "agreed"}
    folio.make("iqa", "iqa-samples", agreed)
    assert gaps_of(folio.row("PC3")) == [referred_gap]
    assert folio.chain(decided)["state"] == "referred"

    acceptance = f"samples/{sample_id}/acceptance"
    folio.refuse("ev", acceptance, {}, NO_OPEN_REFERRAL)  # nothing to accept yet
    response = {"response": "Observation notes rewritten with the customer's words."}
    folio.refuse("learner", f"samples/{sample_id}/responses", response, ROLE_NOT_ALLOWED)
    folio.make("assessor", f"samples/{sample_id}/responses", response)
    assert folio.chain(decided)["state"] == "referred"  # responded, not yet accepted
    folio.refuse("iqa", acceptance, {}, Refusal(403, "ev_not_allocated_to_centre"))
    responded = now()
    folio.make("ev", acceptance, {"comment": "Accepted"})
    assert folio.row("PC3")["complete"] is True
    chain = folio.chain(decided)
    assert (chain["state"], chain["ev_samples"][0]["accepted"]) == ("ev_sampled", True)
    assert gaps_of(folio.row("PC3", as_known_at=responded)) == [referred_gap]
    assert folio.chain(decided, as_known_at=responded)["state"] == "referred"
    folio.refuse("assessor", f"samples/{sample_id}/responses", response, NO_OPEN_REFERRAL)
    folio.agree()


def test_a_new_decision_by_the_assessor_clears_a_referral(centre: HttpCentre) -> None:
    folio = Folio.enrol(centre)
    seen = folio.observe("PC3")
    decided = folio.decide(("PC3",), seen)
    folio.make("ev", "ev-samples", {"decision_ids": [decided], "outcome": "referred"})
    assert folio.row("PC3")["complete"] is False
    open_referral = f"The EV's sample of {days_ago(0)} referred decisions back: not yet closed"
    assert any(r.startswith(open_referral) for r in certification_reasons(folio))
    again = folio.decide(("PC3",), seen, folio.observe("PC3"))
    assert (folio.row("PC3")["complete"], folio.row("PC3")["decision_id"]) == (True, again)
    assert folio.chain(decided)["state"] == "referred"  # the old one stays referred, replaced
    assert not any(r.startswith("The EV's sample") for r in certification_reasons(folio))


def test_an_iqa_referral_closes_when_an_iqa_other_than_the_learner_accepts_the_response(
    centre: HttpCentre,
) -> None:
    """An EV "agreed" does not clear an IQA's referral either; and a learner who is also an
    IQA at the centre never closes a referral of their own portfolio."""
    staff(centre, "learner_as_iqa", "iqa", centre.people["learner"].id, effective_on=days_ago(90))
    folio = Folio.enrol(centre)
    decided = folio.decide(("PC3",), folio.observe("PC3"))
    referral = {"stage": "interim", "decision_ids": [decided], "outcome": "referred"}
    sample_id = folio.make("iqa", "iqa-samples", referral)
    referred_gap = f"PC3: the IQA referred the decision of {days_ago(0)} back to the assessor"
    folio.make("ev", "ev-samples", {"decision_ids": [decided], "outcome": "agreed"})
    assert gaps_of(folio.row("PC3")) == [referred_gap]
    folio.make("assessor", f"samples/{sample_id}/responses", {"response": "Re-observed."})
    acceptance = f"samples/{sample_id}/acceptance"
    folio.refuse("ev", acceptance, {}, Refusal(403, "not_permitted"))  # an IQA sample: an IQA's
    folio.refuse("learner_as_iqa", acceptance, {}, CONFLICT)
    assert gaps_of(folio.row("PC3")) == [referred_gap]
    folio.make("iqa", acceptance, {})
    assert folio.row("PC3")["complete"] is True
