"""Stored views: a projection's documents and its tracking position, written together.

Each batch of events is one unit of work (`ViewBatch`, the projections' `Documents` port):
reads see the batch's own writes first, writes are buffered, and `commit` writes every
buffered document and the new tracking position in one transaction. The tracking update
is conditional on the position the batch started from, so two runners (or a rebuild in
another process) can never both apply the same events: the loser's batch is not written.

SQLite keeps one file per projection (`view-{name}.sqlite`) because its table names are
fixed; PostgreSQL keeps `{name}_docs` and `{name}_tracking` in the configured schema.

Deleting documents is what an erasure does (the projections delete nothing else), so a
batch that deleted any is followed by a scrub (a rebuild's too, when it meets an erasure):
the deleted and rewritten documents must leave no bytes on disk. SQLite keeps them in free
pages, in the slack of live pages (`secure_delete` zeroes freed cells, not space a page
rebuild leaves) and in old WAL frames, so the file is rewritten (`VACUUM`) and the WAL
truncated; PostgreSQL keeps dead row versions, so the table is rewritten (`adapters.store.scrub`).
Both cost time in proportion to the view's size, once per erasing batch (docs/adr/0007).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, Protocol

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from adapters.config import Config
from adapters.store.files import private_dir, private_file
from adapters.store.scrub import scrub_postgres, scrub_sqlite
from adapters.store.sql import postgres_conninfo

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
SQLITE_POLL = 0.05
POSTGRES_FALLBACK_POLL = 1.0
"""Seconds a PostgreSQL waiter trusts LISTEN alone before reading the position anyway."""
log = logging.getLogger(__name__)


class Doc(NamedTuple):
    kind: str
    key: str
    centre_id: str
    body: bytes


class TrackingConflict(RuntimeError):
    """The view's position moved under a batch (another runner, a rebuild): not written."""


class ViewStore(Protocol):
    """What a runner and the queries need from a stored view."""

    name: str

    def position(self) -> int: ...

    def wait(self, position: int, timeout: float) -> bool:
        """Whether the stored position reaches `position` within `timeout` seconds,
        whichever process moves it."""
        ...

    def begin(self, position: int) -> ViewBatch: ...

    def get(self, kind: str, key: str) -> bytes | None: ...

    def list(
        self, kind: str, centre_id: str | None = None, after_key: str = "", limit: int = 100
    ) -> Sequence[Doc]: ...

    def kinds(self) -> Sequence[str]: ...

    def write(
        self,
        expected: int,
        position: int,
        docs: Sequence[Doc],
        deleted: Sequence[tuple[str, str]] = (),
    ) -> None: ...

    def drop(self) -> None: ...

    def close(self) -> None: ...


class ViewBatch:
    """One batch's unit of work over a store; implements `projections.base.Documents`."""

    def __init__(self, store: ViewStore, position: int) -> None:
        self.store = store
        self.start = position
        self.buffer: dict[tuple[str, str], Doc] = {}
        self.deleted: set[tuple[str, str]] = set()

    def get(self, kind: str, key: str) -> bytes | None:
        doc = self.buffer.get((kind, key))
        if doc is not None:
            return doc.body
        return None if (kind, key) in self.deleted else self.store.get(kind, key)

    def put(self, kind: str, key: str, body: bytes, *, centre_id: str = "") -> None:
        self.buffer[kind, key] = Doc(kind, key, centre_id, body)
        self.deleted.discard((kind, key))

    def delete(self, kind: str, key: str) -> None:
        """Forget a document (an erased person's data goes, not just stops being read)."""
        self.buffer.pop((kind, key), None)
        self.deleted.add((kind, key))

    def commit(self, position: int) -> None:
        """Write the buffered documents and `position` at once, or raise TrackingConflict."""
        self.store.write(self.start, position, list(self.buffer.values()), sorted(self.deleted))


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        msg = f"a view name is lower-case letters, digits and _ (it names files/tables): {name!r}"
        raise ValueError(msg)
    return name


def open_view_store(config: Config, name: str) -> ViewStore:
    """The view `name` on the configured store."""
    if not config.uses_postgres:
        private_dir(config.data_dir)
        return SqliteViewStore(config.data_dir / f"view-{name}.sqlite", name)
    return PostgresViewStore(config.eventsourcing_env(), name)


# ---- SQLite ----------------------------------------------------------------------------

# A rowid table: documents run to kilobytes (a coverage report ~10 kB), and a WITHOUT ROWID
# table keeps each whole row in its primary key's B-tree, which SQLite advises only for
# rows under ~1/20 of a page; writing a rebuild's documents took twice as long in one.
_SQLITE_DOCS = """
CREATE TABLE IF NOT EXISTS {table} (
    kind TEXT NOT NULL, key TEXT NOT NULL, centre_id TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (kind, key)
)"""
_SQLITE_SCHEMA = f"""
{_SQLITE_DOCS.format(table="docs")};
CREATE INDEX IF NOT EXISTS docs_by_centre ON docs (kind, centre_id, key);
CREATE TABLE IF NOT EXISTS tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
"""
_SQLITE_UPSERT = (
    "INSERT INTO docs (kind, key, centre_id, body) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (kind, key) DO UPDATE SET centre_id = excluded.centre_id, body = excluded.body"
)


class SqliteViewStore:
    """A view in its own SQLite file, in WAL mode so queries never block the runner.

    Connections are pooled (sqlite3 connections are not for concurrent use) and all
    closed by `close()`; one in use at that moment is closed when it is handed back.
    """

    def __init__(self, path: Path, name: str, *, timeout: float = 10.0) -> None:
        self.name = _check_name(name)
        self.path = private_file(path)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        with self._connection() as conn:
            self._migrate(conn)
            conn.executescript(_SQLITE_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO tracking VALUES (?, 0)", (name,))

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """A view written by an earlier release (documents WITHOUT ROWID) is copied into the
        rowid table once, position kept, and the file scrubbed of the old table's pages."""
        with self._transaction(conn):
            row = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'docs'"
            ).fetchone()
            if row is None or "WITHOUT ROWID" not in str(row[0]).upper():
                return
            conn.execute(_SQLITE_DOCS.format(table="docs_rowid"))
            conn.execute("INSERT INTO docs_rowid SELECT kind, key, centre_id, body FROM docs")
            conn.execute("DROP TABLE docs")
            conn.execute("ALTER TABLE docs_rowid RENAME TO docs")
        log.info("view %s: documents moved to a rowid table", self.name)
        self.scrub()

    def position(self) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT position FROM tracking WHERE name = ?", (self.name,))
            return int(row.fetchone()[0])

    def wait(self, position: int, timeout: float) -> bool:
        """Polls the file (SQLite has no notifications); only another process's runner can
        move it, and on SQLite the runner lives in the serving process (docs/adr/0020)."""
        deadline = time.monotonic() + timeout
        while self.position() < position:
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(SQLITE_POLL, max(0.0, deadline - time.monotonic())))
        return True

    def begin(self, position: int) -> ViewBatch:
        return ViewBatch(self, position)

    def get(self, kind: str, key: str) -> bytes | None:
        with self._connection() as conn:
            cursor = conn.execute("SELECT body FROM docs WHERE kind = ? AND key = ?", (kind, key))
            row = cursor.fetchone()
        return None if row is None else bytes(row[0])

    def list(
        self, kind: str, centre_id: str | None = None, after_key: str = "", limit: int = 100
    ) -> Sequence[Doc]:
        """A page of documents in key order; `centre_id=None` lists every centre's."""
        where, params = "kind = ? AND key > ?", [kind, after_key]
        if centre_id is not None:
            where, params = "kind = ? AND centre_id = ? AND key > ?", [kind, centre_id, after_key]
        query = f"SELECT kind, key, centre_id, body FROM docs WHERE {where} ORDER BY key LIMIT ?"  # noqa: S608
        with self._connection() as conn:
            rows = conn.execute(query, (*params, limit)).fetchall()
        return [Doc(k, key, c, bytes(b)) for k, key, c, b in rows]

    def kinds(self) -> Sequence[str]:
        with self._connection() as conn:
            rows = conn.execute("SELECT DISTINCT kind FROM docs ORDER BY kind").fetchall()
        return [str(kind) for (kind,) in rows]

    def write(
        self,
        expected: int,
        position: int,
        docs: Sequence[Doc],
        deleted: Sequence[tuple[str, str]] = (),
    ) -> None:
        with self._connection() as conn, self._transaction(conn):
            moved = conn.execute(
                "UPDATE tracking SET position = ? WHERE name = ? AND position = ?",
                (position, self.name, expected),
            )
            if moved.rowcount != 1:
                msg = f"view {self.name} is no longer at position {expected}"
                raise TrackingConflict(msg)
            conn.executemany(_SQLITE_UPSERT, docs)
            conn.executemany("DELETE FROM docs WHERE kind = ? AND key = ?", deleted)
        if deleted:
            self.scrub()

    def drop(self) -> None:
        """Forget every document and the position, in one transaction."""
        with self._connection() as conn, self._transaction(conn):
            conn.execute("DELETE FROM docs")
            conn.execute("UPDATE tracking SET position = 0 WHERE name = ?", (self.name,))

    def scrub(self) -> None:
        """Leave no byte of a deleted or overwritten document in the file or its WAL."""
        with self._connection() as conn:
            scrub_sqlite(conn, f"view {self.name}")

    def close(self) -> None:
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, []
        for conn in idle:
            conn.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                msg = f"view store {self.name} is closed"
                raise RuntimeError(msg)
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent; views rebuild
            conn.execute("PRAGMA secure_delete = ON")  # a deleted document's cells are zeroed
        try:
            yield conn
        finally:
            with self._lock:
                closed = self._closed
                if not closed:
                    self._idle.append(conn)
            if closed:
                conn.close()

    @staticmethod
    @contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not at the first write
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


# ---- PostgreSQL ------------------------------------------------------------------------


class PostgresViewStore:
    """A view as two tables in the application's database and schema."""

    def __init__(self, env: Mapping[str, str], name: str, *, max_connections: int = 4) -> None:
        self.name = _check_name(name)
        schema = env.get("POSTGRES_SCHEMA", "").strip() or "public"
        self._docs = sql.Identifier(schema, f"{name}_docs")
        self._tracking = sql.Identifier(schema, f"{name}_tracking")
        self.channel = f"eportfolio_views_{schema}"[:63]
        self._conninfo = postgres_conninfo(env)
        self._watch: PositionWatch | None = None
        self._watch_lock = threading.Lock()
        self._pool = ConnectionPool(
            postgres_conninfo(env),
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True},
            name=f"view-{name}",
            open=True,
        )
        try:
            self._create(f"{name}_docs_by_centre")
        except BaseException:
            self._pool.close()
            raise

    def _create(self, index: str) -> None:
        statements = [
            "CREATE TABLE IF NOT EXISTS {docs} (kind text NOT NULL, key text NOT NULL, "
            "centre_id text NOT NULL, body bytea NOT NULL, PRIMARY KEY (kind, key))",
            "CREATE INDEX IF NOT EXISTS {index} ON {docs} (kind, centre_id, key)",
            "CREATE TABLE IF NOT EXISTS {tracking} "
            "(name text PRIMARY KEY, position bigint NOT NULL)",
        ]
        names = {"docs": self._docs, "tracking": self._tracking, "index": sql.Identifier(index)}
        with self._pool.connection() as conn, conn.transaction():
            for statement in statements:
                conn.execute(sql.SQL(statement).format(**names))
            conn.execute(
                sql.SQL("INSERT INTO {} VALUES (%s, 0) ON CONFLICT DO NOTHING").format(
                    self._tracking
                ),
                (self.name,),
            )

    def position(self) -> int:
        query = sql.SQL("SELECT position FROM {} WHERE name = %s").format(self._tracking)
        with self._pool.connection() as conn:
            row = conn.execute(query, (self.name,)).fetchone()
        return 0 if row is None else int(row[0])

    def wait(self, position: int, timeout: float) -> bool:
        """Woken by the NOTIFY each commit sends (LISTEN on a connection of its own); the
        position is read again at least every POSTGRES_FALLBACK_POLL seconds regardless."""
        deadline = time.monotonic() + timeout
        watch = self._watching()
        while True:
            seen = watch.generation
            if self.position() >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            watch.wait_after(seen, min(remaining, POSTGRES_FALLBACK_POLL))

    def _watching(self) -> PositionWatch:
        with self._watch_lock:
            if self._watch is None:
                self._watch = PositionWatch(self._conninfo, self.channel)
                self._watch.start()
            return self._watch

    def begin(self, position: int) -> ViewBatch:
        return ViewBatch(self, position)

    def get(self, kind: str, key: str) -> bytes | None:
        query = sql.SQL("SELECT body FROM {} WHERE kind = %s AND key = %s").format(self._docs)
        with self._pool.connection() as conn:
            row = conn.execute(query, (kind, key), prepare=True).fetchone()
        return None if row is None else bytes(row[0])

    def list(
        self, kind: str, centre_id: str | None = None, after_key: str = "", limit: int = 100
    ) -> Sequence[Doc]:
        """A page of documents in key order; `centre_id=None` lists every centre's."""
        if centre_id is None:
            where = sql.SQL("kind = %s AND key > %s")
            params: tuple[str | int, ...] = (kind, after_key, limit)
        else:
            where = sql.SQL("kind = %s AND centre_id = %s AND key > %s")
            params = (kind, centre_id, after_key, limit)
        query = sql.SQL(
            "SELECT kind, key, centre_id, body FROM {} WHERE {} ORDER BY key LIMIT %s"
        ).format(self._docs, where)
        with self._pool.connection() as conn:
            rows = conn.execute(query, params).fetchall()
        return [Doc(k, key, c, bytes(b)) for k, key, c, b in rows]

    def kinds(self) -> Sequence[str]:
        query = sql.SQL("SELECT DISTINCT kind FROM {} ORDER BY kind").format(self._docs)
        with self._pool.connection() as conn:
            return [str(kind) for (kind,) in conn.execute(query).fetchall()]

    def write(
        self,
        expected: int,
        position: int,
        docs: Sequence[Doc],
        deleted: Sequence[tuple[str, str]] = (),
    ) -> None:
        track = sql.SQL("UPDATE {} SET position = %s WHERE name = %s AND position = %s").format(
            self._tracking
        )
        upsert = sql.SQL(
            "INSERT INTO {} (kind, key, centre_id, body) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (kind, key) DO UPDATE SET centre_id = EXCLUDED.centre_id, "
            "body = EXCLUDED.body"
        ).format(self._docs)
        with self._pool.connection() as conn, conn.transaction():
            # The row lock taken here serialises competing runners; the loser sees 0 rows.
            if conn.execute(track, (position, self.name, expected)).rowcount != 1:
                msg = f"view {self.name} is no longer at position {expected}"
                raise TrackingConflict(msg)
            if docs:
                with conn.cursor() as cursor:
                    cursor.executemany(upsert, docs)
            if deleted:
                remove = sql.SQL("DELETE FROM {} WHERE kind = %s AND key = %s").format(self._docs)
                with conn.cursor() as cursor:
                    cursor.executemany(remove, deleted)
            # Delivered at commit: waiters in every process read the position again.
            conn.execute("SELECT pg_notify(%s, %s)", (self.channel, f"{self.name}:{position}"))
        if deleted:
            self.scrub()

    def drop(self) -> None:
        """Forget every document and the position, in one transaction."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(sql.SQL("DELETE FROM {}").format(self._docs))
            conn.execute(
                sql.SQL("UPDATE {} SET position = 0 WHERE name = %s").format(self._tracking),
                (self.name,),
            )

    def scrub(self) -> None:
        """Rewrite the documents' table so no dead row version keeps a deleted document."""
        with self._pool.connection() as conn:
            scrub_postgres(conn, self._docs)

    def close(self) -> None:
        with self._watch_lock:
            watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
        self._pool.close()


class PositionWatch(threading.Thread):
    """LISTENs for the views' commits and counts them; waiters sleep until the count moves.

    A lost connection is opened again after a second; meanwhile waiters fall back to
    reading the position every POSTGRES_FALLBACK_POLL seconds.
    """

    def __init__(self, conninfo: str, channel: str) -> None:
        super().__init__(name=f"watch-{channel}", daemon=True)
        self.conninfo, self.channel = conninfo, channel
        self.generation = 0
        self._moved = threading.Condition()
        self._stopping = threading.Event()
        self._listening = threading.Event()

    def start(self) -> None:
        super().start()
        self._listening.wait(timeout=2.0)  # a commit from now on wakes the first waiter

    def wait_after(self, seen: int, timeout: float) -> None:
        with self._moved:
            self._moved.wait_for(lambda: self.generation != seen, timeout)

    def close(self) -> None:
        self._stopping.set()
        self.join()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._listening.set()
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=100):
                            self._bump()
            except psycopg.Error as error:
                log.warning("view watch on %s lost (%s); listening again", self.channel, error)
                self._listening.set()  # waiters poll meanwhile
                self._stopping.wait(1.0)

    def _bump(self) -> None:
        with self._moved:
            self.generation += 1
            self._moved.notify_all()
