"""Versioned schemas for the tables the log cannot rebuild: tokens, keys and webhooks.

Views, the Merkle index and stream cursors are derived from the log and simply rebuilt; the
token, key and webhook stores hold what exists nowhere else, so their schemas move by
numbered steps. Step 1 of each store is the schema release 0.1 made, every statement
`IF NOT EXISTS`: a store that release made records no version, and starts with step 1 as a
no-op. A store records the version it reached — SQLite in the file's `PRAGMA user_version`
(each store is a file of its own), PostgreSQL in an `eportfolio_schema` table (a row per
store) in the application's schema. The pending steps and the new version commit in one
transaction (DDL is transactional in both), under a lock, so two processes starting at
once migrate once; a store newer than this code refuses to open rather than be misread.

Statements use `?` for parameters and `{name}` for the store's table names (and `{bytes}`
for the binary type), so one step serves both engines.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import psycopg
from psycopg import sql

from adapters.store.sql import PostgresTx, SqliteTx, Tx

if TYPE_CHECKING:
    from adapters.store.sql import Database


class Step(NamedTuple):
    version: int
    summary: str
    statements: tuple[str, ...] = ()
    run: Callable[[Tx], int] | None = None  # data changes, after the statements: rows changed


class Migrated(NamedTuple):
    was: int  # the version the store was at (0: new, or made by release 0.1)
    rewritten: int  # rows the data steps changed (their old bytes may need scrubbing)


class SchemaTooNew(RuntimeError):
    """The store was migrated by a newer release than this one."""


def _pending(store: str, steps: Sequence[Step], version: int) -> Sequence[Step]:
    numbers = [step.version for step in steps]
    if numbers != list(range(1, len(steps) + 1)):
        msg = f"the {store} store's steps are not numbered 1, 2, 3…: {numbers}"
        raise ValueError(msg)
    if version > len(steps):
        msg = (
            f"the {store} store is at schema version {version}, but this release knows "
            f"versions up to {len(steps)}: it was upgraded by a newer eportfolio; run that one"
        )
        raise SchemaTooNew(msg)
    return steps[version:]


def _apply(tx: Tx, pending: Sequence[Step]) -> int:
    rewritten = 0
    for step in pending:
        for statement in step.statements:
            tx.execute(statement)
        if step.run is not None:
            rewritten += step.run(tx)
    return rewritten


def migrate(db: Database, store: str, steps: Sequence[Step]) -> Migrated:
    """Bring a store's tables to the last step, on whichever engine `db` is."""
    with db.connection() as conn:
        if db.dialect == "sqlite":
            return migrate_sqlite(conn, store, steps, db.names)
        return migrate_postgres(conn, db.schema, store, steps, db.names)


def migrate_sqlite(
    conn: sqlite3.Connection, store: str, steps: Sequence[Step], names: Mapping[str, str]
) -> Migrated:
    """Bring a store's SQLite file to the last step.

    `conn` must be in autocommit mode (`isolation_level=None`): the steps run in one
    `BEGIN IMMEDIATE` transaction, which also keeps a second process out meanwhile.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        pending = _pending(store, steps, version)
        rewritten = _apply(SqliteTx(conn, names), pending)
        if pending:
            conn.execute(f"PRAGMA user_version = {len(steps):d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return Migrated(version, rewritten)


_VERSIONS = """CREATE TABLE IF NOT EXISTS {} (
    store text PRIMARY KEY, version integer NOT NULL, migrated_at timestamptz NOT NULL)"""


def migrate_postgres(
    conn: psycopg.Connection[Any],
    schema: str,
    store: str,
    steps: Sequence[Step],
    names: Mapping[str, str],
) -> Migrated:
    """Bring a store's PostgreSQL tables to the last step.

    A transaction-scoped advisory lock per schema serialises processes (and stores) that
    start together; the version row is written in the same transaction as the steps.
    """
    versions = sql.Identifier(schema, "eportfolio_schema")
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"eportfolio-schema:{schema}",),
        )
        conn.execute(sql.SQL(_VERSIONS).format(versions))
        row = conn.execute(
            sql.SQL("SELECT version FROM {} WHERE store = %s").format(versions), (store,)
        ).fetchone()
        version = 0 if row is None else int(row[0])
        pending = _pending(store, steps, version)
        rewritten = _apply(PostgresTx(conn, names), pending)
        if pending:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (store, version, migrated_at) VALUES (%s, %s, now()) "
                    "ON CONFLICT (store) DO UPDATE SET version = EXCLUDED.version, "
                    "migrated_at = EXCLUDED.migrated_at"
                ).format(versions),
                (store, len(steps)),
            )
    return Migrated(version, rewritten)
