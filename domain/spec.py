"""Unit specifications: what a learner is assessed against.

A spec is data (decoded from a file by an adapter) and immutable. Its content hash is
recorded at enrolment, so editing a spec file never changes what an earlier portfolio
was assessed against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
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

    @property
    def label(self) -> str:
        """The method in the words an assessor writes."""
        return _METHOD_LABELS[self]


_METHOD_LABELS = {
    Method.OBSERVATION: "observation",
    Method.PROFESSIONAL_DISCUSSION: "professional discussion",
    Method.QUESTIONING: "questioning",
    Method.WORK_PRODUCT: "work product",
    Method.WITNESS_TESTIMONY: "witness testimony",
    Method.OTHER: "other evidence",
}


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


class SpecInvalid(Exception):
    """A decoded spec breaks a rule its types cannot express.

    `field` is a path in msgspec's own form (`$.criteria[3].id`), so a decode error and a
    rule error point into the file the same way.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def validate_spec(spec: UnitSpec) -> None:
    """Refuse a spec that gap analysis could not assess unambiguously; raise SpecInvalid."""
    if not any(c.kind is CriterionKind.PERFORMANCE for c in spec.criteria):
        raise SpecInvalid("$.criteria", "a unit needs at least one performance criterion")
    _check_unique(_id_paths(spec), "id")
    _check_unique(((f"$.outcomes[{i}].id", o.id) for i, o in enumerate(spec.outcomes)), "outcome")
    _check_outcomes(spec)
    _check_observation(spec)
    if spec.range is not None and not 1 <= spec.range.min_observed <= len(spec.range.items):
        raise SpecInvalid(
            "$.range.min_observed",
            f"must be between 1 and the {len(spec.range.items)} range items",
        )


def _id_paths(spec: UnitSpec) -> Iterator[tuple[str, str]]:
    """Every mappable id with its path: evidence maps to ids, so they share one namespace."""
    yield from ((f"$.criteria[{i}].id", c.id) for i, c in enumerate(spec.criteria))
    if spec.range is not None:
        yield from ((f"$.range.items[{i}].id", r.id) for i, r in enumerate(spec.range.items))
    yield from ((f"$.requirements[{i}].id", r.id) for i, r in enumerate(spec.requirements))


def _check_unique(paths: Iterator[tuple[str, str]], what: str) -> None:
    seen: dict[str, str] = {}
    for path, value in paths:
        if value in seen:
            raise SpecInvalid(path, f"{what} {value!r} is already used at {seen[value]}")
        seen[value] = path


def _check_outcomes(spec: UnitSpec) -> None:
    if not spec.outcomes:
        return
    declared = {o.id for o in spec.outcomes}
    for i, c in enumerate(spec.criteria):
        if c.outcome and c.outcome not in declared:
            raise SpecInvalid(
                f"$.criteria[{i}].outcome",
                f"{c.outcome!r} is not a declared outcome ({', '.join(sorted(declared))})",
            )


def _check_observation(spec: UnitSpec) -> None:
    """must_observe is the spec naming criteria; only a "named" rule does that."""
    named = spec.observation_rule is ObservationRule.NAMED
    for i, c in enumerate(spec.criteria):
        if not c.must_observe:
            continue
        if not named:
            raise SpecInvalid(
                f"$.criteria[{i}].must_observe",
                f"needs observation_rule 'named', not {spec.observation_rule.value!r}",
            )
        if c.kind is not CriterionKind.PERFORMANCE:
            raise SpecInvalid(f"$.criteria[{i}].must_observe", "only performance is observed")
    if named and not any(c.must_observe for c in spec.criteria):
        raise SpecInvalid("$.observation_rule", "'named' but no criterion has must_observe")


@dataclass(frozen=True)
class SpecCatalogue:
    """The unit specs a deployment offers, keyed by (code, version).

    Old versions stay: an enrolment pins a version and its content hash, and must still
    resolve after a newer version is published.
    """

    specs: tuple[UnitSpec, ...] = ()
    _by_key: Mapping[tuple[str, int], UnitSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key: dict[tuple[str, int], UnitSpec] = {}
        for i, spec in enumerate(self.specs):
            key = (spec.code, spec.version)
            if key in by_key:
                raise SpecInvalid(f"$[{i}]", f"{spec.code} version {spec.version} is listed twice")
            by_key[key] = spec
        object.__setattr__(self, "_by_key", MappingProxyType(by_key))

    def get(self, code: str, version: int | None = None) -> UnitSpec | None:
        """The given version, or the latest one; None if the catalogue has no such spec."""
        if version is not None:
            return self._by_key.get((code, version))
        versions = self.versions(code)
        return self._by_key[(code, versions[-1])] if versions else None

    def by_hash(self, code: str, content_hash: str) -> UnitSpec | None:
        """The version an enrolment pinned, found by what it pinned rather than a number."""
        return next(
            (s for s in self.specs if s.code == code and s.content_hash == content_hash), None
        )

    def versions(self, code: str) -> tuple[int, ...]:
        return tuple(sorted(v for c, v in self._by_key if c == code))

    def codes(self) -> tuple[str, ...]:
        return tuple(sorted({c for c, _ in self._by_key}))
