"""The published contract: CloudEvents envelopes, JSON Schemas, the AsyncAPI document.

Checked by independent implementations: both cloudevents SDK APIs parse every event type,
`jsonschema` validates each `data` against its served schema, and the AsyncAPI document
against the official AsyncAPI 3.0.0 JSON Schema (vendored from npm @asyncapi/specs 6.11.1,
Apache-2.0, as `asyncapi-3.0.0.schema.json.gz`).
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import jsonschema
import msgspec
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1.http import from_http as from_http_v1
from polyfactory.factories.msgspec_factory import MsgspecFactory

from adapters.streams.envelope import CONTENT_TYPE, TYPES, StreamEvent, envelope, short_type
from adapters.streams.nats import subject
from adapters.streams.schemas import asyncapi_document, event_schema
from adapters.streams.settings import StreamSettings
from domain.events import EVENT_TYPES, CentreEvent, Event, LearnerEnrolled, PortfolioEvent
from tests.e2e.streams.conftest import BASE_URL

PUBLISHED = {
    "eportfolio.audit.checkpoint_issued": "uk.eportfolio.checkpoint.issued.v1",
    "eportfolio.centre.ev_allocated": "uk.eportfolio.ev.allocated.v1",
    "eportfolio.centre.learner_registered": "uk.eportfolio.learner.registered.v1",
    "eportfolio.centre.legal_hold_lifted": "uk.eportfolio.legal_hold.lifted.v1",
    "eportfolio.centre.legal_hold_placed": "uk.eportfolio.legal_hold.placed.v1",
    "eportfolio.centre.observed_criteria_set": "uk.eportfolio.observed_criteria.set.v1",
    "eportfolio.centre.realistic_environment_approved": (
        "uk.eportfolio.realistic_environment.approved.v1"
    ),
    "eportfolio.centre.registered": "uk.eportfolio.centre.registered.v1",
    "eportfolio.centre.retention_policy_set": "uk.eportfolio.retention_policy.set.v1",
    "eportfolio.centre.sampling_plan_set": "uk.eportfolio.sampling_plan.set.v1",
    "eportfolio.centre.staff_qualification_changed": "uk.eportfolio.staff_qualification.changed.v1",
    "eportfolio.centre.staff_registered": "uk.eportfolio.staff.registered.v1",
    "eportfolio.centre.subject_erased": "uk.eportfolio.subject.erased.v1",
    "eportfolio.centre.sufficiency_policy_set": "uk.eportfolio.sufficiency_policy.set.v1",
    "eportfolio.centre.witness_added": "uk.eportfolio.witness.added.v1",
    "eportfolio.portfolio.appeal_opened": "uk.eportfolio.appeal.opened.v1",
    "eportfolio.portfolio.decision_countersigned": "uk.eportfolio.decision.countersigned.v1",
    "eportfolio.portfolio.decision_recorded": "uk.eportfolio.decision.recorded.v1",
    "eportfolio.portfolio.decision_revoked": "uk.eportfolio.decision.revoked.v1",
    "eportfolio.portfolio.ev_sample_recorded": "uk.eportfolio.ev_sample.recorded.v1",
    "eportfolio.portfolio.evidence_mapped": "uk.eportfolio.evidence.mapped.v1",
    "eportfolio.portfolio.evidence_submitted": "uk.eportfolio.evidence.submitted.v1",
    "eportfolio.portfolio.evidence_withdrawn": "uk.eportfolio.evidence.withdrawn.v1",
    "eportfolio.portfolio.iqa_sample_countersigned": "uk.eportfolio.iqa_sample.countersigned.v1",
    "eportfolio.portfolio.iqa_sample_recorded": "uk.eportfolio.iqa_sample.recorded.v1",
    "eportfolio.portfolio.learner_enrolled": "uk.eportfolio.learner.enrolled.v1",
    "eportfolio.portfolio.learner_withdrawn": "uk.eportfolio.learner.withdrawn.v1",
    "eportfolio.portfolio.observation_recorded": "uk.eportfolio.observation.recorded.v1",
    "eportfolio.portfolio.questioning_recorded": "uk.eportfolio.questioning.recorded.v1",
    "eportfolio.portfolio.sample_responded": "uk.eportfolio.sample.responded.v1",
    "eportfolio.portfolio.sample_response_accepted": "uk.eportfolio.sample_response.accepted.v1",
    "eportfolio.portfolio.unit_certified": "uk.eportfolio.unit.certified.v1",
    "eportfolio.portfolio.unit_completion_signed": "uk.eportfolio.unit_completion.signed.v1",
    "eportfolio.portfolio.witness_testimony_recorded": (
        "uk.eportfolio.witness_testimony.recorded.v1"
    ),
}
ASYNCAPI_SCHEMA = Path(__file__).with_name("asyncapi-3.0.0.schema.json.gz")


def example(cls: type[Event], seed: int) -> Event:
    """A valid instance of `cls` (polyfactory honours the msgspec constraints)."""
    factory = MsgspecFactory.create_factory(cls, __random_seed__=seed)
    built = factory.build()
    assert isinstance(built, cls)
    return built


def test_every_event_type_has_a_pinned_published_type() -> None:
    """A published type never changes by accident: renaming code must not rename it."""
    assert {cls.TOPIC: name for name, cls in TYPES.items()} == PUBLISHED
    assert len(TYPES) == len(EVENT_TYPES)


@pytest.mark.parametrize("topic", sorted(EVENT_TYPES))
def test_every_event_type_parses_with_both_cloudevents_sdks_and_matches_its_schema(
    topic: str,
) -> None:
    cls = EVENT_TYPES[topic]
    event = example(cls, seed=len(topic))
    portfolio_centre = uuid4()
    enveloped = envelope(42, event, lambda _: portfolio_centre, BASE_URL)
    headers = {"content-type": CONTENT_TYPE}

    core = from_http(HTTPMessage(headers=headers, body=enveloped.body), JSONFormat())
    classic = from_http_v1(headers, enveloped.body)
    for parsed in (core.get_attributes(), classic.get_attributes()):
        assert parsed["specversion"] == "1.0"
        assert parsed["id"] == str(event.event_id)
        assert parsed["type"] == PUBLISHED[topic]
        assert parsed["sequence"] == "00000000000000000042"
        assert parsed["dataschema"] == f"{BASE_URL}/schemas/events/{PUBLISHED[topic]}.json"
        assert parsed["datacontenttype"] == "application/json"
        assert _instant(parsed["time"]) == _aware(event.recorded_at)  # not midnight of a date
        assert _instant(parsed["recordedtime"]) == _aware(event.recorded_at)
        assert parsed["effectivedate"] == event.effective_on.isoformat()
    attributes = core.get_attributes()
    centre = _centre_of(event, portfolio_centre)
    assert attributes["source"] == (f"/centres/{centre}" if centre else "/global")
    if isinstance(event, PortfolioEvent):
        assert attributes["subject"] == str(event.portfolio_id)
        assert attributes["partitionkey"] == str(event.portfolio_id)
    else:
        assert "subject" not in attributes

    data = json.loads(enveloped.body)["data"]
    assert classic.get_data() == data
    jsonschema.Draft202012Validator(event_schema(PUBLISHED[topic], BASE_URL)).validate(data)
    assert msgspec.json.decode(json.dumps(data), type=cls) == event


def _instant(value: Any) -> datetime:
    """An SDK's `time`: a datetime (core) or its RFC 3339 text (an extension, or classic)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _centre_of(event: Event, portfolio_centre: Any) -> Any:
    if isinstance(event, CentreEvent | LearnerEnrolled):
        return event.centre_id
    return portfolio_centre if isinstance(event, PortfolioEvent) else None


def test_schemas_reject_data_of_another_type_and_name_their_url() -> None:
    schema = event_schema("uk.eportfolio.evidence.submitted.v1", BASE_URL)
    assert schema["$id"] == f"{BASE_URL}/schemas/events/uk.eportfolio.evidence.submitted.v1.json"
    other = msgspec.to_builtins(example(EVENT_TYPES["eportfolio.centre.registered"], 1))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(other)


def test_sequence_sorts_as_text_in_the_order_of_positions() -> None:
    event = example(EVENT_TYPES["eportfolio.centre.registered"], 2)
    positions = [1, 9, 10, 99, 100, 12_345_678_901]
    sequences = [
        json.loads(envelope(p, event, lambda _: None, BASE_URL).body)["sequence"] for p in positions
    ]
    assert sorted(sequences) == sequences
    assert {len(s) for s in sequences} == {20}


WITH_NATS = StreamSettings(
    public_url=BASE_URL,
    nats_url="nats://nats-a.internal:4222, nats://nats-b.internal:4223",
    nats_stream="PORTFOLIO_EVENTS",
    nats_subject_prefix="acme",
)


def test_the_asyncapi_document_is_valid_asyncapi_3_and_describes_every_type() -> None:
    official = json.loads(gzip.decompress(ASYNCAPI_SCHEMA.read_bytes()))
    document = asyncapi_document(WITH_NATS)
    jsonschema.Draft7Validator(official).validate(document)

    assert set(document["channels"]) == {"feed", "stream", "webhook", "nats"}
    messages = document["components"]["messages"]
    assert {m["name"] for m in messages.values()} == set(TYPES)
    for channel in document["channels"].values():
        assert len(channel["messages"]) == len(TYPES)
    nats = document["channels"]["nats"]
    assert nats["address"] == "acme.{centre}.{type}"
    assert set(nats["parameters"]["type"]["enum"]) == {short_type(c) for c in TYPES.values()}


def test_the_asyncapi_servers_are_the_configured_ones_and_name_the_stream() -> None:
    """An integrator connects where the document says: this deployment's NATS, not localhost."""
    official = json.loads(gzip.decompress(ASYNCAPI_SCHEMA.read_bytes()))
    document = asyncapi_document(WITH_NATS)
    servers = document["servers"]
    assert servers["http"]["host"] == "eportfolio.test"
    assert servers["http"]["protocol"] == "https"
    nats = [s for s in servers.values() if s["protocol"] == "nats"]
    assert [s["host"] for s in nats] == ["nats-a.internal:4222", "nats-b.internal:4223"]
    assert {s["x-jetstream-stream"] for s in nats} == {"PORTFOLIO_EVENTS"}
    assert all("`PORTFOLIO_EVENTS`" in s["description"] for s in nats)
    channel = document["channels"]["nats"]
    assert channel["address"] == "acme.{centre}.{type}"
    assert "PORTFOLIO_EVENTS" in channel["description"]
    assert {r["$ref"] for r in channel["servers"]} == {f"#/servers/{n}" for n in ("nats1", "nats2")}

    without = asyncapi_document(StreamSettings(public_url=BASE_URL))  # publishing is off
    jsonschema.Draft7Validator(official).validate(without)
    assert "nats" not in without["channels"]
    assert [s["protocol"] for s in without["servers"].values()] == ["https"]


def test_nats_subjects_follow_the_documented_address() -> None:
    centre = uuid4()
    event = StreamEvent(7, uuid4(), "uk.eportfolio.evidence.submitted.v1", centre, uuid4(), b"")
    assert subject("eportfolio", event) == f"eportfolio.{centre}.evidence.submitted.v1"
    lone = StreamEvent(8, uuid4(), "uk.eportfolio.checkpoint.issued.v1", None, None, b"")
    assert re.fullmatch(r"eportfolio\.global\.checkpoint\.issued\.v1", subject("eportfolio", lone))


def test_an_invalid_asyncapi_document_is_caught_by_the_official_schema() -> None:
    """The validation above can fail: a channel without its required shape is refused."""
    official = json.loads(gzip.decompress(ASYNCAPI_SCHEMA.read_bytes()))
    document = asyncapi_document(StreamSettings(public_url=BASE_URL))
    document["operations"]["sendFeed"]["action"] = "publish"  # AsyncAPI 2 wording
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(official).validate(document)
