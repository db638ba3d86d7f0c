"""The key store: one AES-256-GCM data key per data subject, outside the event store.

Keys live in their own SQLite file (`keys.sqlite` in the data directory) or their own
`subject_keys` table in the PostgreSQL schema — never in the log, its views or its
exports. A row is `(subject_id, key, created_at, destroyed_at)`; destroying a key
overwrites it with NULL and stamps `destroyed_at`, leaving a tombstone so that nothing new
is sealed for an erased subject and a missing key (a wrong or lost key file) is told apart
from an erased one. SQLite runs with `secure_delete` and checkpoints its WAL after a
destruction, so the old key bytes are zeroed in the file; PostgreSQL rewrites the table
(`VACUUM FULL`) so no dead row version keeps it. Backups of this store must expire within
the time the centre promises for an erasure (docs/adr/0007).

Sealed values are `nonce (12 bytes) ‖ ciphertext ‖ tag` with a random nonce per value.
Keys are cached in memory after first use, for at most `KEY_TTL_SECONDS` and
`KEYS_CACHED` subjects (least recently used go first): a destruction in this process
evicts at once, one in another process takes effect here within the lifetime.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import sql
from psycopg_pool import ConnectionPool

from adapters.config import Config
from adapters.view_store import postgres_conninfo
from service.personal_data import KeyDestroyed, SealBroken

NONCE_BYTES = 12
KEY_BITS = 256
_DESTROYED = b""  # cached marker: the subject's key is gone
KEYS_CACHED = 10_000
KEY_TTL_SECONDS = 60.0

_SCHEMA = """CREATE TABLE IF NOT EXISTS {table} (
    subject_id TEXT PRIMARY KEY, key BYTES, created_at TEXT NOT NULL, destroyed_at TEXT)"""


class _SqlKeys:
    """AES-GCM over keys kept by `_run(query, params) -> rows` (SQLite or PostgreSQL)."""

    placeholder = "?"
    table = "subject_keys"

    def __init__(self) -> None:
        self._cache: OrderedDict[UUID, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def _run(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _q(self, query: str) -> str:
        return query.replace("?", self.placeholder).replace("{table}", self.table)

    def _after_destroy(self) -> None:
        """Make sure the overwritten key is gone from the files, not just unreachable."""

    # ---- SubjectKeys ---------------------------------------------------------------------

    def seal(self, subject_id: UUID, plaintext: bytes, aad: bytes) -> bytes:
        key = self._key(subject_id, create=True)
        if not key:
            msg = f"subject {subject_id} was erased: nothing more is stored about them"
            raise KeyDestroyed(msg)
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)

    def open(self, subject_id: UUID, sealed: bytes, aad: bytes) -> bytes | None:
        key = self._key(subject_id, create=False)
        if key is None:
            msg = f"no key for subject {subject_id} in this key store (not erased: missing)"
            raise SealBroken(msg)
        if not key:
            return None
        try:
            return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError) as error:
            msg = "a sealed value does not authenticate: altered, or moved from another event"
            raise SealBroken(msg) from error

    def destroy(self, subject_id: UUID) -> bool:
        now = datetime.now(UTC).isoformat()
        destroyed = self._run(
            self._q(
                "UPDATE {table} SET key = NULL, destroyed_at = ? "
                "WHERE subject_id = ? AND destroyed_at IS NULL RETURNING subject_id"
            ),
            (now, str(subject_id)),
        )
        self._run(  # a tombstone even for a subject who never had a key
            self._q(
                "INSERT INTO {table} (subject_id, key, created_at, destroyed_at) "
                "VALUES (?, NULL, ?, ?) ON CONFLICT (subject_id) DO NOTHING"
            ),
            (str(subject_id), now, now),
        )
        self._remember(subject_id, _DESTROYED)
        if destroyed:
            self._after_destroy()
        return bool(destroyed)

    # ---- keys ----------------------------------------------------------------------------

    def _key(self, subject_id: UUID, *, create: bool) -> bytes | None:
        """The key, b"" if destroyed, None if there is none (and `create` is False)."""
        cached = self._cached(subject_id)
        if cached is not None:
            return cached
        key = self._stored(subject_id)
        if key is None and create:
            self._run(
                self._q(
                    "INSERT INTO {table} (subject_id, key, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (subject_id) DO NOTHING"
                ),
                (str(subject_id), AESGCM.generate_key(KEY_BITS), datetime.now(UTC).isoformat()),
            )
            key = self._stored(subject_id)  # ours, or a racing writer's
        if key is not None:
            self._remember(subject_id, key)
        return key

    def _cached(self, subject_id: UUID) -> bytes | None:
        with self._lock:
            entry = self._cache.get(subject_id)
            if entry is None:
                return None
            if time.monotonic() - entry[0] > KEY_TTL_SECONDS:
                del self._cache[subject_id]
                return None
            self._cache.move_to_end(subject_id)
            return entry[1]

    def _remember(self, subject_id: UUID, key: bytes) -> None:
        with self._lock:
            self._cache[subject_id] = (time.monotonic(), key)
            self._cache.move_to_end(subject_id)
            while len(self._cache) > KEYS_CACHED:
                self._cache.popitem(last=False)

    def _stored(self, subject_id: UUID) -> bytes | None:
        rows = self._run(
            self._q("SELECT key, destroyed_at FROM {table} WHERE subject_id = ?"),
            (str(subject_id),),
        )
        if not rows:
            return None
        key, destroyed_at = rows[0]
        return _DESTROYED if destroyed_at is not None or key is None else bytes(key)


class SqliteSubjectKeys(_SqlKeys):
    """Keys in their own SQLite file, one connection under a lock (lookups are cached)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._conn_lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA secure_delete = ON")  # freed bytes are zeroed
        self._run(self._q(_SCHEMA.replace("BYTES", "BLOB")), ())

    def _run(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._conn_lock:
            return list(self._conn.execute(query, tuple(params)).fetchall())

    def _after_destroy(self) -> None:
        # The old page image may still sit in the WAL until a checkpoint: copy the new one
        # back and truncate the WAL, so the destroyed key is in neither file.
        self._run("PRAGMA wal_checkpoint(TRUNCATE)", ())

    def close(self) -> None:
        with self._conn_lock:
            self._conn.close()


class PostgresSubjectKeys(_SqlKeys):
    """Keys as a table of their own in the application's schema, over a small pool."""

    placeholder = "%s"

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__()
        schema = env.get("POSTGRES_SCHEMA", "").strip() or "public"
        self._identifier = sql.Identifier(schema, "subject_keys")
        self.table = self._identifier.as_string()
        self._pool = ConnectionPool(
            postgres_conninfo(env),
            min_size=1,
            max_size=2,
            kwargs={"autocommit": True},
            name="subject-keys",
            open=True,
        )
        try:
            self._run(self._q(_SCHEMA.replace("BYTES", "BYTEA")), ())
        except BaseException:
            self._pool.close()
            raise

    def _run(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            cursor = conn.execute(query.encode(), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

    def _after_destroy(self) -> None:
        # An UPDATE leaves the old row version in the heap until vacuumed; VACUUM FULL
        # writes the live rows to new files (the table is small) and drops the old ones.
        with self._pool.connection() as conn:
            conn.execute(sql.SQL("VACUUM FULL {}").format(self._identifier))

    def close(self) -> None:
        self._pool.close()


def open_subject_keys(config: Config) -> SqliteSubjectKeys | PostgresSubjectKeys:
    if config.uses_postgres:
        return PostgresSubjectKeys(config.eventsourcing_env())
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteSubjectKeys(config.data_dir / "keys.sqlite")
