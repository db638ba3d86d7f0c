"""The key store: one AES-256-GCM data key per data subject, outside the event store.

Keys live in their own SQLite file (`keys.sqlite` in the data directory) or their own
`subject_keys` table in the PostgreSQL schema — never in the log, its views or its
exports — and only wrapped under the key-encryption key (`adapters.store.kek`), which is kept
apart: a copy of the store alone opens nothing. A row is `(subject_id, wrapped_key,
kek_id, created_at, destroyed_at)`. Destroying a key overwrites it with NULL and stamps
`destroyed_at`, leaving a tombstone, so that nothing new is sealed for an erased subject and
a missing key (a wrong or lost key file) is told apart from an erased one; a trigger
refuses to change or delete a tombstone. After a destruction the store is rewritten
(`adapters.store.scrub`: SQLite VACUUM and WAL truncation, PostgreSQL a copy of the live rows),
so no file keeps the old bytes. Backups of this store must
expire within the time the centre promises for an erasure (docs/adr/0007, 0010).

Sealed values are `nonce (12 bytes) ‖ ciphertext ‖ tag` with a random nonce per value.
Keys are cached in memory after first use, for at most `KEY_TTL_SECONDS` and
`KEYS_CACHED` subjects (least recently used go first). A destroyed key is remembered for
good in this process: nothing — not a reader that fetched the key just before — puts it
back. Another process learns of an erasure when it reads `SubjectErased` from the log
(the ledger then destroys the key here too), at the latest when its cached key expires.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import sql

from adapters.config import Config
from adapters.store.files import private_dir
from adapters.store.kek import CURRENT_KEK_TABLE, RECORD_CURRENT_KEK, KeyRing, load_ring
from adapters.store.migrations import Step, migrate
from adapters.store.sql import Database, PostgresDatabase, SqliteDatabase, Tx
from service.personal_data import KeyDestroyed, SealBroken

NONCE_BYTES = 12
KEY_BITS = 256
_DESTROYED = b""  # the subject's key is gone
KEYS_CACHED = 10_000
KEY_TTL_SECONDS = 60.0
_WRAP_AAD = b"eportfolio:subject-key:v1\x00"


def key_aad(subject_id: UUID | str) -> bytes:
    """What a wrapped key is bound to: its subject (it cannot be moved to another row)."""
    return _WRAP_AAD + str(subject_id).encode()


def steps(ring: KeyRing) -> tuple[Step, ...]:
    """The schema's versions (adapters/store/migrations.py); never edit a released step, add one."""

    def wrap_every_key(tx: Tx) -> int:
        current = ring.newest
        tx.execute(RECORD_CURRENT_KEK, (current,))
        rows = tx.execute("SELECT subject_id, key FROM {table} WHERE key IS NOT NULL")
        for subject_id, key in rows:
            tx.execute(
                "UPDATE {table} SET wrapped_key = ?, kek_id = ?, key = NULL WHERE subject_id = ?",
                (ring.wrap(current, bytes(key), key_aad(subject_id)), current, subject_id),
            )
        return len(rows)

    def keep_tombstones(tx: Tx) -> int:
        if tx.dialect == "sqlite":
            for change in ("UPDATE", "DELETE"):
                tx.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {{table}}_no_{change.lower()} BEFORE {change} "
                    "ON {table} WHEN OLD.destroyed_at IS NOT NULL "
                    "BEGIN SELECT RAISE(ABORT, 'a destroyed key is permanent'); END"
                )
            return 0
        tx.execute(
            "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'a destroyed key is permanent (subject %)', "
            "OLD.subject_id; END $$"
        )
        tx.execute(
            "CREATE TRIGGER {trigger} BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW "
            "WHEN (OLD.destroyed_at IS NOT NULL) EXECUTE FUNCTION {function}()"
        )
        return 0

    return (
        Step(
            1,
            "release 0.1: a key per subject, unwrapped",
            (
                "CREATE TABLE IF NOT EXISTS {table} (subject_id TEXT PRIMARY KEY, "
                "key {bytes}, created_at TEXT NOT NULL, destroyed_at TEXT)",
            ),
        ),
        Step(
            2,
            "every key wrapped under the KEK; the store names the current KEK",
            (
                "ALTER TABLE {table} ADD COLUMN wrapped_key {bytes}",
                "ALTER TABLE {table} ADD COLUMN kek_id TEXT",
                CURRENT_KEK_TABLE,
            ),
            wrap_every_key,
        ),
        Step(
            3,
            "the unwrapped column dropped; tombstones can be neither changed nor deleted",
            ("ALTER TABLE {table} DROP COLUMN key",),
            keep_tombstones,
        ),
    )


class SqlSubjectKeys:
    """AES-GCM over wrapped keys kept in one store database (SQLite file or PostgreSQL table).

    On PostgreSQL a new key reads the current KEK `FOR SHARE`, so a rotation waits for (and
    sees) the write.
    """

    def __init__(self, db: Database, ring: KeyRing) -> None:
        self.db = db
        self.ring = ring
        self._cache: OrderedDict[UUID, tuple[float, bytes]] = OrderedDict()
        self._destroyed: set[UUID] = set()
        self._lock = threading.Lock()
        if migrate(db, "subject_keys", steps(ring)).rewritten:
            self._scrub()  # release 0.1's unwrapped keys were just overwritten
        self._opened()

    def _scrub(self) -> None:
        """Make sure overwritten key material is gone from the files, not just unreachable."""
        self.db.scrub("table")

    def close(self) -> None:
        self.db.close()

    def _opened(self) -> None:
        """Every KEK the rows are wrapped under must be at hand: say so now, not mid-request."""
        for (wanted,) in self.db.execute(
            "SELECT kek_id FROM {kek} UNION "
            "SELECT DISTINCT kek_id FROM {table} WHERE wrapped_key IS NOT NULL",
            (),
        ):
            self.ring.key(wanted)

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
        """Destroy the key for good (idempotent); True if this call destroyed it."""
        with self._lock:
            if subject_id in self._destroyed:
                return False
        now = datetime.now(UTC).isoformat()
        destroyed = self.db.execute(
            "UPDATE {table} SET wrapped_key = NULL, destroyed_at = ? "
            "WHERE subject_id = ? AND destroyed_at IS NULL RETURNING subject_id",
            (now, str(subject_id)),
        )
        self.db.execute(  # a tombstone even for a subject who never had a key
            "INSERT INTO {table} (subject_id, wrapped_key, created_at, destroyed_at) "
            "VALUES (?, NULL, ?, ?) ON CONFLICT (subject_id) DO NOTHING",
            (str(subject_id), now, now),
        )
        self._remember(subject_id, _DESTROYED)
        if destroyed:
            self._scrub()
        return bool(destroyed)

    def rewrap(self, target: str) -> int:
        """Wrap every live key under the KEK `target` (a rotation); how many were rewrapped."""
        self.ring.key(target)  # held, or KekError before anything changes
        with self.db.transaction() as tx:
            tx.execute("UPDATE {kek} SET kek_id = ?", (target,))  # waits for writers
            rows = tx.execute(
                "SELECT subject_id, wrapped_key, kek_id FROM {table} "
                "WHERE wrapped_key IS NOT NULL AND kek_id <> ?",
                (target,),
            )
            for subject_id, wrapped, old in rows:
                key = self.ring.unwrap(old, bytes(wrapped), key_aad(subject_id))
                tx.execute(
                    "UPDATE {table} SET wrapped_key = ?, kek_id = ? WHERE subject_id = ?",
                    (self.ring.wrap(target, key, key_aad(subject_id)), target, subject_id),
                )
        if rows:
            self._scrub()
        return len(rows)

    def kek_ids(self) -> set[str]:
        """Every KEK something in this store is wrapped under (the current one included)."""
        rows = self.db.execute(
            "SELECT kek_id FROM {kek} UNION "
            "SELECT DISTINCT kek_id FROM {table} WHERE wrapped_key IS NOT NULL",
            (),
        )
        return {str(row[0]) for row in rows}

    # ---- keys ----------------------------------------------------------------------------

    def _key(self, subject_id: UUID, *, create: bool) -> bytes | None:
        """The key, b"" if destroyed, None if there is none (and `create` is False)."""
        cached = self._cached(subject_id)
        if cached is not None:
            return cached
        key = self._stored(subject_id)
        if key is None and create:
            self._insert(subject_id)
            key = self._stored(subject_id)  # ours, or a racing writer's
        if key is not None:
            self._remember(subject_id, key)
        return _DESTROYED if self._is_destroyed(subject_id) else key

    def _insert(self, subject_id: UUID) -> None:
        """A new key, wrapped under the store's current KEK as of this very transaction."""
        with self.db.transaction() as tx:
            (current,) = tx.execute("SELECT kek_id FROM {kek}{share}", ())[0]
            wrapped = self.ring.wrap(current, AESGCM.generate_key(KEY_BITS), key_aad(subject_id))
            tx.execute(
                "INSERT INTO {table} (subject_id, wrapped_key, kek_id, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (subject_id) DO NOTHING",
                (str(subject_id), wrapped, current, datetime.now(UTC).isoformat()),
            )

    def _is_destroyed(self, subject_id: UUID) -> bool:
        with self._lock:
            return subject_id in self._destroyed

    def _cached(self, subject_id: UUID) -> bytes | None:
        with self._lock:
            if subject_id in self._destroyed:
                return _DESTROYED
            entry = self._cache.get(subject_id)
            if entry is None:
                return None
            if time.monotonic() - entry[0] > KEY_TTL_SECONDS:
                del self._cache[subject_id]
                return None
            self._cache.move_to_end(subject_id)
            return entry[1]

    def _remember(self, subject_id: UUID, key: bytes) -> None:
        """Cache a live key, unless the subject's key was destroyed meanwhile (for good)."""
        with self._lock:
            if key == _DESTROYED:
                self._destroyed.add(subject_id)
                self._cache.pop(subject_id, None)
                return
            if subject_id in self._destroyed:
                return  # a reader that fetched the key before it was destroyed
            self._cache[subject_id] = (time.monotonic(), key)
            self._cache.move_to_end(subject_id)
            while len(self._cache) > KEYS_CACHED:
                self._cache.popitem(last=False)

    def _stored(self, subject_id: UUID) -> bytes | None:
        rows = self.db.execute(
            "SELECT wrapped_key, kek_id, destroyed_at FROM {table} WHERE subject_id = ?",
            (str(subject_id),),
        )
        if not rows:
            return None
        wrapped, wrapped_by, destroyed_at = rows[0]
        if destroyed_at is not None or wrapped is None:
            return _DESTROYED
        return self.ring.unwrap(wrapped_by, bytes(wrapped), key_aad(subject_id))


def open_subject_keys(config: Config, ring: KeyRing | None = None) -> SqlSubjectKeys:
    """The configured key store, its keys wrapped under the configured KEK (KekError if none)."""
    ring = ring or load_ring(config)
    if not config.uses_postgres:
        private_dir(config.data_dir)
        return sqlite_subject_keys(config.data_dir / "keys.sqlite", ring)
    db = PostgresDatabase(
        config.eventsourcing_env(),
        {
            "table": "subject_keys",
            "kek": "subject_keys_kek",
            "function": "subject_keys_tombstones_stay",
        },
        {"trigger": sql.Identifier("subject_keys_tombstones_stay").as_string()},
        label="subject-keys",
    )
    return _keys_over(db, ring)


def sqlite_subject_keys(path: Path, ring: KeyRing) -> SqlSubjectKeys:
    """A key store in its own SQLite file (freed pages zeroed)."""
    db = SqliteDatabase(
        path,
        {"table": "subject_keys", "kek": "kek"},
        label="the key store",
        timeout=10.0,
        secure_delete=True,
    )
    return _keys_over(db, ring)


def _keys_over(db: Database, ring: KeyRing) -> SqlSubjectKeys:
    try:
        return SqlSubjectKeys(db, ring)
    except BaseException:
        db.close()
        raise
