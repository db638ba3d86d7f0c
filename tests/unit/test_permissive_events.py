"""Stored events are permissive when read back; their commands validate (docs/adr/0013).

So an older verifier reads a newer bundle, and a rule tightened later never makes history
unreadable, while nothing a write was refused for before is accepted now.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import msgspec
import pytest

from domain import commands as c
from domain import events as e
from domain.spec import Method
from service.codec import TYPES, decode, encode

CONSTRAINTS = {
    *("maxLength", "minLength", "pattern", "minimum", "maximum"),
    *("exclusiveMinimum", "exclusiveMaximum", "maxItems", "minItems", "multipleOf"),
}
SHA = "ab" * 32


def _walk(node: Any) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        structural = {"minItems", "maxItems"} if "prefixItems" in node else set()  # a pair
        found = [(k, v) for k, v in node.items() if k in CONSTRAINTS - structural]
        if node.get("additionalProperties") is False:
            found.append(("additionalProperties", False))
        return found + [pair for v in node.values() for pair in _walk(v)]
    if isinstance(node, list):
        return [pair for v in node for pair in _walk(v)]
    return []


@pytest.mark.parametrize("topic", sorted(TYPES))
def test_no_stored_type_constrains_what_it_reads_back(topic: str) -> None:
    assert _walk(msgspec.json.schema(TYPES[topic])) == []


def _submitted(**changes: Any) -> e.EvidenceSubmitted:
    fields: dict[str, Any] = {
        "event_id": uuid4(),
        "actor_id": uuid4(),
        "actor_role": e.Role.LEARNER,
        "recorded_at": datetime(2025, 3, 1, 9, tzinfo=UTC),
        "effective_on": date(2025, 3, 1),
        "portfolio_id": uuid4(),
        "evidence_id": uuid4(),
        "method": Method.WORK_PRODUCT,
        "title": "Call notes",
        "environment": e.Environment.WORKPLACE,
        "authenticity_declared": True,
        "attachments": (e.Attachment(sha256=SHA, media_type="text/plain", size=3),),
    }
    return e.EvidenceSubmitted(**{**fields, **changes})


def test_an_event_a_later_release_wrote_reads_here_unknown_fields_and_all() -> None:
    event = _submitted(title="x" * 5_000, occasion="y" * 1_000, customer_ref="not a ref!")
    state = msgspec.to_builtins(event)
    state["rating"] = 5  # a field this release does not know
    state["attachments"][0]["thumbnail"] = SHA  # also inside a nested value
    read = decode(e.EvidenceSubmitted.TOPIC, msgspec.json.encode(state))
    assert read == event
    assert decode(e.EvidenceSubmitted.TOPIC, encode(event)) == event


def _evidence(**changes: Any) -> dict[str, Any]:
    return {
        "evidence_id": str(uuid4()),
        "method": "WP",
        "title": "Call notes",
        "environment": "workplace",
        "authenticity_declared": True,
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"title": ""}, "$.title"),
        ({"title": "x" * 301}, "$.title"),
        ({"customer_ref": "not a ref!"}, "$.customer_ref"),
        ({"requirement_tags": ["PC 1"]}, "$.requirement_tags[0]"),
        ({"attachments": [{"sha256": "AB", "media_type": "text/plain", "size": 1}]}, "sha256"),
        (
            {"attachments": [{"sha256": SHA, "media_type": "a/" + "b" * 199, "size": 1}]},
            "media_type",
        ),
        ({"attachments": [{"sha256": SHA, "media_type": "text/plain", "size": -1}]}, "size"),
        (
            {"attachments": [{"sha256": SHA, "media_type": "text/plain", "size": 1, "x": 1}]},
            "x",
        ),
        ({"rating": 5}, "rating"),
    ],
)
def test_the_command_refuses_what_the_event_no_longer_checks(
    changes: dict[str, Any], where: str
) -> None:
    with pytest.raises(
        msgspec.ValidationError, match=where.replace("$", r"\$").replace("[", r"\[")
    ):
        msgspec.convert(_evidence(**changes), c.SubmitEvidence)


def test_a_policy_command_refuses_bad_thresholds_and_its_event_holds_the_permissive_form() -> None:
    with pytest.raises(msgspec.ValidationError, match="min_occasions"):
        msgspec.convert({"default": {"min_occasions": 0}}, c.SetSufficiencyPolicy)
    with pytest.raises(msgspec.ValidationError, match="per_unit"):
        msgspec.convert(
            {"per_unit": [{"unit_code": "U", "thresholds": {}, "tolerance": 1}]},
            c.SetSufficiencyPolicy,
        )
    cmd = c.SetSufficiencyPolicy(
        default=c.SufficiencyThresholds(min_occasions=3),
        per_unit=(c.UnitThresholds(unit_code="U", thresholds=c.SufficiencyThresholds()),),
    )
    stamp = c.Stamp(
        event_id=uuid4(),
        actor=c.Actor(id=uuid4(), role=e.Role.ADMIN),
        recorded_at=datetime(2025, 3, 1, 9, tzinfo=UTC),
    )
    fields = cmd.event_fields(stamp)
    assert type(fields["default"]) is e.SufficiencyThresholds
    assert fields["default"] == e.SufficiencyThresholds(min_occasions=3)
    assert [type(u) for u in fields["per_unit"]] == [e.UnitThresholds]
    assert type(fields["per_unit"][0].thresholds) is e.SufficiencyThresholds
