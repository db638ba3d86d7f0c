"""Retention: one pure answer for the erasure rule and the report; the report's CLI."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from adapters.bootstrap import build
from adapters.cli import main as cli
from adapters.config import Config
from domain import commands as c
from domain.events import HoldReason
from domain.retention import Status, add_years, retention_of
from tests.conftest import with_kek
from tests.world import World


def test_the_clock_starts_at_the_last_closure_and_holds_trump_it(tmp_path: Path) -> None:
    app = build(with_kek(Config(data_dir=tmp_path)))
    world = World(app)
    today = date.today()
    status = retention_of(app.centre(world.centre_id), world.learner.id, [], today)
    assert status.status is Status.DUE  # registered, never assessed: nothing to keep
    first, second = world.complete(), world.enrol()
    world.app.execute(world.centre_admin, c.CertifyUnit(), target=first)
    portfolios = [app.portfolio(first), app.portfolio(second)]
    status = retention_of(app.centre(world.centre_id), world.learner.id, portfolios, today)
    assert status.status is Status.IN_PROGRESS
    week_ago = today - timedelta(days=7)
    world.app.execute(world.centre_admin, c.WithdrawLearner(effective_on=week_ago), target=second)
    portfolios = [app.portfolio(first), app.portfolio(second)]
    status = retention_of(app.centre(world.centre_id), world.learner.id, portfolios, today)
    assert (status.status, status.since, status.until) == (
        Status.RETAINED,
        today,
        add_years(today, 3),
    )
    later = retention_of(
        app.centre(world.centre_id), world.learner.id, portfolios, add_years(today, 3)
    )
    assert later.status is Status.DUE
    hold = c.PlaceLegalHold(
        hold_id=uuid4(), learner_id=world.learner.id, reason=HoldReason.MALPRACTICE
    )
    world.centre_cmd(hold)
    held = retention_of(
        app.centre(world.centre_id), world.learner.id, portfolios, add_years(today, 3)
    )
    assert held.status is Status.HELD
    assert "malpractice" in held.why
    app.ledger.close()


def test_a_29_february_clock_ends_on_28_february() -> None:
    assert add_years(date(2028, 2, 29), 3) == date(2031, 2, 28)


def test_the_report_lists_who_is_due_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build(with_kek(Config(data_dir=tmp_path)))
    world = World(app)
    world.certified()
    app.ledger.close()
    monkeypatch.setenv("EPORTFOLIO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    assert cli.main(["retention", "report"]) == 0
    out = capsys.readouterr().out
    assert "Lee Learner" in out
    assert "retained" in out
    assert "0 of 1 learners due" in out
    on = add_years(date.today(), 3).isoformat()
    assert cli.main(["retention", "report", "--due", "--on", on]) == 0
    assert "1 of 1 learners due" in capsys.readouterr().out
