"""A bundle's summary pages, their portfolios' sections written in Python, are the bytes the
templates make: the demo centre (every kind of event it has) and random histories
(evidence mapped and withdrawn; decisions revoked, countersigned, sampled; a trainee
assessing; the learner erased), folded as an export folds them, rendered both ways."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.audit import bundle as b
from adapters.audit.bundle_summary import _specs
from adapters.audit.export import write_bundle
from adapters.audit.export_summary import ByCentre
from adapters.audit.merkle_index import open_merkle_index
from adapters.audit.pack.pack import bundle_context, render_with_sections
from adapters.audit.pack.render import render_pack
from adapters.audit.verify import verify_bundle
from adapters.bootstrap import build
from adapters.config import Config
from adapters.demo import load_demo
from domain import commands as c
from domain.events import Event
from service.checkpoints import Checkpointer, Reason, decoded
from service.erasure import erase_learner
from service.handlers import Eportfolio
from tests.audit_helpers import KEY
from tests.conftest import with_kek
from tests.histories import PORTFOLIO_ACTIONS, History
from tests.world import World

START = datetime(2026, 9, 1, 9, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def app(config: Config) -> Iterator[Eportfolio]:
    app = build(config, clock=Clock())
    yield app
    app.ledger.close()


def _same_both_ways(app: Eportfolio, config: Config) -> int:
    """Every page a whole-log export writes (a centre's), and each portfolio's own, rendered
    through the templates alone and with the sections written in Python: equal."""
    index = open_merkle_index(config)
    try:
        checkpoint = Checkpointer(app.ledger, index, KEY).issue(Reason.ON_DEMAND)
    finally:
        index.close()
    by_centre = ByCentre()
    events: list[tuple[int, Event]] = []
    try:
        for notification in app.ledger.notifications():
            event = decoded(app.ledger, notification)
            if isinstance(event, Event):
                by_centre.add(notification.id, event)
                events.append((notification.id, event))
        scopes = {f"centre {c}": list(by_centre.events(c)) for c in by_centre.names}
    finally:
        by_centre.close()
    for pid in {getattr(event, "portfolio_id", None) for _, event in events} - {None}:
        assert isinstance(pid, UUID)
        centre = by_centre.centre_of[pid]
        scopes[f"portfolio {pid}"] = [
            (p, event)
            for p, event in events
            if getattr(event, "portfolio_id", None) == pid
            or (getattr(event, "centre_id", None) == centre and not hasattr(event, "portfolio_id"))
        ]
    for scope, scoped in scopes.items():
        context = bundle_context(
            scoped, scope=scope, checkpoint=checkpoint, covered_up_to=events[-1][0],
            vkey=KEY.verifier.to_text(), specs=_specs(),
        )  # fmt: skip
        assert context["portfolios"], scope
        assert render_with_sections(context) == render_pack(context), scope
    return len(scopes)


def test_the_demo_centres_pages_are_the_templates_bytes(app: Eportfolio, config: Config) -> None:
    load_demo(app.ledger, app.specs)
    assert _same_both_ways(app, config) > 10


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    actions=st.lists(
        st.tuples(st.sampled_from(PORTFOLIO_ACTIONS), st.integers(0, 11)), min_size=8, max_size=30
    ),
    erase=st.booleans(),
)
def test_random_histories_pages_are_the_templates_bytes(
    app: Eportfolio, config: Config, actions: list[tuple[str, int]], erase: bool
) -> None:
    world = World(app)
    made = []
    for trainee in (False, True):
        assessor = world.trainee if trainee else world.assessor
        history = History(world, world.enrol(assessor=assessor), assessor)
        for action, n in actions:
            history.play(action, n)
        made.append(history.portfolio_id)
    if erase:
        world.centre_cmd(c.SetRetentionPolicy(records_years=0))
        for pid in made:
            app.execute(world.centre_admin, c.WithdrawLearner(reason="left"), target=pid)
        request = c.EraseLearner(learner_id=world.learner.id, reason="Art. 17 request")
        erase_learner(app, world.centre_admin, world.centre_id, request)
    assert _same_both_ways(app, config) >= 1


def test_pages_made_by_several_processes_are_the_same_bundle(
    app: Eportfolio, config: Config
) -> None:
    load_demo(app.ledger, app.specs)
    World(app)  # a second centre: two pages to share out
    index = open_merkle_index(config)
    try:
        Checkpointer(app.ledger, index, KEY).issue(Reason.ON_DEMAND)
        bundles = []
        for jobs in (1, 2):
            out = io.BytesIO()
            write_bundle(out, app.ledger, index, KEY, jobs=jobs)
            bundles.append(out.getvalue())
    finally:
        index.close()
    assert bundles[0] == bundles[1]
    pages = [name for name in b.read_zip(bundles[1]) if name.startswith("summary/")]
    assert len(pages) == 2
    assert verify_bundle(bundles[1]).verified


class _DiskFull(io.BytesIO):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > 50_000:
            raise OSError(28, "No space left on device")
        return super().write(data)


def test_a_write_to_the_bundle_that_fails_fails_the_export(app: Eportfolio, config: Config) -> None:
    load_demo(app.ledger, app.specs)
    index = open_merkle_index(config)
    try:
        Checkpointer(app.ledger, index, KEY).issue(Reason.ON_DEMAND)
        with pytest.raises(OSError, match="No space left"):
            write_bundle(_DiskFull(), app.ledger, index, KEY)
    finally:
        index.close()


_UNGUARDED = """
import io, sys
from pathlib import Path
from adapters.audit.export import write_bundle
from adapters.audit.merkle_index import open_merkle_index
from adapters.audit.signing import SigningKey
from adapters.bootstrap import build
from adapters.config import Config
config = Config(data_dir=Path(sys.argv[1]))
app = build(config)
index = open_merkle_index(config)
key = SigningKey.from_text(Path(sys.argv[2]).read_text())
out = io.BytesIO()
write_bundle(out, app.ledger, index, key, jobs=2)  # no __main__ guard: the workers fail
Path(sys.argv[3]).write_bytes(out.getvalue())
"""


def test_pages_are_made_in_process_when_the_page_processes_cannot_run(
    tmp_path: Path,
) -> None:
    """A program without multiprocessing's `__main__` guard: its page processes die at
    start, and the export still finishes, the same bundle, its pages made in process."""
    config = with_kek(Config(data_dir=tmp_path / "data"))
    app = build(config)
    index = open_merkle_index(config)
    try:
        load_demo(app.ledger, app.specs)
        World(app)
        Checkpointer(app.ledger, index, KEY).issue(Reason.ON_DEMAND)
        expected = io.BytesIO()
        write_bundle(expected, app.ledger, index, KEY, jobs=1)
    finally:
        index.close()
        app.ledger.close()
    (tmp_path / "key").write_text(KEY.to_text())
    (tmp_path / "unguarded.py").write_text(_UNGUARDED)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "unguarded.py"), str(config.data_dir),
         str(tmp_path / "key"), str(tmp_path / "out.zip")],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "making the remaining pages here" in done.stderr
    assert (tmp_path / "out.zip").read_bytes() == expected.getvalue()
