"""Unit specifications: what a learner is assessed against.

A spec is data (decoded from a file by an adapter) and immutable. Its content hash is
recorded at enrolment, so editing a spec file never changes what an earlier portfolio
was assessed against.
"""

from __future__ import annotations

import functools
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
    #: Performance the assessor observes unless observation is not possible; a decision
    #: resting on other methods records why (seed 000: "PCs 1, 2 and 8-16 may be assessed by
    #: alternative methods if observation is not possible").
    observe_unless_not_possible: bool = False
    #: Knowledge that may be inferred from observed performance or products of work. Read
    #: per statement, never per unit: only a statement about how to do something qualifies.
    inferable: bool = False
    #: The sentence of the unit text behind the reading of `inferable` (knowledge only).
    inference_basis: str = ""


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


class RweRule(StrEnum):
    """Whether performance evidence may come from a realistic working environment (RWE)."""

    FORBIDDEN = "forbidden"
    ALLOWED = "allowed"
    APPROVED_ONLY = "approved_only"  # "approved realistic working environment": on record


class EnvironmentRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where performance evidence may come from: real work always; the rest as the unit says.

    Applies to all performance evidence: criteria, range items and evidence requirements.
    """

    realistic_working_environment: RweRule
    work_placement_allowed: bool
    simulation_allowed_for_performance: bool = False


class SpecCorrection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An earlier version of this spec whose reading of the same unit text was wrong.

    Portfolios enrolled on it are judged by the correcting version, and say so.
    """

    version: int
    content_hash: str
    reason: str


class UnitSpec(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, dict=True
):  # dict: room for the content hash, worked out once (a write checks it ~3 times)
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
    range: RangeRule | None = None
    requirements: tuple[RequirementCategory, ...] = ()
    environment: EnvironmentRule
    methods: tuple[Method, ...] = tuple(Method)
    sufficiency: Literal["over_time"] = "over_time"
    corrects: tuple[SpecCorrection, ...] = ()

    def criterion(self, criterion_id: str) -> Criterion | None:
        return next((c for c in self.criteria if c.id == criterion_id), None)

    @functools.cached_property
    def content_hash(self) -> str:
        """SHA-256 of the canonical encoding: what an enrolment pins."""
        return hashlib.sha256(msgspec.json.encode(self, order="sorted")).hexdigest()

    def corrects_hash(self, content_hash: str) -> SpecCorrection | None:
        """The correction this spec makes of the version with `content_hash`, if any."""
        return next((c for c in self.corrects if c.content_hash == content_hash), None)

    def performance_ids(self) -> frozenset[str]:
        """Ids whose evidence is performance evidence: criteria, range items, requirements.

        The environment rules (no simulation; RWE and work placements as the unit says)
        apply to evidence for every one of them.
        """
        ids = {c.id for c in self.criteria if c.kind is CriterionKind.PERFORMANCE}
        ids |= {r.id for r in self.requirements}
        if self.range is not None:
            ids |= {item.id for item in self.range.items}
        return frozenset(ids)

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
    _check_knowledge(spec)
    _check_corrections(spec)
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


def _check_knowledge(spec: UnitSpec) -> None:
    """Inference is read per knowledge statement, with the sentence behind the reading."""
    for i, c in enumerate(spec.criteria):
        knowledge = c.kind is CriterionKind.KNOWLEDGE
        if c.inferable and not knowledge:
            raise SpecInvalid(f"$.criteria[{i}].inferable", "only knowledge is inferred")
        if knowledge and not c.inference_basis.strip():
            raise SpecInvalid(
                f"$.criteria[{i}].inference_basis",
                "say which sentence of the unit text decides whether this may be inferred",
            )
        if c.observe_unless_not_possible and (knowledge or c.must_observe):
            raise SpecInvalid(
                f"$.criteria[{i}].observe_unless_not_possible",
                "only for performance that is not already must_observe",
            )


def _check_corrections(spec: UnitSpec) -> None:
    for i, correction in enumerate(spec.corrects):
        if not 1 <= correction.version < spec.version:
            raise SpecInvalid(
                f"$.corrects[{i}].version", f"must be an earlier version than {spec.version}"
            )


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
        """The version an enrolment pinned, found by what it pinned rather than a number.

        A version that a later one corrects resolves to the latest correcting version: the
        unit text did not change, only our reading of it, and the reading must be right.
        """
        same = [s for s in self.specs if s.code == code]
        pinned = next((s for s in same if s.content_hash == content_hash), None)
        if pinned is not None:
            return pinned
        correcting = [s for s in same if s.corrects_hash(content_hash) is not None]
        return max(correcting, key=lambda s: s.version, default=None)

    def versions(self, code: str) -> tuple[int, ...]:
        return tuple(sorted(v for c, v in self._by_key if c == code))

    def codes(self) -> tuple[str, ...]:
        return tuple(sorted({c for c, _ in self._by_key}))
