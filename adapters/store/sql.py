"""The small SQL stores' one connection layer: SQLite or PostgreSQL behind the same calls.

The token, key and webhook stores hold what exists nowhere else (they are not rebuilt from
the log), and each used to open, lock, pool, migrate and scrub its tables in its own copy of
the same code. Here it is once. A store writes every query once, with `?` for parameters and
`{name}` for its table names; `Database.execute` renders the names for the engine (bare on
SQLite, schema-qualified identifiers on PostgreSQL) and `?` becomes `%s` for psycopg.

- SQLite: one file per store, one connection in autocommit mode, used under a lock (these
  stores are light and their writes must not interleave); WAL; optionally `secure_delete`
  so freed pages are zeroed. A transaction is `BEGIN IMMEDIATE … COMMIT`.
- PostgreSQL: tables in the application's schema, a small autocommit pool; a transaction is
  one pooled connection's `transaction()`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from adapters.store.files import private_file
from adapters.store.scrub import scrub_postgres, scrub_sqlite


def postgres_conninfo(env: Mapping[str, str]) -> str:
    """A libpq connection string from eventsourcing's POSTGRES_* settings."""
    params = {
        "dbname": env.get("POSTGRES_DBNAME", "postgres"),
        "host": env.get("POSTGRES_HOST", "127.0.0.1"),
        "port": env.get("POSTGRES_PORT", "5432"),
        "user": env.get("POSTGRES_USER", "postgres"),
    }
    if env.get("POSTGRES_PASSWORD"):
        params["password"] = env["POSTGRES_PASSWORD"]
    return make_conninfo(**params)


Rows = list[tuple[Any, ...]]
Dialect = Literal["sqlite", "postgres"]


def render(query: str, names: Mapping[str, str]) -> str:
    """`{name}` replaced by its value; other braces are left alone (no str.format)."""
    for name, value in names.items():
        query = query.replace("{" + name + "}", value)
    return query


class Tx(Protocol):
    """A statement runner inside one transaction (or one autocommit statement)."""

    dialect: Dialect

    def execute(self, query: str, params: Sequence[object] = ()) -> Rows: ...

    def count(self, query: str, params: Sequence[object] = ()) -> int:
        """Rows the statement changed."""
        ...


class SqliteTx:
    dialect: Dialect = "sqlite"
    schema = "main"

    def __init__(self, conn: sqlite3.Connection, names: Mapping[str, str]) -> None:
        self.conn, self.names = conn, {"bytes": "BLOB", "share": "", **names}

    def execute(self, query: str, params: Sequence[object] = ()) -> Rows:
        return list(self.conn.execute(render(query, self.names), tuple(params)).fetchall())

    def count(self, query: str, params: Sequence[object] = ()) -> int:
        return self.conn.execute(render(query, self.names), tuple(params)).rowcount


class PostgresTx:
    dialect: Dialect = "postgres"

    def __init__(self, conn: psycopg.Connection[Any], names: Mapping[str, str]) -> None:
        self.conn, self.names = conn, {"bytes": "BYTEA", "share": " FOR SHARE", **names}

    def _run(self, query: str, params: Sequence[object]) -> psycopg.Cursor[Any]:
        text = render(query, self.names)
        if not params:
            return self.conn.execute(text.encode())
        return self.conn.execute(text.replace("?", "%s").encode(), tuple(params))

    def execute(self, query: str, params: Sequence[object] = ()) -> Rows:
        cursor = self._run(query, params)
        return list(cursor.fetchall()) if cursor.description else []

    def count(self, query: str, params: Sequence[object] = ()) -> int:
        return int(self._run(query, params).rowcount)


class Database(Protocol):
    """One store's tables on one engine."""

    dialect: Dialect
    schema: str  # PostgreSQL's schema; "main" on SQLite

    @property
    def names(self) -> Mapping[str, str]:
        """What `{name}` in a query stands for."""
        ...

    def execute(self, query: str, params: Sequence[object] = ()) -> Rows:
        """One statement, committed on its own."""
        ...

    def transaction(self) -> AbstractContextManager[Tx]:
        """Statements that commit together or not at all."""
        ...

    def connection(self) -> AbstractContextManager[Any]:
        """The engine's own connection, held alone (for migrations)."""
        ...

    def scrub(self, table: str) -> None:
        """Old bytes of deleted or overwritten rows gone from the files (see `scrub`)."""
        ...

    def close(self) -> None: ...


class SqliteDatabase:
    """A store's own SQLite file: one autocommit connection, used under a lock."""

    dialect: Dialect = "sqlite"
    schema = "main"

    def __init__(
        self,
        path: Path,
        names: Mapping[str, str],
        *,
        label: str,
        timeout: float = 5.0,
        secure_delete: bool = False,
    ) -> None:
        self.names = dict(names)
        self.label = label
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            private_file(path), timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            if secure_delete:
                self._conn.execute("PRAGMA secure_delete = ON")  # freed bytes are zeroed
        except BaseException:
            self._conn.close()
            raise

    def execute(self, query: str, params: Sequence[object] = ()) -> Rows:
        with self._lock:
            return SqliteTx(self._conn, self.names).execute(query, params)

    def execute_unless_busy(self, query: str, params: Sequence[object] = ()) -> Rows | None:
        """`execute`, or None at once if another thread is using the connection (a write
        may be waiting on the disk or on another process's lock): for a caller on an event
        loop, which must not wait, and has somewhere else to go."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return SqliteTx(self._conn, self.names).execute(query, params)
        finally:
            self._lock.release()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTx(self._conn, self.names)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def scrub(self, table: str) -> None:
        with self._lock:
            scrub_sqlite(self._conn, self.label)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresDatabase:
    """A store's tables in the application's schema, over a small autocommit pool.

    `tables` are named bare and qualified with the schema here; `names` are rendered as given
    (types, index and trigger names).
    """

    dialect: Dialect = "postgres"

    def __init__(
        self,
        env: Mapping[str, str],
        tables: Mapping[str, str],
        names: Mapping[str, str] | None = None,
        *,
        label: str,
        max_size: int = 2,
    ) -> None:
        self.schema = env.get("POSTGRES_SCHEMA", "").strip() or "public"
        self.tables = {key: sql.Identifier(self.schema, t) for key, t in tables.items()}
        self.names = {key: ident.as_string() for key, ident in self.tables.items()}
        self.names |= dict(names or {})
        self.label = label
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            postgres_conninfo(env),
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True},
            name=label,
            open=True,
        )

    def execute(self, query: str, params: Sequence[object] = ()) -> Rows:
        with self._pool.connection() as conn:
            return PostgresTx(conn, self.names).execute(query, params)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction():
            yield PostgresTx(conn, self.names)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as conn:
            yield conn

    def scrub(self, table: str) -> None:
        with self._pool.connection() as conn:
            scrub_postgres(conn, self.tables[table])

    def close(self) -> None:
        self._pool.close()
