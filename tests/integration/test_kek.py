"""The key-encryption key: what a stolen key store reveals (nothing) and how a KEK rotates.

Every subject key is stored wrapped under the KEK, which lives outside the store. A copy of
the store opens nothing; `eportfolio keys rotate-kek` rewraps every key and webhook secret
under a new KEK without writing to the log, after which the old KEK opens nothing; a
process that read the KEK before the rotation still wraps new keys under the new one.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import psycopg
import pytest

from adapters.bootstrap import build
from adapters.cli.main import main
from adapters.config import Config, Secret
from adapters.store.kek import KekError, encode_ring, generate, kek_id, load_ring, parse_ring
from adapters.store.subject_keys import key_aad, open_subject_keys
from adapters.streams.webhook_store import Registration, Subscription, open_webhook_store
from domain.events import LearnerRegistered
from service.handlers import Eportfolio
from tests.conftest import POSTGRES_URL
from tests.pg_files import table_files
from tests.world import World


def schema_of(config: Config) -> str:
    return (config.database_url or "").split("schema=")[1]


def key_rows(config: Config) -> list[tuple[str, bytes, str]]:
    """(subject, wrapped key, KEK id) of every live key, read from the store's own table."""
    query = "SELECT subject_id, wrapped_key, kek_id FROM {} WHERE wrapped_key IS NOT NULL"
    if not config.uses_postgres:
        with closing(sqlite3.connect(config.data_dir / "keys.sqlite")) as conn:
            rows = conn.execute(query.format("subject_keys")).fetchall()
    else:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            table = f'"{schema_of(config)}".subject_keys'
            rows = conn.execute(query.format(table).encode()).fetchall()
    return [(str(s), bytes(w), str(k)) for s, w, k in rows]


def store_bytes(config: Config) -> bytes:
    """Everything the key store holds on disk."""
    if not config.uses_postgres:
        return b"".join(p.read_bytes() for p in sorted(config.data_dir.glob("keys.sqlite*")))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        return table_files(conn, schema_of(config), "subject_keys")


def log_rows(app: Eportfolio) -> list[tuple[int, bytes]]:
    return [(n.id, n.state) for n in app.ledger.notifications()]


def names(app: Eportfolio, centre_id: UUID) -> list[str]:
    return [e.name for e in app.ledger.centre_events(centre_id) if isinstance(e, LearnerRegistered)]


@pytest.fixture
def cli_env(config: Config, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The CLI configured by environment, as an operator runs it, on the test's store."""
    monkeypatch.setenv("EPORTFOLIO_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("EPORTFOLIO_KEK_FILE", str(config.kek_path))
    monkeypatch.delenv("EPORTFOLIO_KEK", raising=False)
    if config.database_url:
        monkeypatch.setenv("EPORTFOLIO_DATABASE_URL", config.database_url)
    else:
        monkeypatch.delenv("EPORTFOLIO_DATABASE_URL", raising=False)
    return config


def said(capsys: pytest.CaptureFixture[str]) -> str:
    """What the CLI printed (errors go to stderr), its line wrapping undone."""
    printed = capsys.readouterr()
    return " ".join((printed.out + printed.err).split())


@pytest.fixture
def written(app: Eportfolio) -> World:
    world = World(app)
    world.submit(world.enrol())
    return world


def test_a_copy_of_the_key_store_alone_reveals_no_key(
    config: Config, written: World, tmp_path: Path
) -> None:
    ring = load_ring(config)
    rows = key_rows(config)
    assert len(rows) >= 5  # the learner and every member of staff have a key
    keys = [ring.unwrap(kek, wrapped, key_aad(subject)) for subject, wrapped, kek in rows]
    on_disk = store_bytes(config)
    assert [wrapped for _, wrapped, _ in rows if wrapped in on_disk]  # the scan sees rows
    assert not [key for key in keys if key in on_disk], "an unwrapped key is in the key store"
    if not config.uses_postgres:
        copy = tmp_path / "stolen"
        copy.mkdir()
        for path in config.data_dir.glob("keys.sqlite*"):
            shutil.copy(path, copy / path.name)
        thief = Config(data_dir=copy, kek=Secret(encode_ring([generate()])))
        with pytest.raises(KekError, match=f"wrapped under KEK {ring.newest}"):
            open_subject_keys(thief)


def test_rotate_kek_rewraps_every_key_and_secret_and_leaves_the_log_alone(
    cli_env: Config, written: World, capsys: pytest.CaptureFixture[str]
) -> None:
    config, app = cli_env, written.app
    webhooks = open_webhook_store(config)
    registration = Registration(
        owner_id=uuid4(), url="https://mis.example/hook", secret="whsec_c2VjcmV0", created_at=NOW
    )
    webhooks.add(Subscription(id=uuid4(), registration=registration, position=0))
    webhooks.close()
    before, read = log_rows(app), names(app, written.centre_id)
    old = parse_ring(config.kek_path.read_text(), "kek")
    log_file = config.data_dir / "eportfolio.sqlite"
    app.ledger.close()
    digest = None if config.uses_postgres else hashlib.sha256(log_file.read_bytes()).digest()

    assert main(["keys", "rotate-kek"]) == 0
    out = said(capsys)
    assert "subject keys and 1 webhook and LRS secrets" in out
    assert "the log was not touched" in out
    new = parse_ring(config.kek_path.read_text(), "kek")
    assert len(new) == 1
    assert new != old
    assert {kek for _, _, kek in key_rows(config)} == {kek_id(new[0])}
    if digest is not None:
        assert hashlib.sha256(log_file.read_bytes()).digest() == digest
    with pytest.raises(KekError, match="does not hold"):  # the old KEK opens nothing now
        open_subject_keys(msgspec.structs.replace(config, kek=Secret(encode_ring(old))))
    again = build(config)
    try:
        assert log_rows(again) == before
        assert names(again, written.centre_id) == read
    finally:
        again.ledger.close()
    webhooks = open_webhook_store(config)
    try:
        assert [s.registration.secret for s in webhooks.subscriptions()] == ["whsec_c2VjcmV0"]
    finally:
        webhooks.close()


def test_a_rotation_with_the_kek_in_the_environment_names_the_key_to_remove(
    cli_env: Config,
    written: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, new = parse_ring(cli_env.kek_path.read_text(), "kek")[0], generate()
    written.app.ledger.close()
    monkeypatch.setenv("EPORTFOLIO_KEK", encode_ring([new, old]))
    assert main(["keys", "rotate-kek"]) == 0
    assert f"Nothing uses {kek_id(old)} any more: remove it" in said(capsys)
    only_new = msgspec.structs.replace(cli_env, kek=Secret(encode_ring([new])))
    app = build(only_new)
    try:
        assert names(app, written.centre_id) == ["Lee Learner"]
    finally:
        app.ledger.close()
    monkeypatch.setenv("EPORTFOLIO_KEK", encode_ring([new]))
    assert main(["keys", "rotate-kek"]) == 0
    assert "put a new KEK first in EPORTFOLIO_KEK" in said(capsys)


def test_a_process_that_read_the_kek_before_a_rotation_wraps_new_keys_under_the_new_one(
    cli_env: Config, written: World
) -> None:
    running = open_subject_keys(cli_env)  # a server: it read the KEK file at start
    try:
        running.seal(uuid4(), b"warm-up", b"aad")
        assert main(["keys", "rotate-kek"]) == 0  # the old KEK is gone from the file now
        newcomer = uuid4()
        sealed = running.seal(newcomer, b"Nia Newcomer", b"aad")
    finally:
        running.close()
    current = kek_id(parse_ring(cli_env.kek_path.read_text(), "kek")[0])
    assert {kek for _, _, kek in key_rows(cli_env)} == {current}
    fresh = open_subject_keys(cli_env)
    try:
        assert fresh.open(newcomer, sealed, b"aad") == b"Nia Newcomer"
    finally:
        fresh.close()


def test_a_destroyed_key_can_be_neither_overwritten_nor_deleted(config: Config) -> None:
    store = open_subject_keys(config)
    subject = uuid4()
    try:
        store.seal(subject, b"Lee Learner", b"aad")
        assert store.destroy(subject)
    finally:
        store.close()
    attempts = [
        ("UPDATE {} SET wrapped_key = ?, destroyed_at = NULL WHERE subject_id = ?", (b"k" * 60,)),
        ("DELETE FROM {} WHERE subject_id = ?", ()),
    ]
    for statement, params in attempts:
        if not config.uses_postgres:
            with (
                closing(sqlite3.connect(config.data_dir / "keys.sqlite")) as conn,
                pytest.raises(sqlite3.IntegrityError, match="a destroyed key is permanent"),
            ):
                conn.execute(statement.format("subject_keys"), (*params, str(subject)))
            continue
        with psycopg.connect(POSTGRES_URL, autocommit=True) as pg:
            table = f'"{schema_of(config)}".subject_keys'
            query: Any = statement.format(table).replace("?", "%s").encode()
            with pytest.raises(psycopg.errors.RaiseException, match="a destroyed key is permanent"):
                pg.execute(query, (*params, str(subject)))


def test_without_a_kek_the_cli_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EPORTFOLIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EPORTFOLIO_DATABASE_URL", raising=False)
    monkeypatch.delenv("EPORTFOLIO_KEK", raising=False)
    monkeypatch.delenv("EPORTFOLIO_KEK_FILE", raising=False)
    assert main(["serve", "--port", "1"]) == 2
    out = said(capsys)
    assert f"no key-encryption key at {tmp_path / 'data.kek'}" in out
    assert "eportfolio keys generate-kek" in out
    assert main(["keys", "generate-kek"]) == 0
    assert (tmp_path / "data.kek").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "data").exists() or not list((tmp_path / "data").glob("*.kek"))


NOW = datetime(2026, 12, 1, tzinfo=UTC)
