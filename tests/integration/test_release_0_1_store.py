"""A store written by release 0.1 (tests/fixtures/release-0.1) still reads: every stored
event decodes and folds, and its portfolios are judged by the corrected unit specs, which
say so. Release 0.1 read knowledge inference per unit and counted a requirement tag alone;
its portfolios now show exactly what those readings had let through."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.bootstrap import build, build_projections
from adapters.config import Config
from domain.events import Event, LearnerEnrolled
from service.handlers import Eportfolio
from service.queries import Queries
from tests.conftest import with_kek

FIXTURE = Path(__file__).parents[1] / "fixtures" / "release-0.1" / "data"
DEMO_CENTRE = "f38b2ffc-80a4-4f5a-91c9-bc701e7ea419"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A copy of the old data directory (never the fixture itself: opening it writes)."""
    shutil.copytree(FIXTURE, tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def old_store(data: Path) -> Eportfolio:
    return build(with_kek(Config(data_dir=data)))


def test_every_event_release_0_1_stored_decodes(old_store: Eportfolio) -> None:
    ledger = old_store.ledger
    decoded = [ledger.decode(n).event for n in ledger.notifications()]
    assert len(decoded) == 224
    assert all(isinstance(event, Event) for event in decoded)
    ledger.close()


def test_its_portfolios_fold_and_are_judged_by_the_corrected_specs_which_say_why(
    old_store: Eportfolio,
) -> None:
    queries = Queries(old_store)
    enrolments = list(old_store.ledger.enrolments())
    assert len(enrolments) == 18
    incomplete = 0
    for enrolment in enrolments:
        portfolio = old_store.portfolio(enrolment.portfolio_id)
        spec = old_store.spec_of(portfolio)
        correction = spec.corrects_hash(portfolio.spec_hash)
        assert (portfolio.spec_version, spec.version, correction is not None) == (1, 2, True)
        report = queries.coverage(enrolment.portfolio_id)
        assert report.spec_note.startswith(f"Enrolled on {spec.code} v1; judged by v2")
        incomplete += not report.complete
        for gap in report.gaps:
            assert gap  # every gap is a sentence naming what is missing
    assert incomplete == 18 - _still_complete(queries, enrolments)
    old_store.ledger.close()


def _still_complete(queries: Queries, enrolments: list[LearnerEnrolled]) -> int:
    return sum(queries.coverage(e.portfolio_id).complete for e in enrolments)


def test_a_requirement_tag_alone_no_longer_makes_an_old_portfolio_complete(
    old_store: Eportfolio,
) -> None:
    """The old demo tagged requirements but never decided them: those portfolios have gaps
    that name the requirement and the missing decision."""
    queries = Queries(old_store)
    with_requirements = [
        e for e in old_store.ledger.enrolments() if e.unit_code in ("OCR-354", "CS-RCSP-W")
    ]
    gaps = [g for e in with_requirements for g in queries.coverage(e.portfolio_id).gaps]
    assert any(g.startswith("Requirement ") and "no assessment decision yet" in g for g in gaps)
    old_store.ledger.close()


def test_the_views_rebuild_from_the_old_log_and_agree_with_the_fold(
    old_store: Eportfolio, data: Path
) -> None:
    projections = build_projections(with_kek(Config(data_dir=data)), old_store)
    [runner] = projections
    runner.rebuild()
    stored, folded = Queries(old_store, runner.store), Queries(old_store)
    centres = set()
    for enrolment in old_store.ledger.enrolments():
        pid = enrolment.portfolio_id
        assert stored.coverage(pid) == folded.coverage(pid)
        assert stored.sufficiency(pid) == folded.sufficiency(pid)
        centres.add(str(enrolment.centre_id))
    assert centres == {DEMO_CENTRE}
    projections.close()
    old_store.ledger.close()
