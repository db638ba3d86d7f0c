"""The xAPI mapping on its own: stable ids and pseudonyms, no names, erasure honoured."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import msgspec

from adapters.streams.xapi import ERASED_NAME, Mapper, pseudonymiser, statement_id
from domain.events import (
    ERASED,
    DecisionRecorded,
    Environment,
    EvidenceSubmitted,
    LearnerEnrolled,
    Outcome,
    Qualification,
    Role,
)
from domain.spec import Method

HOME = "https://eportfolio.test"
LEARNER, ASSESSOR, PORTFOLIO = uuid4(), uuid4(), uuid4()
ENROLMENT = LearnerEnrolled(
    event_id=uuid4(), actor_id=uuid4(), actor_role=Role.CENTRE_ADMIN,
    recorded_at=datetime.now(UTC), effective_on=date(2026, 3, 1), portfolio_id=PORTFOLIO,
    centre_id=uuid4(), learner_id=LEARNER, unit_code="CS-1", spec_version=1, spec_hash="h",
    assessor_id=ASSESSOR, iqa_id=uuid4(),
)  # fmt: skip


def decision(feedback: str = "Calm with the customer") -> DecisionRecorded:
    return DecisionRecorded(
        event_id=UUID(int=42), actor_id=ASSESSOR, actor_role=Role.ASSESSOR,
        recorded_at=datetime.now(UTC), effective_on=date(2026, 3, 2), portfolio_id=PORTFOLIO,
        decision_id=UUID(int=7), outcome=Outcome.MET, criteria=("PC1", "PC2"),
        evidence_ids=(UUID(int=8),), assessor_qualification=Qualification.QUALIFIED,
        feedback=feedback,
    )  # fmt: skip


def nobody(_: UUID) -> bool:
    return False


def test_a_decision_is_a_statement_per_criterion_with_ids_from_the_event() -> None:
    mapper = Mapper(HOME, pseudonymiser(b"k" * 32))
    first = mapper.statements(decision(), ENROLMENT, nobody)
    again = Mapper(HOME, pseudonymiser(b"k" * 32)).statements(decision(), ENROLMENT, nobody)
    assert first == again  # built again (a retry, a restart): the very same statements
    assert [s["id"] for s in first] == [
        str(statement_id(UUID(int=42), "PC1")),
        str(statement_id(UUID(int=42), "PC2")),
    ]
    assert [s["object"]["id"] for s in first] == [
        f"{HOME}/units/CS-1#PC1",
        f"{HOME}/units/CS-1#PC2",
    ]
    assert first[0]["verb"]["id"] == "http://adlnet.gov/expapi/verbs/passed"
    assert first[0]["result"] == {"success": True, "response": "Calm with the customer"}
    assert first[0]["timestamp"] == "2026-03-02T00:00:00Z"


def test_the_actor_is_a_keyed_pseudonym_never_an_id_a_name_or_an_email() -> None:
    one = Mapper(HOME, pseudonymiser(b"a" * 32)).statements(decision(), ENROLMENT, nobody)[0]
    other = Mapper(HOME, pseudonymiser(b"b" * 32)).statements(decision(), ENROLMENT, nobody)[0]
    assert set(one["actor"]) == {"objectType", "account"}
    assert one["actor"]["account"]["homePage"] == HOME
    assert one["actor"]["account"]["name"] != other["actor"]["account"]["name"]  # per LRS
    text = msgspec.json.encode(one)
    assert str(LEARNER).encode() not in text
    assert str(ASSESSOR).encode() not in text


def test_once_the_learner_is_erased_nothing_of_theirs_is_in_the_statement() -> None:
    mapper = Mapper(HOME, pseudonymiser(b"k" * 32))
    before = mapper.statements(decision(), ENROLMENT, nobody)[0]
    after = mapper.statements(decision(), ENROLMENT, lambda who: who == LEARNER)[0]
    assert after["id"] == before["id"]
    assert after["actor"]["account"]["name"] == ERASED_NAME
    assert "registration" not in after["context"]
    assert after["result"] == {"success": True}  # the outcome, not the feedback
    assert before["actor"]["account"]["name"].encode() not in msgspec.json.encode(after)


def test_erased_text_is_never_sent_and_unmapped_events_send_nothing() -> None:
    mapper = Mapper(HOME, pseudonymiser(b"k" * 32))
    shredded = mapper.statements(decision(feedback=ERASED), ENROLMENT, nobody)[0]
    assert shredded["result"] == {"success": True}
    evidence = EvidenceSubmitted(
        event_id=uuid4(), actor_id=LEARNER, actor_role=Role.LEARNER,
        recorded_at=datetime.now(UTC), effective_on=date(2026, 3, 2), portfolio_id=PORTFOLIO,
        evidence_id=uuid4(), method=Method.WORK_PRODUCT, title="Log",
        environment=Environment.WORKPLACE, authenticity_declared=True,
    )  # fmt: skip
    assert mapper.statements(evidence, ENROLMENT, nobody) == []
