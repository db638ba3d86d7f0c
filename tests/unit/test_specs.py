"""Unit specs against the unit texts they were transcribed from, and the loader's refusals.

The seed-text tests parse numbers and wording out of specs/sources rather than repeating the
spec's values, so a transcription slip in either place shows up as a disagreement.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import msgspec
import pytest

from adapters.specs import SpecFileError, default_specs_dir, load_catalogue, load_spec_file
from domain.spec import (
    Criterion,
    CriterionKind,
    Method,
    ObservationRule,
    RweRule,
    SpecCatalogue,
    SpecInvalid,
    UnitSpec,
    validate_spec,
)

SPECS = default_specs_dir()
SOURCES = SPECS / "sources"
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4}


@pytest.fixture(scope="module")
def catalogue() -> SpecCatalogue:
    return load_catalogue(SPECS)


def spec_for(catalogue: SpecCatalogue, seed_number: str) -> UnitSpec:
    (spec,) = (s for s in catalogue.specs if s.seed.startswith(f"{seed_number}_"))
    return spec


def source(spec: UnitSpec) -> str:
    return (SOURCES / f"{spec.seed}.txt").read_text(encoding="utf-8")


def normalise(text: str) -> str:
    """Drop HTML tags and collapse whitespace: the seeds are extracted from Word and HTML."""
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def section(text: str, start: str, end: str | None = None) -> str:
    """The part of a seed text between two headings (each must occur)."""
    begin = text.index(start) + len(start)
    return text[begin : text.index(end, begin)] if end else text[begin:]


def texts(spec: UnitSpec, kind: CriterionKind) -> dict[str, str]:
    return {c.id: c.text for c in spec.criteria if c.kind is kind}


def must_observe(spec: UnitSpec) -> set[str]:
    return {c.id for c in spec.criteria if c.must_observe}


def outcome_titles(spec: UnitSpec) -> dict[str, str]:
    return {c.id: spec_outcome(spec, c) for c in spec.criteria}


def spec_outcome(spec: UnitSpec, criterion: Criterion) -> str:
    return next((o.title for o in spec.outcomes if o.id == criterion.outcome), "")


def wrapped_items(block: str, prefix: str = "") -> dict[str, str]:
    """Numbered items that wrap over several lines and end at a blank line (seed 002)."""
    pattern = rf"^\t?{prefix}(\d+)\t\s*(.+?)(?=\n\s*\n|\Z)"
    return {n: normalise(t) for n, t in re.findall(pattern, block, re.MULTILINE | re.DOTALL)}


# --- every spec -------------------------------------------------------------------------


def test_every_seed_text_has_exactly_one_spec_and_every_spec_names_a_seed_text(
    catalogue: SpecCatalogue,
) -> None:
    seeds = sorted(p.stem for p in SOURCES.glob("*.txt"))
    assert len(seeds) == 5
    assert sorted(s.seed for s in catalogue.specs) == seeds


def test_every_spec_is_version_2_correcting_version_1_with_a_readable_code(
    catalogue: SpecCatalogue,
) -> None:
    """Version 1 read knowledge inference per unit; each version 2 says it corrects it."""
    assert catalogue.codes() == ("CS-MSCSP-H", "CS-RCSP-C", "CS-RCSP-H", "CS-RCSP-W", "OCR-354")
    assert {s.version for s in catalogue.specs} == {2}
    for spec in catalogue.specs:
        (correction,) = spec.corrects
        assert correction.version == 1
        assert "per statement" in correction.reason or "describe" in correction.reason
        assert catalogue.by_hash(spec.code, correction.content_hash) == spec


def test_every_text_in_a_spec_starts_and_ends_as_in_its_seed_text(
    catalogue: SpecCatalogue,
) -> None:
    """Head and tail, not the whole: seed 001 splits a criterion across a table page break."""
    for spec in catalogue.specs:
        seed = normalise(source(spec))
        for text in spec_texts(spec):
            words = normalise(text).split()
            assert " ".join(words[:6]) in seed, (spec.code, text)
            assert " ".join(words[-4:]) in seed, (spec.code, text)


def spec_texts(spec: UnitSpec) -> Iterator[str]:
    yield from (c.text for c in spec.criteria)
    yield from (o.title for o in spec.outcomes)
    yield from (r.text for r in spec.requirements)
    yield from (r.group for r in spec.requirements)
    yield from (r.text for r in spec.range.items) if spec.range else ()
    yield from [spec.overview] if spec.overview else ()


def test_no_spec_allows_simulation_for_performance_evidence(catalogue: SpecCatalogue) -> None:
    assert not any(s.environment.simulation_allowed_for_performance for s in catalogue.specs)


INFERENCE_SENTENCE = (
    "For those knowledge statements that relate to how the candidate should do something, "
    "the assessor may be able to infer"
)
ASKS_TO_STATE = ("Describe", "Explain", "Identify")


def knowledge_of(spec: UnitSpec) -> list[Criterion]:
    return [c for c in spec.criteria if c.kind is CriterionKind.KNOWLEDGE]


def test_knowledge_inference_is_read_per_statement_with_the_sentence_behind_it(
    catalogue: SpecCatalogue,
) -> None:
    """Seeds 000 and 003: only "how to ..." statements may be inferred; the others need
    questioning or written work. Statements asking to describe, explain or identify (seed
    001's LO4, seed 002's K1-K5, seed 004's 4.1-4.5) are never inferred."""
    for spec in catalogue.specs:
        text = normalise(source(spec))
        for statement in knowledge_of(spec):
            assert statement.inference_basis, (spec.code, statement.id)
            if INFERENCE_SENTENCE in text:
                quoted = statement.inference_basis.split(" (")[0]
                assert quoted in text, (spec.code, statement.id)
                how_to = statement.text.startswith("How ") and " contributes " not in statement.text
                assert statement.inferable == how_to, (spec.code, statement.id)
            else:
                assert statement.text.startswith(ASKS_TO_STATE), (spec.code, statement.id)
                assert not statement.inferable, (spec.code, statement.id)
                assert statement.text.split()[0].lower() in statement.inference_basis


def test_seed_000_infers_k2_to_k5_only_and_seed_003_k4_only(catalogue: SpecCatalogue) -> None:
    def inferable(seed: str) -> list[str]:
        return [c.id for c in knowledge_of(spec_for(catalogue, seed)) if c.inferable]

    assert inferable("000") == ["K2", "K3", "K4", "K5"]
    assert inferable("003") == ["K4"]
    assert inferable("001") == inferable("002") == inferable("004") == []


def test_seed_000_pcs_1_2_and_8_to_16_are_observed_unless_observation_is_not_possible(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "000")
    found = re.search(
        r"PCs (\d+), (\d+) and (\d+)\u2013(\d+) may be assessed by alternative methods if "
        r"observation is not possible",
        source(spec),
    )
    assert found is not None
    a, b, first, last = (int(n) for n in found.groups())
    expected = {f"PC{n}" for n in (a, b, *range(first, last + 1))}
    assert {c.id for c in spec.criteria if c.observe_unless_not_possible} == expected
    assert not expected & must_observe(spec)
    others = [s for s in catalogue.specs if s is not spec]
    assert not any(c.observe_unless_not_possible for s in others for c in s.criteria)


def test_only_seed_001_states_level_credit_and_guided_learning_hours(
    catalogue: SpecCatalogue,
) -> None:
    stated = {s.seed[:3] for s in catalogue.specs if s.level or s.credit}
    assert stated == {"001"}
    assert all(s.guided_learning_hours is None for s in catalogue.specs if s.seed[:3] != "001")


# --- seed 000: Resolve customer service problems (hospitality) ----------------------------


def test_seed_000_numbers_sixteen_pcs_and_seven_knowledge_statements_as_the_text_does(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "000")
    text = source(spec)
    pcs = re.findall(r"^(\d+)\t(.+)$", section(text, "Performance criteria", "Scope/Range"), re.M)
    knowledge = re.findall(r"^\t(\d+)\n\t(.+)$", section(text, "What you must know"), re.M)
    assert texts(spec, CriterionKind.PERFORMANCE) == {f"PC{n}": t.strip() for n, t in pcs}
    assert texts(spec, CriterionKind.KNOWLEDGE) == {f"K{n}": t.strip() for n, t in knowledge}
    assert (len(pcs), len(knowledge)) == (16, 7)


def test_seed_000_requires_pcs_3_to_7_to_be_observed(catalogue: SpecCatalogue) -> None:
    spec = spec_for(catalogue, "000")
    first, last = re.findall(r"assess PCs (\d+)\u2013(\d+) by directly observing", source(spec))[0]
    assert spec.observation_rule is ObservationRule.NAMED
    assert must_observe(spec) == {f"PC{n}" for n in range(int(first), int(last) + 1)}
    assert must_observe(spec) == {"PC3", "PC4", "PC5", "PC6", "PC7"}


def test_seed_000_puts_each_pc_under_the_outcome_heading_above_it(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "000")
    titles = {o.title for o in spec.outcomes}
    heading, expected = "", {}
    for line in section(source(spec), "You must do:", "Scope/Range").splitlines():
        if line.strip() in titles:
            heading = line.strip()
        elif number := re.match(r"^(\d+)\t", line):
            expected[f"PC{number[1]}"] = heading
    assert len(titles) == 3
    assert {k: v for k, v in outcome_titles(spec).items() if k.startswith("PC")} == expected


def test_seed_000_range_needs_two_of_a_to_d_observed_and_the_rest_by_questioning_or_witness(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "000")
    text = source(spec)
    scope = section(text, "Scope/Range", "Knowledge and understanding")
    items = re.findall(r"^\(([a-z])\)\t(.+)$", scope, re.M)
    how_many = re.findall(r"(\w+) from dealing with customer service problems", scope)[0]
    assert spec.range is not None
    assert [(i.id, i.text) for i in spec.range.items] == [(k, t.strip()) for k, t in items]
    assert spec.range.min_observed == NUMBER_WORDS[how_many] == 2
    assert "may be assessed through questioning or witness testimony" in normalise(scope)
    assert spec.range.other_methods == (Method.QUESTIONING, Method.WITNESS_TESTIMONY)


def test_seed_000_allows_only_an_approved_realistic_working_environment(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "000")
    text = normalise(source(spec))
    assert "in the workplace or approved realistic working environment" in text
    assert spec.environment.realistic_working_environment is RweRule.APPROVED_ONLY
    assert spec.environment.work_placement_allowed  # a placement is work in the workplace
    assert not spec.environment.simulation_allowed_for_performance
    assert spec.title == "Resolve customer service problems"


# --- seed 001: OCR 354 Monitor and solve customer service problems ------------------------


def test_seed_001_states_unit_number_level_credit_and_guided_learning_hours(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "001")
    text = source(spec)

    def stated(label: str) -> int:
        return int(re.findall(rf"^{label}:?\t(\d+)$", text, re.M)[0])

    assert spec.code == f"OCR-{stated('Unit number')}"
    assert spec.level == stated("Level")
    assert spec.credit == stated("Credit value")
    assert spec.guided_learning_hours == stated("Guided learning hours")
    assert f"<b>{spec.title}</b>" in text
    assert spec.awarding_body == "OCR"


def test_seed_001_numbers_its_assessment_criteria_as_the_text_does(
    catalogue: SpecCatalogue,
) -> None:
    """4.4 breaks across a table page in the text: the parsed part must begin the spec's."""
    spec = spec_for(catalogue, "001")
    parsed = dict(re.findall(r"<p>(\d\.\d) (.+?)</p>", source(spec)))
    by_id = {c.id: c.text for c in spec.criteria}
    assert by_id.keys() == parsed.keys()
    assert all(by_id[i].startswith(parsed[i]) for i in parsed)
    assert [i for i in parsed if by_id[i] != parsed[i]] == ["4.4"]


def test_seed_001_criteria_of_the_understand_outcome_are_knowledge_and_the_rest_performance(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "001")
    for criterion in spec.criteria:
        title = spec_outcome(spec, criterion)
        assert criterion.outcome == f"LO{criterion.id.split('.')[0]}"
        assert re.search(rf"{criterion.id[0]} {title[:30]}", normalise(source(spec)))
        understand = title.startswith("Understand")
        assert (criterion.kind is CriterionKind.KNOWLEDGE) == understand, criterion.id
    assert [c.id for c in spec.criteria if c.kind is CriterionKind.KNOWLEDGE] == [
        "4.1",
        "4.2",
        "4.3",
        "4.4",
    ]


def test_seed_001_evidence_requirements_4_to_7_become_categories_4a_to_7b(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "001")
    expected: dict[str, tuple[str, str]] = {}
    stem = ""
    for line in section(source(spec), "## Evidence requirements", "## Guidance").splitlines():
        if item := re.match(r"^(\d)\. (.+)$", line):
            number, stem = item[1], item[2]
        elif sub := re.match(r"^  - ([a-z]) (.+)$", line):
            expected[f"{number}{sub[1]}"] = (stem.rstrip(":"), sub[2])
    assert {r.id: (r.group, r.text) for r in spec.requirements} == expected
    assert sorted(expected) == ["4a", "4b", "5a", "5b", "5c", "6a", "6b", "6c", "7a", "7b"]


def test_seed_001_forbids_a_realistic_working_environment_and_simulation(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "001")
    text = normalise(source(spec))
    assert "realistic working environment or a work placement is not permissible" in text
    assert "Simulation is not allowed for any performance evidence" in text
    assert spec.environment.realistic_working_environment is RweRule.FORBIDDEN
    assert not spec.environment.work_placement_allowed
    assert not spec.environment.simulation_allowed_for_performance


def test_seed_001_never_mentions_observation_so_its_rule_is_not_stated(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "001")
    assert "observ" not in source(spec).lower()
    assert spec.observation_rule is ObservationRule.NOT_STATED
    assert must_observe(spec) == set()


# --- seed 002: Resolve customer service problems (workbook) -------------------------------


def test_seed_002_numbers_pcs_1_to_16_and_k1_to_k5_as_the_text_does(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "002")
    text = source(spec)
    pcs = wrapped_items(section(text, "What you must do", "What you must know"))
    knowledge = wrapped_items(section(text, "What you must know", "What you must cover"), "K")
    assert texts(spec, CriterionKind.PERFORMANCE) == {f"PC{n}": t for n, t in pcs.items()}
    assert texts(spec, CriterionKind.KNOWLEDGE) == {f"K{n}": t for n, t in knowledge.items()}
    assert (len(pcs), len(knowledge)) == (16, 5)


def test_seed_002_leaves_the_circled_numbers_to_the_centre(catalogue: SpecCatalogue) -> None:
    spec = spec_for(catalogue, "002")
    circled = normalise(source(spec)).count("Circled numbers must be observed")
    performance_outcomes = {c.outcome for c in spec.criteria if c.kind is CriterionKind.PERFORMANCE}
    assert circled == len(performance_outcomes) == 3
    assert spec.observation_rule is ObservationRule.CENTRE_SETS
    assert must_observe(spec) == set()


def test_seed_002_puts_each_criterion_under_the_outcome_marker_above_it(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "002")
    text = source(spec)
    parts = re.split(r"\(Outcome (\d)\)", section(text, "What you must do", "What you must cover"))
    expected = {
        f"{prefix}{n}": f"LO{outcome}"
        for outcome, block in zip(parts[1::2], parts[2::2], strict=True)
        for prefix in ("PC", "K")
        for n in wrapped_items(block, prefix.removeprefix("PC"))
    }
    assert {c.id: c.outcome for c in spec.criteria} == expected
    listed = normalise(section(text, "This unit has four learning outcomes:", "Evidence"))
    assert all(f"{o.id[-1]}. {o.title}" in listed for o in spec.outcomes)
    assert len(spec.outcomes) == 4


def test_seed_002_requirement_lists_become_rp1_to_rp5_and_ip1_to_ip4(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "002")
    cover = section(source(spec), "What you must cover", "Notes and feedback")
    groups = {
        "RP": ("Resolving problems", section(cover, "Resolving problems", "Information and")),
        "IP": ("Information and procedures", section(cover, "Information and procedures")),
    }
    expected = {
        f"{prefix}{n}": (group, item)
        for prefix, (group, block) in groups.items()
        for n, item in wrapped_items(block.split("\n", 2)[2]).items()
    }
    assert {r.id: (r.group, r.text) for r in spec.requirements} == expected
    assert len(expected) == 9


def test_seed_002_allows_a_realistic_working_environment_but_not_simulation(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "002")
    text = normalise(source(spec))
    assert "realistic working environment or a work placement is permissible" in text
    assert "Simulation is not allowed for any performance evidence" in text
    assert spec.environment.realistic_working_environment is RweRule.ALLOWED
    assert spec.environment.work_placement_allowed
    assert not spec.environment.simulation_allowed_for_performance


# --- seed 003: Monitor and solve customer service problems (hospitality) ------------------


def test_seed_003_numbers_fourteen_pcs_and_four_knowledge_statements_as_the_text_does(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "003")
    text = source(spec)
    pcs = re.findall(r"^(\d+)\t(.+)$", section(text, "Performance criteria", "Knowledge"), re.M)
    knowledge = re.findall(r"^\t(\d+)\n\t(.+)$", section(text, "What you must know"), re.M)
    assert texts(spec, CriterionKind.PERFORMANCE) == {f"PC{n}": t.strip() for n, t in pcs}
    assert texts(spec, CriterionKind.KNOWLEDGE) == {f"K{n}": t.strip() for n, t in knowledge}
    assert (len(pcs), len(knowledge)) == (14, 4)


def test_seed_003_names_no_criterion_for_direct_observation(catalogue: SpecCatalogue) -> None:
    """Its only "observing" is in the knowledge-inference statement."""
    spec = spec_for(catalogue, "003")
    text = normalise(source(spec))
    assert "directly observ" not in text
    assert "must be observed" not in text
    assert text.count("observ") == 1
    assert spec.observation_rule is ObservationRule.NOT_STATED
    assert must_observe(spec) == set()


def test_seed_003_reads_environment_and_inference_as_seed_000_does(
    catalogue: SpecCatalogue,
) -> None:
    spec, seed_000 = spec_for(catalogue, "003"), spec_for(catalogue, "000")
    inference = re.compile(r"For those knowledge statements.*?questioning\)\.")
    assert inference.findall(source(spec)) == inference.findall(source(seed_000))
    assert "approved realistic working environment" in normalise(source(spec))
    assert spec.environment == seed_000.environment
    assert spec.title == "Monitor and solve customer service problems"


# --- seed 004: Resolve customer service problems (checklist) ------------------------------


def test_seed_004_numbers_its_criteria_1_1_to_4_5_as_the_text_does(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "004")
    parsed = re.findall(r"^\s*(\d\.\d) (.+?)\s*$", source(spec), re.M)
    assert [(c.id, c.text) for c in spec.criteria] == parsed
    assert len(parsed) == 21


def test_seed_004_criteria_of_the_know_outcome_are_knowledge_and_sit_under_their_heading(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "004")
    headings = dict(re.findall(r"^\s*(\d)\. (.+?)\s*$", source(spec), re.M))
    for criterion in spec.criteria:
        heading = headings[criterion.id.split(".")[0]]
        assert spec_outcome(spec, criterion) == heading
        assert (criterion.kind is CriterionKind.KNOWLEDGE) == heading.startswith("Know ")


def test_seed_004_says_nothing_of_observation_so_nothing_must_be_observed(
    catalogue: SpecCatalogue,
) -> None:
    """It asks for no centre list either (seed 002's workbook does: "Circled numbers")."""
    spec, workbook = spec_for(catalogue, "004"), spec_for(catalogue, "002")
    text = source(spec).lower()
    assert not [word for word in ("observ", "environment", "simulat", "circled") if word in text]
    assert [o.title for o in spec.outcomes] == [o.title for o in workbook.outcomes]
    assert spec.observation_rule is ObservationRule.NOT_STATED
    assert workbook.observation_rule is ObservationRule.CENTRE_SETS
    assert must_observe(spec) == set()
    assert spec.environment == workbook.environment


# --- bad files ----------------------------------------------------------------------------

SEED_000_FILE = SPECS / "resolve-cs-problems-hosp.toml"


def edited_copy(tmp_path: Path, old: str, new: str, name: str = "edited.toml") -> Path:
    """Seed 000's file with one edit: realistic mistakes in an otherwise valid spec."""
    text = SEED_000_FILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("version = 2\n", "version = 2\ncolour = 1\n", "$.colour"),
        ('id = "PC1"\n', 'id = "PC1"\ncolour = 1\n', "$.criteria[0].colour"),
        ("min_observed = 2", 'min_observed = "two"', "$.range.min_observed"),
        ('kind = "knowledge"', 'kind = "know"', "$.criteria[16].kind"),
        ("version = 2\n", "", "$.version"),
        ('id = "PC2"', 'id = "PC1"', "$.criteria[1].id"),
        ('id = "a"', 'id = "K1"', "$.range.items[0].id"),
        (
            'observation_rule = "named"',
            'observation_rule = "centre_sets"',
            "$.criteria[2].must_observe",
        ),
        ("min_observed = 2", "min_observed = 5", "$.range.min_observed"),
        ("min_observed = 2", "min_observed = 0", "$.range.min_observed"),
        ('outcome = "LO1"', 'outcome = "LO9"', "$.criteria[0].outcome"),
        (
            'id = "K1"\nkind = "knowledge"',
            'id = "K1"\nkind = "knowledge"\nmust_observe = true',
            "$.criteria[16].must_observe",
        ),
        ('code = "CS-RCSP-H"', 'code = "CS RCSP H"', "$.code"),
        ("version = 2\n", "version = [\n", "$"),
        ('id = "PC1"\n', 'id = "PC1"\ninferable = true\n', "$.criteria[0].inferable"),
        (
            'inference_basis = "In all other',
            'inference_basis = " "\n# "In all other',
            "$.criteria[16].inference_basis",
        ),
        (
            'id = "PC3"\n',
            'id = "PC3"\nobserve_unless_not_possible = true\n',
            "$.criteria[2].observe_unless_not_possible",
        ),
        ("[[corrects]]\nversion = 1", "[[corrects]]\nversion = 2", "$.corrects[0].version"),
    ],
)
def test_a_bad_spec_file_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    path = edited_copy(tmp_path, old, new)
    with pytest.raises(SpecFileError) as caught:
        load_spec_file(path)
    assert caught.value.path == path
    assert caught.value.field == field
    assert str(path) in str(caught.value)
    assert f"{field}:" in str(caught.value)


def test_a_spec_file_that_is_not_utf8_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('title = "Résoudre"\n'.encode("latin-1"))
    with pytest.raises(SpecFileError, match=r"latin1\.toml: \$: not a valid UTF-8"):
        load_spec_file(path)


def test_a_unit_without_performance_criteria_is_invalid(catalogue: SpecCatalogue) -> None:
    spec = spec_for(catalogue, "003")
    knowledge_only = tuple(c for c in spec.criteria if c.kind is CriterionKind.KNOWLEDGE)
    with pytest.raises(SpecInvalid) as caught:
        validate_spec(msgspec.structs.replace(spec, criteria=knowledge_only))
    assert caught.value.field == "$.criteria"


def test_a_named_observation_rule_must_name_at_least_one_criterion(
    catalogue: SpecCatalogue,
) -> None:
    spec = spec_for(catalogue, "003")
    with pytest.raises(SpecInvalid) as caught:
        validate_spec(msgspec.structs.replace(spec, observation_rule=ObservationRule.NAMED))
    assert caught.value.field == "$.observation_rule"


def test_a_requirement_id_may_not_repeat_a_criterion_id(catalogue: SpecCatalogue) -> None:
    spec = spec_for(catalogue, "002")
    clash = msgspec.structs.replace(spec.requirements[0], id="PC1")
    with pytest.raises(SpecInvalid) as caught:
        validate_spec(msgspec.structs.replace(spec, requirements=(clash, *spec.requirements[1:])))
    assert caught.value.field == "$.requirements[0].id"


# --- content hash -------------------------------------------------------------------------

T = TypeVar("T")


def swapped(items: tuple[T, ...], i: int, item: T) -> tuple[T, ...]:
    return (*items[:i], item, *items[i + 1 :])


def text_edits(spec: UnitSpec) -> Iterator[UnitSpec]:
    """The spec with each of its texts changed in turn, one per variant."""
    replace = msgspec.structs.replace
    yield replace(spec, title=spec.title + "!")
    yield replace(spec, overview=spec.overview + "!")
    for i, c in enumerate(spec.criteria):
        yield replace(spec, criteria=swapped(spec.criteria, i, replace(c, text=c.text + "!")))
    for i, o in enumerate(spec.outcomes):
        yield replace(spec, outcomes=swapped(spec.outcomes, i, replace(o, title=o.title + "!")))
    for i, r in enumerate(spec.requirements):
        edited = swapped(spec.requirements, i, replace(r, text=r.text + "!"))
        yield replace(spec, requirements=edited)
    if spec.range is not None:
        items = spec.range.items
        for i, item in enumerate(items):
            edited_range = replace(spec.range, items=swapped(items, i, replace(item, text="!")))
            yield replace(spec, range=edited_range)


def test_content_hash_changes_when_any_text_of_any_spec_changes(catalogue: SpecCatalogue) -> None:
    for spec in catalogue.specs:
        hashes = [edited.content_hash for edited in text_edits(spec)]
        assert spec.content_hash not in hashes
        assert len(set(hashes)) == len(hashes), spec.code


def test_content_hash_changes_when_a_file_text_changes(tmp_path: Path) -> None:
    edited = edited_copy(tmp_path, "How to negotiate.", "How to negotiate well.")
    assert load_spec_file(edited).content_hash != load_spec_file(SEED_000_FILE).content_hash


def test_content_hash_is_stable_across_loads_and_ignores_comments_and_layout(
    tmp_path: Path,
) -> None:
    """An enrolment pins the hash: reformatting or commenting a file must not unpin it."""
    first, second = load_spec_file(SEED_000_FILE), load_spec_file(SEED_000_FILE)
    commented = edited_copy(tmp_path, "[environment]\n", "\n\n[environment]  # reviewed\n")
    assert first.content_hash == second.content_hash == load_spec_file(commented).content_hash
    assert re.fullmatch(r"[0-9a-f]{64}", first.content_hash)


# --- catalogue ----------------------------------------------------------------------------


def test_catalogue_rejects_two_files_with_the_same_code_and_version(tmp_path: Path) -> None:
    shutil.copy(SEED_000_FILE, tmp_path / "a.toml")
    edited_copy(tmp_path, "How to negotiate.", "How to negotiate well.", name="b.toml")
    with pytest.raises(SpecFileError) as caught:
        load_catalogue(tmp_path)
    assert caught.value.path == tmp_path / "b.toml"
    assert caught.value.field == "$.version"
    assert "CS-RCSP-H version 2 is also defined in a.toml" in str(caught.value)


def test_catalogue_gives_the_latest_version_unless_asked_and_finds_a_pinned_hash(
    tmp_path: Path,
) -> None:
    shutil.copy(SEED_000_FILE, tmp_path / "v2.toml")
    edited_copy(tmp_path, "version = 2\n", "version = 3\n", name="v3.toml")
    catalogue = load_catalogue(tmp_path)
    v2, v3 = catalogue.get("CS-RCSP-H", 2), catalogue.get("CS-RCSP-H")
    assert v2 is not None
    assert v3 is not None
    assert (v2.version, v3.version) == (2, 3)
    assert catalogue.versions("CS-RCSP-H") == (2, 3)
    assert catalogue.by_hash("CS-RCSP-H", v2.content_hash) == v2
    assert catalogue.by_hash("OCR-354", v2.content_hash) is None
    assert catalogue.get("CS-RCSP-H", 4) is None
    assert catalogue.get("OCR-354") is None
    assert catalogue.codes() == ("CS-RCSP-H",)


def test_catalogue_built_in_the_domain_also_refuses_a_duplicate(catalogue: SpecCatalogue) -> None:
    spec = catalogue.specs[0]
    with pytest.raises(SpecInvalid) as caught:
        SpecCatalogue((spec, spec))
    assert caught.value.field == "$[1]"


def test_catalogue_of_a_missing_directory_is_an_error_not_an_empty_catalogue(
    tmp_path: Path,
) -> None:
    with pytest.raises(NotADirectoryError):
        load_catalogue(tmp_path / "nowhere")


def test_catalogue_skips_the_seed_sources_beside_the_spec_files(catalogue: SpecCatalogue) -> None:
    assert len(catalogue.specs) == len(list(SPECS.glob("*.toml"))) == 5
