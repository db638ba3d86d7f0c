"""The `eportfolio` command for people and for scripts: help everywhere, counts that say
what was left out, machine-readable output, and no checkpoint of a log that did not move."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from adapters.audit.signing import SigningKey, write_signing_key
from adapters.bootstrap import build
from adapters.cli.main import build_parser, main
from adapters.config import Config
from domain.events import EVENT_TYPES, CheckpointIssued
from service.checkpoints import checkpoints
from tests.audit_helpers import Audited
from tests.world import World


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, str | None]]:
    """(where, help) for every subcommand and every option or argument, depth first."""
    for action in parser._actions:  # argparse keeps them here; there is no public view
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield " ".join((*path, name)), helps.get(name)
                yield from _walk(sub, (*path, name))
            continue
        name = action.option_strings[-1] if action.option_strings else action.dest
        yield f"{' '.join(path)} {name}", action.help


def test_every_subcommand_and_option_says_what_it_is_for() -> None:
    walked = dict(_walk(build_parser()))
    assert {"events --json", "retention report --format", "checkpoint --every"} <= walked.keys()
    assert "tokens revoke token_id" in walked  # positionals too
    missing = sorted(where for where, text in walked.items() if not (text or "").strip())
    assert missing == []


@pytest.fixture
def cli_env(config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The CLI pointed, through its environment, at the test's store; a signing key made."""
    for name in ("EPORTFOLIO_DATABASE_URL", "EPORTFOLIO_KEK", "EPORTFOLIO_KEK_FILE"):
        monkeypatch.delenv(name, raising=False)
    config = msgspec.structs.replace(config, signing_key_file=tmp_path / "signing.key")
    write_signing_key(config.signing_key_path, SigningKey.generate())
    monkeypatch.setenv("EPORTFOLIO_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("EPORTFOLIO_SIGNING_KEY_FILE", str(config.signing_key_path))
    monkeypatch.setenv("EPORTFOLIO_KEK_FILE", str(config.kek_path))
    if config.database_url:
        monkeypatch.setenv("EPORTFOLIO_DATABASE_URL", config.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    return config


def _assessed(config: Config, portfolios: int = 1) -> Audited:
    centre = Audited(config, key=SigningKey.from_text(config.signing_key_path.read_text()))
    try:
        centre.assess(portfolios=portfolios)  # its decisions carry idempotency keys
    finally:
        centre.close()
    return centre


def _stored_topics(config: Config) -> list[str]:
    app = build(config)
    try:
        return [n.topic for n in app.ledger.notifications()]
    finally:
        app.ledger.close()


def test_events_says_how_many_it_showed_of_how_many_without_receipts(
    cli_env: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    _assessed(cli_env)
    stored = _stored_topics(cli_env)
    events = [topic for topic in stored if topic in EVENT_TYPES]
    assert len(events) < len(stored)  # receipts (and id claims) are in the log too
    capsys.readouterr()

    assert main(["events", "--json", "--limit", "3"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["shown"], first["total"], first["after"]) == (3, len(events), 0)
    assert [e["position"] for e in first["events"]] == sorted(
        e["position"] for e in first["events"]
    )
    assert first["next_after"] == first["events"][-1]["position"]
    assert main(["events", "--json", "--after", str(first["next_after"]), "--limit", "1000"]) == 0
    rest = json.loads(capsys.readouterr().out)
    assert (rest["shown"], rest["total"], rest["next_after"]) == (len(events) - 3,) * 2 + (None,)
    types = [e["type"] for e in first["events"] + rest["events"]]
    assert types == [topic.removeprefix("eportfolio.") for topic in events]
    assert "centre.registered" in types
    assert not any(t.startswith("service.") for t in types)

    assert main(["events", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert f"Showed 2 of {len(events)} events after position 0; more with --after" in out
    assert "receipt" not in out
    assert main(["events"]) == 0
    assert f"Showed {len(events)} of {len(events)} events after position 0\n" in (
        capsys.readouterr().out
    )


def test_retention_report_as_csv_and_json(
    cli_env: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build(cli_env)
    world = World(app)
    world.certified()
    app.ledger.close()
    capsys.readouterr()

    assert main(["retention", "report", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1
    row = rows[0]
    assert (row["learner_id"], row["centre_id"]) == (str(world.learner.id), str(world.centre_id))
    assert (row["learner"], row["status"]) == ("Lee Learner", "retained")
    assert row["until"] > row["since"]  # ISO dates, whole

    assert main(["retention", "report", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (learner,) = report["learners"]
    assert learner["learner_id"] == str(world.learner.id)
    assert (learner["status"], learner["until"]) == ("retained", row["until"])
    assert main(["retention", "report", "--format", "json", "--due"]) == 0
    assert json.loads(capsys.readouterr().out)["learners"] == []


def _checkpoints(config: Config) -> list[CheckpointIssued]:
    app = build(config)
    try:
        return checkpoints(app.ledger)
    finally:
        app.ledger.close()


def test_checkpoint_issues_none_when_the_log_has_not_moved(
    cli_env: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    _assessed(cli_env)
    capsys.readouterr()
    assert main(["checkpoint"]) == 0
    first = capsys.readouterr().out
    assert len(_checkpoints(cli_env)) == 1
    assert main(["checkpoint"]) == 0
    again = capsys.readouterr()
    assert again.out == first  # the same note, still fit to save as a trusted checkpoint
    assert "has not moved" in again.err
    assert len(_checkpoints(cli_env)) == 1

    _assessed(cli_env)
    assert main(["checkpoint"]) == 0
    moved = capsys.readouterr().out
    issued = _checkpoints(cli_env)
    assert len(issued) == 2
    assert moved == issued[-1].signed_note
    assert issued[-1].tree_size > issued[0].tree_size
