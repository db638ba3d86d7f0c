"""Unit specifications: what a learner is assessed against.

A spec is data (decoded from a file by an adapter) and immutable. Its content hash is
recorded at enrolment, so editing a spec file never changes what an earlier portfolio
was assessed against.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Literal

import msgspec

CriterionId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9.]{1,16}$")]


class Method(StrEnum):
    """Assessment methods, with the codes the unit texts use."""

    OBSERVATION = "O"
    PROFESSIONAL_DISCUSSION = "PD"
    QUESTIONING = "Q"
    WORK_PRODUCT = "WP"
    WITNESS_TESTIMONY = "WT"
    OTHER = "Oth"


class CriterionKind(StrEnum):
    PERFORMANCE = "performance"
    KNOWLEDGE = "knowledge"


class ObservationRule(StrEnum):
    """How a unit says which criteria must be directly observed."""

    NAMED = "named"  # the spec lists them (seed 000: PCs 3-7)
    CENTRE_SETS = "centre_sets"  # "circled numbers must be observed": the centre circles them
    NOT_STATED = "not_stated"


class Criterion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: CriterionId
    text: str
    kind: CriterionKind
    outcome: str = ""
    must_observe: bool = False


class LearningOutcome(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    title: str


class RangeItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: CriterionId
    text: str


class RangeRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """E.g. "two from (a)-(d) by direct observation; the rest by Q or WT"."""

    items: tuple[RangeItem, ...]
    min_observed: int
    other_methods: tuple[Method, ...] = ()


class RequirementCategory(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An evidence-requirement category that must appear at least once."""

    id: CriterionId
    group: str
    text: str


class EnvironmentRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    realistic_working_environment_allowed: bool
    simulation_allowed_for_performance: bool = False


class UnitSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,32}$")]
    version: Annotated[int, msgspec.Meta(ge=1)]
    title: str
    awarding_body: str
    seed: str
    level: int | None = None
    credit: int | None = None
    guided_learning_hours: int | None = None
    overview: str = ""
    outcomes: tuple[LearningOutcome, ...] = ()
    criteria: tuple[Criterion, ...]
    observation_rule: ObservationRule
    knowledge_inference_allowed: bool
    range: RangeRule | None = None
    requirements: tuple[RequirementCategory, ...] = ()
    environment: EnvironmentRule
    methods: tuple[Method, ...] = tuple(Method)
    sufficiency: Literal["over_time"] = "over_time"

    def criterion(self, criterion_id: str) -> Criterion | None:
        return next((c for c in self.criteria if c.id == criterion_id), None)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical encoding: what an enrolment pins."""
        return hashlib.sha256(msgspec.json.encode(self, order="sorted")).hexdigest()

    def all_ids(self) -> frozenset[str]:
        """Every id an evidence item may be mapped to."""
        ids = {c.id for c in self.criteria} | {r.id for r in self.requirements}
        if self.range is not None:
            ids |= {item.id for item in self.range.items}
        return frozenset(ids)
