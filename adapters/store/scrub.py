"""Rewriting a store so that deleted or overwritten rows leave no byte on disk.

After an erasure (a destroyed key, purged view documents) the old bytes must be gone from
the files, not only unreachable by queries.

- SQLite: `VACUUM` copies the live rows into a fresh file (free pages, the slack that
  `secure_delete` leaves in rebuilt pages, all gone), then the WAL is checkpointed and
  truncated, so no old frame keeps them either.
- PostgreSQL: `VACUUM FULL` would copy "recently dead" row versions along whenever any
  transaction anywhere in the database is older than the delete, so instead the live rows
  are copied aside, the table is truncated (its files are replaced at commit whatever other
  snapshots there are) and the rows are put back, in one transaction under an exclusive
  lock. Readers wait for it; row triggers do not fire.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


def scrub_sqlite(conn: sqlite3.Connection, name: str, *, attempts: int = 50) -> bool:
    """VACUUM and truncate the WAL; False (logged) if readers kept the WAL from truncating."""
    conn.execute("VACUUM")
    for _ in range(attempts):
        if not conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
            return True
        time.sleep(0.02)
    log.warning("%s: readers kept the WAL from being truncated after a scrub", name)
    return False


def scrub_postgres(conn: psycopg.Connection[Any], table: sql.Identifier) -> None:
    """Rewrite `table` with only its live rows, new files replacing the old at commit."""
    keep = sql.Identifier("eportfolio_scrub")
    with conn.transaction():
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
        conn.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT * FROM {}").format(
                keep, table
            )
        )
        conn.execute(sql.SQL("TRUNCATE {}").format(table))
        conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(table, keep))
