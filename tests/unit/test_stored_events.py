"""Events survive change (docs/adr/0014): the golden stored bytes of every event type, as a
store of the first release with them holds them, decode through the real decode path and
fold into the centre and portfolios they recorded — on every build. A new event type
without a fixture fails here; so does a change that would leave history unreadable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from eventsourcing.persistence import JSONTranscoder, StoredEvent

from domain import events as e
from domain.centre import fold_centre
from domain.portfolio import fold_portfolio
from service import codec
from service.codec import TYPES, EventMapper, Recorded
from service.personal_data import SEALED, Sealer, is_token
from tests.fixtures.events.keys import FixtureKeys

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"
PERSONAL_FIELDS = FIXTURES / "personal_fields.json"


class Record(msgspec.Struct, frozen=True):
    position: int
    originator_id: UUID
    originator_version: int
    state: str


class Fixture(msgspec.Struct, frozen=True):
    topic: str
    class_version: int
    records: tuple[Record, ...]


def _fixtures(version: int = 1) -> dict[str, Fixture]:
    found = {}
    for path in sorted((FIXTURES / f"v{version}").glob("*.json")):
        fixture = msgspec.json.decode(path.read_bytes(), type=Fixture)
        assert fixture.class_version == version, path
        found[fixture.topic] = fixture
    return found


def _log() -> list[tuple[str, Record]]:
    """Every fixture record, in the order the store's log held them."""
    records = [(f.topic, r) for f in _fixtures().values() for r in f.records]
    return sorted(records, key=lambda pair: pair[1].position)


def _stored(topic: str, record: Record) -> StoredEvent:
    return StoredEvent(
        originator_id=record.originator_id,
        originator_version=record.originator_version,
        topic=topic,
        state=record.state.encode(),
    )


def _no_learner(portfolio_id: UUID) -> UUID:
    raise AssertionError("reading never asks whose a portfolio is: tokens name their subject")


def _mapper(keys: FixtureKeys | None = None) -> EventMapper:
    """The ledger's own mapper, with the fixtures' key store (None: the offline verifier)."""
    mapper = EventMapper(transcoder=JSONTranscoder())
    if keys is not None:
        mapper.sealer = Sealer(keys, _no_learner)
    return mapper


def _read(mapper: EventMapper, sealed: bool = False) -> Iterator[tuple[str, Recorded]]:
    for topic, record in _log():
        stored = _stored(topic, record)
        recorded = mapper.to_facts(stored) if sealed else mapper.to_domain_event(stored)
        assert isinstance(recorded, Recorded)
        yield topic, recorded


def test_every_stored_type_has_golden_bytes_of_its_first_version() -> None:
    """Add a type, and add its fixture once (see make_v1.py): history starts with it."""
    assert set(_fixtures()) == set(TYPES)


def test_every_golden_record_decodes_to_its_type_with_its_personal_fields_opened() -> None:
    keys = FixtureKeys()
    for topic, recorded in _read(_mapper(keys)):
        event = recorded.event
        assert type(event) is TYPES[topic]
        if isinstance(event, e.Event):
            for name in type(event).PERSONAL:
                value = getattr(event, name)
                assert value != SEALED, (topic, name)
                assert not is_token(value), (topic, name)
    assert len(keys.destroyed) == 1  # reading the erasure destroyed the leaver's key


def test_without_the_key_store_personal_fields_read_sealed_and_nothing_else_changes() -> None:
    opened = list(_read(_mapper(FixtureKeys())))
    sealed = list(_read(_mapper(), sealed=True))
    assert [t for t, _ in sealed] == [t for t, _ in opened]
    for (topic, facts), (_, clear) in zip(sealed, opened, strict=True):
        if not isinstance(facts.event, e.Event):
            continue
        personal = type(facts.event).PERSONAL
        fact_fields = msgspec.structs.asdict(facts.event)
        clear_fields = msgspec.structs.asdict(clear.event)
        for name, value in fact_fields.items():
            if name in personal:
                assert value in (SEALED, "", ()) or set(value) == {SEALED}, (topic, name)
            else:
                assert value == clear_fields[name], (topic, name)


def _streams() -> dict[UUID, list[e.Event]]:
    streams: dict[UUID, list[e.Event]] = {}
    for _, recorded in _read(_mapper(FixtureKeys())):
        if isinstance(recorded.event, e.Event):
            events = streams.setdefault(recorded.originator_id, [])
            assert recorded.originator_version == len(events) + 1  # no gaps: whole streams
            events.append(recorded.event)
    return streams


def test_the_golden_log_folds_into_the_centre_it_recorded() -> None:
    centres = [
        fold_centre(events)  # type: ignore[arg-type]
        for events in _streams().values()
        if isinstance(events[0], e.CentreRegistered)
    ]
    assert len(centres) == 1
    centre = centres[0]
    assert centre is not None
    assert centre.name == "Northgate College"
    names = sorted(member.name for member in centre.staff.values())
    assert names == [
        "Alex Assessor", "Ida Quality", "Pat Admin", "Sam Second", "Tia Trainee",
        "Tom Trainee-IQA",
    ]  # fmt: skip
    assert sorted(centre.learners.values()) == ["Lee Learner", e.ERASED]
    assert list(centre.witnesses.values()) == ["Wendy Witness"]
    assert list(centre.evs.values()) == ["Evan Verifier"]
    assert len(centre.erased) == 1
    assert not centre.holds  # placed, then lifted
    assert centre.sufficiency_policy is not None
    assert centre.sampling_plan is not None
    assert centre.retention_policy is not None
    assert centre.retention_policy.records_years == 3
    assert len(centre.rwe_approvals) == 1
    assert centre.observed_criteria
    trainee = next(m for m in centre.staff.values() if m.name == "Tia Trainee")
    assert [q for _, q in trainee.qualifications] == [
        e.Qualification.TRAINEE,
        e.Qualification.QUALIFIED,
    ]


def test_the_golden_log_folds_into_the_portfolios_it_recorded() -> None:
    portfolios = [
        fold_portfolio(events)  # type: ignore[arg-type]
        for events in _streams().values()
        if isinstance(events[0], e.LearnerEnrolled)
    ]
    assert all(p is not None for p in portfolios)
    certified = next(p for p in portfolios if p is not None and p.certified_on is not None)
    assert certified.signed_off is not None
    (decision,) = certified.decisions.values()
    assert decision.outcome is e.Outcome.MET
    assert decision.needs_countersignature  # a trainee's,
    assert decision.stands  # countersigned
    assert len(certified.sample_ids) == 2
    assert not certified.open_ev_samples()  # the EV's referral answered and accepted
    reopened = next(p for p in portfolios if p is not None and p.appeal_ids)
    assert (reopened.withdrawn_on, reopened.closed) == (None, False)  # the appeal reopened it
    assert [d.revoked for d in reopened.decisions.values()] == [True]
    assert [item.withdrawn for item in reopened.evidence.values()].count(True) == 1


def test_personal_field_names_never_change() -> None:
    """A sealed value's associated data names its topic and field: renamed or dropped, a
    personal field would leave every value sealed under the old name unopenable. Add a new
    personal field to personal_fields.json; never rename or remove one (docs/adr/0014)."""
    committed = msgspec.json.decode(PERSONAL_FIELDS.read_bytes(), type=dict[str, list[str]])
    current = {
        topic: sorted(cls.PERSONAL) for topic, cls in sorted(e.EVENT_TYPES.items()) if cls.PERSONAL
    }
    for topic, names in committed.items():
        assert topic in e.EVENT_TYPES, f"{topic} holds personal fields: it cannot go"
        assert set(names) <= set(current.get(topic, ())), f"{topic} lost a personal field"
    assert current == committed, "a new personal field: add it to personal_fields.json"
    for cls in e.EVENT_TYPES.values():
        assert set(cls.__struct_fields__) >= cls.PERSONAL, cls.__name__


def test_every_type_has_an_upcast_for_each_version_after_the_first() -> None:
    for cls in e.EVENT_TYPES.values():
        assert cls.class_version == len(cls.UPCASTS) + 1, cls.__name__


# ---- a synthetic second version, read through the real decode path -------------------


def _rename_certificate_ref(state: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: `certificate_ref` is now `certificate_number`; the awarding body is named."""
    state = dict(state)
    state["certificate_number"] = state.pop("certificate_ref", "")
    state.setdefault("awarding_body", "unknown (recorded before v2)")
    return state


class UnitCertifiedV2(e.PortfolioEvent, frozen=True, kw_only=True):
    TOPIC = e.UnitCertified.TOPIC
    class_version = 2
    UPCASTS = (_rename_certificate_ref,)
    certificate_number: str
    awarding_body: str
    sufficiency_policy_version: int = 0


def _one(topic: str) -> StoredEvent:
    (record, *_) = _fixtures()[topic].records
    return _stored(topic, record)


def test_a_v1_event_reads_as_its_v2_through_the_upcast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(codec.TYPES, UnitCertifiedV2.TOPIC, UnitCertifiedV2)
    event = _mapper().to_domain_event(_one(UnitCertifiedV2.TOPIC)).event  # type: ignore[attr-defined]
    assert isinstance(event, UnitCertifiedV2)
    assert event.certificate_number == "CERT-10442"
    assert event.awarding_body == "unknown (recorded before v2)"
    again = codec.decode(UnitCertifiedV2.TOPIC, codec.encode(event))
    assert again == event  # a v2 is stored with its version, and is not upcast again


def test_an_older_reader_reads_a_newer_version_as_far_as_it_knows() -> None:
    v1 = codec.decode(e.UnitCertified.TOPIC, _one(e.UnitCertified.TOPIC).state)
    assert isinstance(v1, e.UnitCertified)
    v2 = UnitCertifiedV2(
        **{k: v for k, v in msgspec.structs.asdict(v1).items() if k != "certificate_ref"},
        certificate_number="CERT-2",
        awarding_body="City & Guilds",
    )
    read = codec.decode(e.UnitCertified.TOPIC, codec.encode(v2))
    assert isinstance(read, e.UnitCertified)
    assert (read.event_id, read.portfolio_id) == (v1.event_id, v1.portfolio_id)
    assert read.certificate_ref == ""  # a field it never knew of, under its new name


SEEN: list[object] = []


def _rename_occasion(state: dict[str, Any]) -> dict[str, Any]:
    SEEN.append(state["title"])
    state = dict(state)
    state["shift"] = state.pop("occasion", "")
    return state


class EvidenceSubmittedV2(e.EvidenceSubmitted, frozen=True, kw_only=True):
    class_version = 2
    UPCASTS = (_rename_occasion,)
    shift: str = ""


def test_personal_fields_are_opened_after_upcasting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(codec.TYPES, EvidenceSubmittedV2.TOPIC, EvidenceSubmittedV2)
    SEEN.clear()
    stored = _one(EvidenceSubmittedV2.TOPIC)
    event = _mapper(FixtureKeys()).to_domain_event(stored).event  # type: ignore[attr-defined]
    assert isinstance(event, EvidenceSubmittedV2)
    assert (event.shift, event.occasion) == ("late shift", "")
    assert event.title == "Complaint log extract"  # opened, under the same field name
    assert len(SEEN) == 1
    assert is_token(SEEN[0])  # the upcast saw it sealed, never in clear


class WitnessAddedWithOrganisation(e.WitnessAdded, frozen=True, kw_only=True):
    organisation: str = ""


def test_a_field_added_with_a_default_reads_the_golden_bytes_without_an_upcast(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = e.WitnessAdded.TOPIC
    monkeypatch.setitem(codec.TYPES, topic, WitnessAddedWithOrganisation)
    event = _mapper(FixtureKeys()).to_domain_event(_one(topic)).event  # type: ignore[attr-defined]
    assert isinstance(event, WitnessAddedWithOrganisation)
    assert (event.name, event.organisation) == ("Wendy Witness", "")
