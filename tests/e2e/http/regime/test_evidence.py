"""What evidence can show, and who may touch it: knowledge inference per statement, whose
record is whose, environments for all performance evidence, evidence requirements, and
each unit read as its text says (ids, who circles must-observe criteria)."""

from __future__ import annotations

from uuid import uuid4

from tests.e2e.http.conftest import HttpCentre
from tests.e2e.http.regime.folio import (
    ASSESSORS_OWN,
    CHECKLIST,
    ENVIRONMENT,
    METHOD_CANNOT_SHOW,
    NOT_INFERABLE,
    NOT_OBSERVED,
    OCR,
    ROLE_NOT_ALLOWED,
    TEAM_LEADERS,
    WAIT,
    WORK,
    WORKBOOK,
    Folio,
    Refusal,
    gaps_of,
    met,
    refused,
)

# ---- 1. knowledge inference, per statement ---------------------------------------------


def test_k1_of_seed_000_is_not_met_by_observation_alone(centre: HttpCentre) -> None:
    folio = Folio.enrol(centre)
    only_seen = {"environment": "workplace", "criteria": ["PC3", "K1"]}
    body = folio.refuse("assessor", "observations", only_seen, NOT_INFERABLE)
    assert "K1 cannot be inferred from observation" in body["detail"]
    seen = folio.observe("PC3", "K2")  # "how and when to use own initiative": inferable
    folio.refuse("assessor", f"evidence/{seen}/mappings", {"criteria": ["K1"]}, NOT_INFERABLE)
    log = folio.work()
    folio.refuse("learner", f"evidence/{log}/mappings", {"criteria": ["K6"]}, NOT_INFERABLE)

    k1, k2 = folio.row("K1"), folio.row("K2")
    assert (k1["inferable"], k1["status"], k1["evidence"]) == (False, "not_evidenced", [])
    assert (k2["inferable"], k2["status"]) == (True, "evidenced")

    asked = folio.question("K1")
    folio.decide(("PC3", "K1", "K2"), seen, asked)
    k1, k2 = folio.row("K1"), folio.row("K2")
    assert (k1["complete"], k1["inferred"]) == (True, False)
    assert (k2["complete"], k2["inferred"]) == (True, True)
    folio.agree()


def test_knowledge_is_shown_by_questioning_discussion_or_written_work_never_testimony(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    written = folio.work("K1", written_answers=True)
    other = folio.work("K7", method="Oth", other_reason="Reflective account of a complaint")
    discussed = folio.question("K6", method="PD")
    body = folio.refuse("learner", "witness-testimonies", folio.said("K2"), METHOD_CANNOT_SHOW)
    assert "witness testimony never shows knowledge" in body["detail"]
    folio.decide(("K1", "K6", "K7"), written, other, discussed)
    assert [folio.row(k)["complete"] for k in ("K1", "K6", "K7")] == [True, True, True]


def test_each_unit_reads_inference_statement_by_statement_with_the_sentence_behind_it(
    centre: HttpCentre,
) -> None:
    inferable = {
        "CS-RCSP-H": {"K2", "K3", "K4", "K5"},
        TEAM_LEADERS: {"K4"},
        OCR: set(),
        WORKBOOK: set(),
        CHECKLIST: set(),
    }
    for code, expected in inferable.items():
        spec = centre.as_("learner").ok("GET", f"/units/{code}")
        knowledge = [c for c in spec["criteria"] if c["kind"] == "knowledge"]
        assert {c["id"] for c in knowledge if c["inferable"]} == expected, code
        assert all(c["inference_basis"].strip() for c in knowledge), code
    # the writes follow the reading: "how to negotiate" may be inferred; "describe" never
    team = Folio.enrol(centre, TEAM_LEADERS)
    team.observe("PC1", "K4")
    loyalty = {"environment": "workplace", "criteria": ["PC1", "K3"]}
    team.refuse("assessor", "observations", loyalty, NOT_INFERABLE)
    for unit, statement in ((OCR, "4.4"), (WORKBOOK, "K3"), (CHECKLIST, "4.3")):
        folio = Folio.enrol(centre, unit, learner="other_learner")
        described = {"criteria": [statement]}
        folio.refuse("other_learner", f"evidence/{folio.work()}/mappings", described, NOT_INFERABLE)


# ---- 2. who may touch whose record -------------------------------------------------------


def test_a_learner_cannot_map_the_assessors_observation_onto_pc5(centre: HttpCentre) -> None:
    folio = Folio.enrol(centre)
    seen = folio.observe("PC3")
    onto_pc5 = {"criteria": ["PC5"]}
    body = folio.refuse("learner", f"evidence/{seen}/mappings", onto_pc5, ASSESSORS_OWN)
    assert "observation" in body["detail"]
    assert folio.row("PC5")["evidence"] == []
    folio.make("assessor", f"evidence/{seen}/mappings", onto_pc5)
    assert folio.row("PC5")["observed"] is True


def test_a_learner_withdraws_only_their_own_evidence_and_never_the_assessors(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    reason = {"reason": "Recorded against the wrong customer"}
    for own_act in (folio.observe("PC3"), folio.question("K1"), folio.question("K6", method="PD")):
        folio.refuse("learner", f"evidence/{own_act}/withdrawal", reason, ASSESSORS_OWN)
    on_behalf = folio.work(who="assessor")  # a work product the assessor submitted for them
    not_own = Refusal(403, "not_own_evidence", "evidence_id")
    for verb, body in (("mappings", {"criteria": ["PC1"]}), ("withdrawal", reason)):
        folio.refuse("learner", f"evidence/{on_behalf}/{verb}", body, not_own)
    mine = folio.work("PC12")
    folio.make("learner", f"evidence/{mine}/withdrawal", reason)
    assert folio.row("PC12")["evidence"] == []


def test_only_the_assessor_extends_a_witness_testimony_beyond_what_the_witness_attested(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    said = folio.testimony("PC1")
    beyond = {"criteria": ["PC2"]}
    body = folio.refuse("learner", f"evidence/{said}/mappings", beyond, ASSESSORS_OWN)
    assert "witness testimony" in body["detail"]
    assert folio.row("PC2")["status"] == "not_evidenced"
    folio.make("assessor", f"evidence/{said}/mappings", beyond)
    assert [e["method"] for e in folio.row("PC2")["evidence"]] == ["WT"]


def test_professional_discussion_is_assessor_led_a_learner_cannot_submit_it(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    for method in ("PD", "Q", "O"):  # the assessor's own acts, each with its own endpoint
        no = Refusal(422, "method_not_allowed", "method")
        folio.refuse("learner", "evidence", WORK | {"method": method}, no)
    folio.refuse("learner", "questioning", {"method": "PD", "criteria": ["K1"]}, ROLE_NOT_ALLOWED)
    no_reason = Refusal(422, "other_evidence_needs_reason", "other_reason")
    folio.refuse("learner", "evidence", WORK | {"method": "Oth"}, no_reason)
    assert folio.row("K1")["evidence"] == []


def test_the_assessor_withdraws_a_learners_evidence_with_a_reason_and_the_record_says_who(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    log = folio.work("PC12")
    reason = "Authenticity: the log is a colleague's work"
    folio.make("assessor", f"evidence/{log}/withdrawal", {"reason": reason})
    assert folio.row("PC12")["evidence"] == []
    last = folio.history()[-1]
    assert last["event_type"] == "eportfolio.portfolio.evidence_withdrawn"
    assert (last["actor_id"], last["actor_role"]) == (str(centre.people["assessor"].id), "assessor")
    assert last["summary"] == f"Evidence withdrawn by the assessor: {reason}"
    again = Refusal(422, "already_corrected", "evidence_id")
    folio.refuse("assessor", f"evidence/{log}/withdrawal", {"reason": "again"}, again)


# ---- 4. environments, for all performance evidence -------------------------------------


def test_ocr_354_refuses_work_placement_evidence_and_seed_002_accepts_it(
    centre: HttpCentre,
) -> None:
    ocr = Folio.enrol(centre, OCR)
    for environment in ("work_placement", "rwe"):
        mapping = f"evidence/{ocr.work(environment=environment)}/mappings"
        body = ocr.refuse("learner", mapping, {"criteria": ["1.1"]}, ENVIRONMENT)
        assert "does not accept evidence from" in body["detail"]
    tagged = WORK | {"environment": "work_placement", "requirement_tags": ["4a"]}
    in_tags = Refusal(422, "environment_not_allowed", "requirement_tags")
    ocr.refuse("learner", "evidence", tagged, in_tags)
    assert [ocr.row(cid)["status"] for cid in ("1.1", "4a")] == ["not_evidenced"] * 2

    workbook = Folio.enrol(centre, WORKBOOK, learner="other_learner")
    for environment in ("work_placement", "rwe"):
        workbook.work("PC1", environment=environment)
    workbook.make("other_learner", "evidence", tagged | {"requirement_tags": ["RP1"]})
    assert [len(workbook.row(cid)["evidence"]) for cid in ("PC1", "RP1")] == [2, 1]


def test_simulation_never_counts_for_range_items_or_two_from_a_to_d_by_observation(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    simulated = {"environment": "simulation", "criteria": ["a", "b"]}
    never = Refusal(422, "simulation_not_allowed_for_performance", "criteria")
    body = folio.refuse("assessor", "observations", simulated, never)
    assert "simulated evidence is never performance evidence" in body["detail"]
    log = folio.work()
    folio.refuse("learner", f"evidence/{log}/mappings", {"criteria": ["c"]}, METHOD_CANNOT_SHOW)
    folio.question("a", "b")  # "the remaining points ... through questioning": not observed
    report = folio.coverage()
    assert (report["range"]["observed"], report["range"]["rule_met"]) == ([], False)
    rule = "Range: 0 of the 2 items that must be observed (from a\u2013d) have been observed"
    assert rule in report["gaps"]
    folio.observe("a", "b")
    assert folio.coverage()["range"]["observed"] == ["a", "b"]


def test_rwe_evidence_for_seed_000_counts_only_with_an_approval_the_awarding_body_recorded(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre)
    in_rwe = {"environment": "rwe", "criteria": ["PC3"]}
    body = folio.refuse("assessor", "observations", in_rwe, ENVIRONMENT)
    assert "rwe_approval_id" in body["detail"]

    approvals = centre.path("rwe-approvals")
    approval = {"location": "Training restaurant", "unit_codes": ["CS-RCSP-H"]}
    refused(centre.as_("centre_admin").post(approvals, approval), ROLE_NOT_ALLOWED)
    unknown = approval | {"unit_codes": ["NO-SUCH-UNIT"]}
    refused(centre.as_("ev").post(approvals, unknown), Refusal(422, "not_found", "unit_codes[0]"))
    other_unit = centre.as_("ev").ok("POST", approvals, approval | {"unit_codes": [TEAM_LEADERS]})
    for approval_id in (other_unit["created_id"], str(uuid4())):
        named = in_rwe | {"rwe_approval_id": approval_id}
        folio.refuse("assessor", "observations", named, ENVIRONMENT)
    assert folio.row("PC3")["evidence"] == []

    by_ev = centre.as_("ev").ok("POST", approvals, approval, params=WAIT)["created_id"]
    by_admin = centre.as_("admin").ok("POST", approvals, {"location": "Mock reception"})
    seen = folio.observe("PC3", environment="rwe", rwe_approval_id=by_ev)
    folio.observe("PC4", environment="rwe", rwe_approval_id=by_admin["created_id"])
    folio.decide(("PC3",), seen)
    assert (folio.row("PC3")["complete"], folio.row("PC4")["observed"]) == (True, True)
    approved = {"event_type": "eportfolio.centre.realistic_environment_approved"}
    trail = centre.as_("ev").ok("GET", centre.path("audit"), params=approved)["trail"]
    assert [t["summary"] for t in trail] == [
        f"Realistic working environment approved: Training restaurant for {TEAM_LEADERS}",
        "Realistic working environment approved: Training restaurant for CS-RCSP-H",
        "Realistic working environment approved: Mock reception for every unit",
    ]


# ---- 5. evidence requirements need the assessor -----------------------------------------


def test_a_learners_tag_on_ocr_354s_requirement_4a_counts_only_once_the_assessor_confirms_it(
    centre: HttpCentre,
) -> None:
    folio = Folio.enrol(centre, OCR)
    log = folio.make("learner", "evidence", WORK | {"requirement_tags": ["4a"]})
    row = folio.row("4a")
    assert (row["status"], row["complete"]) == ("evidenced", False)
    assert gaps_of(row) == ["Requirement 4a: no assessment decision yet"]
    unknown = Refusal(422, "unknown_criterion", "requirement_tags")
    folio.refuse("learner", "evidence", WORK | {"requirement_tags": ["4z"]}, unknown)
    decided = folio.decide(("4a",), log)
    row = folio.row("4a")
    assert (row["status"], row["complete"], row["decision_id"]) == ("met", True, decided)
    folio.agree()


# ---- 10. follow the text, no more ---------------------------------------------------------


def test_seed_004_asks_for_no_centre_list_of_must_observe_criteria(centre: HttpCentre) -> None:
    circle = "The centre has not yet set which criteria of this unit must be observed"
    checklist = Folio.enrol(centre, CHECKLIST)
    report = checklist.coverage()
    assert circle not in report["gaps"]
    assert not any(row["must_observe"] for row in report["criteria"])
    workbook = Folio.enrol(centre, WORKBOOK, learner="other_learner")
    assert circle in workbook.coverage()["gaps"]  # seed 002: "Circled numbers must be observed"

    admin = centre.as_("centre_admin")
    circled = centre.path(f"observed-criteria/{CHECKLIST}")
    admin.ok("PUT", circled, {"criteria": ["1.3"]}, params=WAIT)
    assert checklist.row("1.3")["must_observe"] is True  # a centre may still circle some
    said = checklist.testimony("1.3")
    checklist.refuse("assessor", "decisions", met(("1.3",), said), NOT_OBSERVED)
    named = admin.put(centre.path("observed-criteria/CS-RCSP-H"), {"criteria": ["PC1"]})
    refused(named, Refusal(403, "not_permitted", "unit_code"))  # seed 000 names its own
    knowledge = admin.put(circled, {"criteria": ["4.1"]})
    refused(knowledge, Refusal(422, "unknown_criterion", "criteria"))  # only performance


def numbered(prefix: str, last: int) -> list[str]:
    return [f"{prefix}{n}" for n in range(1, last + 1)]


def test_criteria_ids_follow_each_seeds_numbering(centre: HttpCentre) -> None:
    """Prefixed PC/K where the seed numbers them bare; 1.1-4.5 where the seed does so."""
    learner = centre.as_("learner")

    def ids(code: str, part: str = "criteria") -> list[str]:
        return [c["id"] for c in learner.ok("GET", f"/units/{code}")[part]]

    assert ids("CS-RCSP-H") == numbered("PC", 16) + numbered("K", 7)
    assert ids(WORKBOOK) == numbered("PC", 16) + numbered("K", 5)
    assert ids(WORKBOOK, "requirements") == numbered("RP", 5) + numbered("IP", 4)
    assert ids(TEAM_LEADERS) == numbered("PC", 14) + numbered("K", 4)
    ocr = numbered("1.", 7) + numbered("2.", 3) + numbered("3.", 4) + numbered("4.", 4)
    assert ids(OCR) == ocr
    lettered = ["4a", "4b", "5a", "5b", "5c", "6a", "6b", "6c", "7a", "7b"]
    assert ids(OCR, "requirements") == lettered  # its evidence requirements 4-7
    checklist = numbered("1.", 5) + numbered("2.", 5) + numbered("3.", 6) + numbered("4.", 5)
    assert ids(CHECKLIST) == checklist
