"""Upgrading a store made by release 0.1: tokens, keys and webhooks move by versioned steps.

The fixture `tests/fixtures/release-0.1/` is what that release wrote (its README says how);
each test works on a copy. After the upgrade the same tokens authenticate, every personal
field of the log reads as before, each store records its schema version, every subject key
is wrapped under the KEK (no unwrapped key left in any byte of the files) and webhook
secrets are sealed. PostgreSQL gets the same store through release 0.1's own DDL.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from adapters.audit.verify import verify_bundle
from adapters.bootstrap import build
from adapters.config import Config
from adapters.store import subject_keys, tokens
from adapters.store.kek import KekError, load_ring
from adapters.store.migrations import SchemaTooNew
from adapters.store.subject_keys import open_subject_keys
from adapters.store.tokens import open_token_store
from adapters.streams import webhook_store
from adapters.streams.webhook_store import Registration, open_webhook_store
from domain.events import Role
from service.ledger import Ledger
from tests.conftest import POSTGRES_URL, with_kek
from tests.pg_files import table_files

FIXTURE = Path(__file__).parents[1] / "fixtures" / "release-0.1"
CENTRE = UUID("f38b2ffc-80a4-4f5a-91c9-bc701e7ea419")
AMIRA = UUID("de0279e1-7f9a-4098-8df0-5f2595f19a51")
LEARNER_TOKEN = "ep_eafMdNUwVCqmiXIRoqJgWhtdHys4NuAh2rEmJ6-1mFA"
INTEGRATOR_TOKEN = "ep_oOSamW5mk_FvP-k5UMHJ_n6KCRMzd7Wg8sW1YRqV22U"
SECRET = "whsec_" + "A" * 43 + "="


def fixture_rows(name: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of a fixture file, read without writing a byte (not even a -wal file)."""
    uri = f"file:{FIXTURE / 'data' / name}?mode=ro&immutable=1"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        return list(conn.execute(query).fetchall())


def raw_keys() -> list[bytes]:
    rows = fixture_rows("keys.sqlite", "SELECT key FROM subject_keys WHERE key IS NOT NULL")
    assert len(rows) == 19
    return [bytes(key) for (key,) in rows]


def old_registration(webhook_id: UUID) -> tuple[str, str, bytes, int, str, str]:
    """A webhook row exactly as release 0.1 wrote it: the secret inside the document."""
    registration = Registration(
        owner_id=uuid4(),
        url="https://mis.example/hook",
        secret=SECRET,
        created_at=datetime.now(UTC),
    )
    doc = msgspec.json.encode(registration)
    return (str(webhook_id), str(registration.owner_id), doc, 0, "active", "")


@pytest.fixture
def release_01(tmp_path: Path) -> Config:
    """A copy of the 0.1 data directory, with a webhook registered as 0.1 stored it."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURE / "data", data)
    with closing(sqlite3.connect(data / "webhooks.sqlite")) as conn, conn:
        conn.execute("INSERT INTO webhooks VALUES (?, ?, ?, ?, ?, ?)", old_registration(uuid4()))
    return with_kek(Config(data_dir=data))


def versions(data: Path) -> dict[str, int]:
    found = {}
    for name in ("keys", "tokens", "webhooks"):
        with closing(sqlite3.connect(data / f"{name}.sqlite")) as conn:
            found[name] = int(conn.execute("PRAGMA user_version").fetchone()[0])
    return found


def reads_as_before(config: Config) -> None:
    """The upgraded store answers as release 0.1's did: names, tokens and webhooks."""
    app = build(config)
    try:
        assert app.centre(CENTRE).learners[AMIRA] == "Amira Khan"
    finally:
        app.ledger.close()
    store = open_token_store(config)
    try:
        learner, integrator = store.find(LEARNER_TOKEN), store.find(INTEGRATOR_TOKEN)
        assert learner is not None
        assert (learner.subject_id, learner.role) == (AMIRA, Role.LEARNER)
        assert learner.expires_at is None  # issued before tokens expired: listed as "never"
        assert integrator is not None
        assert integrator.role is Role.INTEGRATOR
    finally:
        store.close()
    hooks = open_webhook_store(config)
    try:
        assert [s.registration.secret for s in hooks.subscriptions()] == [SECRET]
    finally:
        hooks.close()


def test_a_sqlite_store_made_by_release_0_1_upgrades_and_reads_as_before(
    release_01: Config,
) -> None:
    data = release_01.data_dir
    assert versions(data) == {"keys": 0, "tokens": 0, "webhooks": 0}  # 0.1 kept none
    assert all(key in (data / "keys.sqlite").read_bytes() for key in raw_keys())
    reads_as_before(release_01)
    latest = {
        "keys": len(subject_keys.steps(load_ring(release_01))),
        "tokens": len(tokens.STEPS),
        "webhooks": len(webhook_store.steps(load_ring(release_01))),
    }
    assert versions(data) == latest
    columns = fixture_rows("keys.sqlite", "SELECT name FROM pragma_table_info('subject_keys')")
    assert ("key",) in columns  # the fixture's own, untouched
    with closing(sqlite3.connect(data / "keys.sqlite")) as conn:
        now = {
            name for (name,) in conn.execute("SELECT name FROM pragma_table_info('subject_keys')")
        }
    assert "key" not in now
    for path in data.glob("*.sqlite*"):
        stored = path.read_bytes()
        assert not [key for key in raw_keys() if key in stored], f"an unwrapped key in {path}"
        assert SECRET.encode() not in stored, f"a webhook secret in clear in {path}"
    reads_as_before(release_01)  # a second opening migrates nothing and reads the same
    assert versions(data) == latest


def test_the_upgraded_key_store_opens_nothing_without_its_kek(
    release_01: Config, tmp_path: Path
) -> None:
    open_subject_keys(release_01).close()  # upgrade: every key wrapped
    stolen = with_kek(Config(data_dir=release_01.data_dir), tmp_path / "another.kek")
    with pytest.raises(KekError, match="does not hold"):
        open_subject_keys(stolen)


def test_release_0_1_keys_are_not_wrapped_without_a_kek(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE / "data", tmp_path / "data")
    with pytest.raises(KekError, match=r"no key-encryption key at .*generate-kek"):
        open_subject_keys(Config(data_dir=tmp_path / "data"))
    assert versions(tmp_path / "data")["keys"] == 0  # nothing half-done


def test_a_store_migrated_by_a_newer_release_refuses_to_open(release_01: Config) -> None:
    open_token_store(release_01).close()
    with closing(sqlite3.connect(release_01.data_dir / "tokens.sqlite")) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaTooNew, match=r"version 99.*knows versions up to"):
        open_token_store(release_01)


# ---- PostgreSQL: the same store, made by release 0.1's DDL ------------------------------

RELEASE_01_DDL = [  # exactly what release 0.1 ran on PostgreSQL
    """CREATE TABLE IF NOT EXISTS {s}.api_tokens (
    token_hash TEXT PRIMARY KEY, token_id TEXT NOT NULL UNIQUE, subject_id TEXT NOT NULL,
    role TEXT NOT NULL, centre_id TEXT, label TEXT NOT NULL, created_at TEXT NOT NULL,
    revoked_at TEXT, idem_key TEXT UNIQUE, idem_fingerprint TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS {s}.subject_keys (
    subject_id TEXT PRIMARY KEY, key BYTEA, created_at TEXT NOT NULL, destroyed_at TEXT)""",
    "CREATE TABLE IF NOT EXISTS {s}.eportfolio_webhooks (id text PRIMARY KEY, "
    "owner_id text NOT NULL, doc bytea NOT NULL, position bigint NOT NULL, "
    "status text NOT NULL, status_reason text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}.eportfolio_webhook_attempts (seq bigserial PRIMARY KEY, "
    "webhook_id text NOT NULL, doc bytea NOT NULL)",
    "CREATE INDEX IF NOT EXISTS eportfolio_webhook_attempts_by_webhook "
    "ON {s}.eportfolio_webhook_attempts (webhook_id, seq)",
]


def copy_fixture_to(config: Config, schema: str) -> None:
    """The fixture's log, tokens, keys and a 0.1 webhook, in 0.1's PostgreSQL tables."""
    ledger = Ledger(env=config.eventsourcing_env())  # makes the log's tables; no key store
    try:
        stored = fixture_rows(
            "eportfolio.sqlite",
            "SELECT originator_id, originator_version, topic, state FROM stored_events "
            "ORDER BY rowid",
        )
        ledger.recorder.insert_events(
            [StoredEvent(UUID(o), v, t, bytes(s)) for o, v, t, s in stored]
        )
    finally:
        ledger.close()
    s = f'"{schema}"'
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn, conn.transaction():
        for statement in RELEASE_01_DDL:
            conn.execute(statement.replace("{s}", s).encode())
        tokens_rows = fixture_rows("tokens.sqlite", "SELECT * FROM api_tokens")
        conn.cursor().executemany(
            f"INSERT INTO {s}.api_tokens VALUES ({', '.join(['%s'] * 10)})".encode(), tokens_rows
        )
        keys_rows = fixture_rows("keys.sqlite", "SELECT * FROM subject_keys")
        conn.cursor().executemany(
            f"INSERT INTO {s}.subject_keys VALUES (%s, %s, %s, %s)".encode(), keys_rows
        )
        conn.execute(
            f"INSERT INTO {s}.eportfolio_webhooks VALUES (%s, %s, %s, %s, %s, %s)".encode(),
            old_registration(uuid4()),
        )


@pytest.fixture
def postgres_01(postgres_schema: str, tmp_path: Path) -> Config:
    config = Config(database_url=f"{POSTGRES_URL}?schema={postgres_schema}")
    copy_fixture_to(config, postgres_schema)
    return with_kek(config, tmp_path / "kek")


@pytest.mark.postgres
def test_a_postgres_store_made_by_the_release_0_1_schema_upgrades_and_reads_as_before(
    postgres_01: Config, postgres_schema: str
) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        before = table_files(conn, postgres_schema, "subject_keys")
    assert all(key in before for key in raw_keys())  # the scan sees them while they are there
    reads_as_before(postgres_01)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        recorded: dict[str, int] = dict(
            conn.execute(f'SELECT store, version FROM "{postgres_schema}".eportfolio_schema')
        )
        columns = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'subject_keys'",
                (postgres_schema,),
            )
        }
        on_disk = {
            table: table_files(conn, postgres_schema, table)
            for table in ("subject_keys", "eportfolio_webhooks")
        }
    ring = load_ring(postgres_01)
    assert recorded == {
        "subject_keys": len(subject_keys.steps(ring)),
        "tokens": len(tokens.STEPS),
        "webhooks": len(webhook_store.steps(ring)),
    }
    assert "key" not in columns
    assert not [key for key in raw_keys() if key in on_disk["subject_keys"]]
    assert SECRET.encode() not in on_disk["eportfolio_webhooks"]
    reads_as_before(postgres_01)


@pytest.mark.postgres
def test_processes_starting_together_migrate_a_postgres_store_once(
    postgres_schema: str, tmp_path: Path
) -> None:
    config = with_kek(
        Config(database_url=f"{POSTGRES_URL}?schema={postgres_schema}"), tmp_path / "kek"
    )
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_token_store(config).close()
            open_subject_keys(config).close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        (kek_rows,) = conn.execute(
            f'SELECT count(*) FROM "{postgres_schema}".subject_keys_kek'
        ).fetchone() or (0,)
    assert kek_rows == 1


@pytest.mark.parametrize("bundle", ["full.zip", "portfolio.zip"])
def test_bundles_exported_by_release_0_1_still_verify(bundle: str) -> None:
    report = verify_bundle((FIXTURE / bundle).read_bytes())
    assert report.verified, report.lines()
    assert not [line for line in report.checked if "attachments" in line]  # none were asked for
