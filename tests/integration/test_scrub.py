"""A view batch that deletes documents leaves none of their bytes on disk, even when
the database engine would rather keep them.

SQLite keeps deleted text in the slack of pages it rebuilt (even with `secure_delete`) and
in old WAL frames; PostgreSQL's `VACUUM FULL` keeps row versions that an older transaction
anywhere in the database might still see. Both are provoked here, then the file bytes are
searched.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from adapters.store.views import Doc, PostgresViewStore, SqliteViewStore
from tests.conftest import POSTGRES_URL
from tests.pg_files import table_files

NAME = b"Amira Khan"


def churn(store: SqliteViewStore | PostgresViewStore) -> list[tuple[str, str]]:
    """Documents that held the name, rewritten and deleted batch by batch, as a view does."""
    keys = [f"{i:05d}" for i in range(300)]
    position = store.position()
    for round_ in range(3):
        docs = [
            Doc("trail", key, "c", b"x" * (i * 7 % 3000) + NAME + b" %d/%d" % (i, round_))
            for i, key in enumerate(keys)
        ]
        store.write(position, position + 1, docs)
        position += 1
    redacted = [Doc("trail", key, "c", b"[erased]" * (i % 40)) for i, key in enumerate(keys[1::2])]
    store.write(position, position + 1, redacted, [("trail", key) for key in keys[::2]])
    return [("trail", key) for key in keys[1::2]]


def test_sqlite_keeps_no_byte_of_a_purged_document(tmp_path: Path) -> None:
    store = SqliteViewStore(tmp_path / "view-state.sqlite", "state")
    try:
        left = churn(store)
        assert all(NAME not in (store.get(*key) or b"") for key in left)
        on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("view-state.sqlite*"))
    finally:
        store.close()
    assert NAME not in on_disk


def purged_under_an_old_snapshot(schema: str) -> bytes:
    """The view table's files after a purge made while an older transaction was open."""
    store = PostgresViewStore({"POSTGRES_DBNAME": "test", "POSTGRES_SCHEMA": schema}, "state")
    with psycopg.connect(POSTGRES_URL) as old:  # older than the purge, as a report or backup
        old.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        old.execute("SELECT count(*) FROM pg_class").fetchone()
        try:
            churn(store)
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                return table_files(conn, schema, "state_docs")
        finally:
            store.close()
            old.rollback()


@pytest.mark.postgres
def test_postgres_keeps_no_byte_of_a_purged_document_under_an_old_snapshot(
    postgres_schema: str,
) -> None:
    on_disk = purged_under_an_old_snapshot(postgres_schema)
    assert on_disk
    assert NAME not in on_disk


@pytest.mark.postgres
def test_vacuum_full_would_keep_it_while_an_older_transaction_is_open(
    postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the scrub does not use VACUUM FULL: this is what it would leave."""

    def vacuum_full(self: PostgresViewStore) -> None:
        with self._pool.connection() as conn:
            conn.execute(sql.SQL("VACUUM FULL {}").format(self._docs))

    monkeypatch.setattr(PostgresViewStore, "scrub", vacuum_full)
    assert NAME in purged_under_an_old_snapshot(postgres_schema)


def test_the_churn_would_leave_the_name_without_the_scrub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above can fail: with the scrub a no-op, the name is found."""
    monkeypatch.setattr(SqliteViewStore, "scrub", lambda self: None)
    store = SqliteViewStore(tmp_path / "view-state.sqlite", "state")
    try:
        churn(store)
        on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("view-state.sqlite*"))
    finally:
        store.close()
    assert NAME in on_disk
