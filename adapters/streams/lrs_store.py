"""A centre's Learning Record Stores, their cursors and every delivery attempt, stored.

Kept like webhook subscriptions (adapters/streams/webhook_store.py): the cursor is the last
log position sent (or passed over), moved only by a conditional update in the transaction
that records the attempt earning it. The LRS's password and the key its learners'
pseudonyms are made with are wrapped under the key-encryption key (ADR 0010) in a column of
their own, never in the registration document, and never returned by the API.

SQLite keeps a file of its own (`lrs.sqlite`, WAL); PostgreSQL two tables in the
application's schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from uuid import UUID

import msgspec
from psycopg import sql

from adapters.config import Config
from adapters.store.files import private_dir
from adapters.store.kek import CURRENT_KEK_TABLE, RECORD_CURRENT_KEK, KeyRing, load_ring
from adapters.store.migrations import Step, migrate
from adapters.store.sql import Database, PostgresDatabase, SqliteDatabase, Tx


class Status(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class Secrets(msgspec.Struct, frozen=True, kw_only=True):
    """What is stored wrapped: the LRS's password and this LRS's pseudonym key."""

    password: str
    pseudonym_key: bytes


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    """What never changes after registration (secrets apart)."""

    centre_id: UUID
    owner_id: UUID
    endpoint: str  # the xAPI base, ending in "/": statements are at endpoint + "statements"
    username: str
    created_at: datetime


class Lrs(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    registration: Registration
    secrets: Secrets
    position: int
    status: Status = Status.ACTIVE
    status_reason: str = ""


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One request to the LRS with the statements of one event, and what came of it."""

    position: int
    event_id: UUID
    statement_ids: list[UUID]
    attempt: int
    at: datetime
    status_code: int | None
    error: str = ""
    duration_ms: float
    outcome: str  # delivered | retrying | disabled
    seq: int = 0  # set by the store, in recording order


_COLUMNS = "id, doc, position, status, status_reason, secrets_sealed, kek_id"
_decode_registration = msgspec.json.Decoder(Registration).decode
_decode_secrets = msgspec.json.Decoder(Secrets).decode
_decode_attempt = msgspec.json.Decoder(Attempt).decode
_AAD = b"eportfolio:lrs-secrets:v1\x00"


def _aad(lrs_id: UUID | str) -> bytes:
    return _AAD + str(lrs_id).encode()


class LrsStore:
    """Registered LRSs, cursors and attempts in one store database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, ring: KeyRing) -> None:
        self.db = db
        self.ring = ring
        migrate(db, "lrs", steps(ring))
        for wanted in self.kek_ids():  # every KEK in use must be at hand: say so now
            self.ring.key(wanted)

    def close(self) -> None:
        self.db.close()

    def add(self, lrs: Lrs) -> None:
        with self.db.transaction() as tx:
            (current,) = tx.execute("SELECT kek_id FROM {kek}{share}")[0]
            tx.count(
                "INSERT INTO {lrs} (id, centre_id, doc, position, status, status_reason, "
                "secrets_sealed, kek_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(lrs.id),
                    str(lrs.registration.centre_id),
                    msgspec.json.encode(lrs.registration),
                    lrs.position,
                    lrs.status.value,
                    lrs.status_reason,
                    self.ring.wrap(current, msgspec.json.encode(lrs.secrets), _aad(lrs.id)),
                    current,
                ),
            )

    def rewrap(self, target: str) -> int:
        """Wrap every secret under the KEK `target` (a rotation); how many were rewrapped."""
        self.ring.key(target)
        with self.db.transaction() as tx:
            tx.count("UPDATE {kek} SET kek_id = ?", (target,))
            rows = tx.execute(
                "SELECT id, secrets_sealed, kek_id FROM {lrs} WHERE kek_id <> ?", (target,)
            )
            for lrs_id, sealed, old in rows:
                plain = self.ring.unwrap(old, bytes(sealed), _aad(lrs_id))
                tx.count(
                    "UPDATE {lrs} SET secrets_sealed = ?, kek_id = ? WHERE id = ?",
                    (self.ring.wrap(target, plain, _aad(lrs_id)), target, lrs_id),
                )
        if rows:
            self.db.scrub("lrs")
        return len(rows)

    def kek_ids(self) -> set[str]:
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT kek_id FROM {kek} UNION SELECT DISTINCT kek_id FROM {lrs}")
        return {str(row[0]) for row in rows}

    def get(self, lrs_id: UUID) -> Lrs | None:
        found = self._select("WHERE id = ?", (str(lrs_id),))
        return found[0] if found else None

    def of_centre(self, centre_id: UUID) -> list[Lrs]:
        return self._select("WHERE centre_id = ? ORDER BY id", (str(centre_id),))

    def active(self) -> list[Lrs]:
        return self._select("WHERE status = ? ORDER BY id", (Status.ACTIVE.value,))

    def delete(self, lrs_id: UUID) -> bool:
        with self.db.transaction() as tx:
            tx.count("DELETE FROM {attempts} WHERE lrs_id = ?", (str(lrs_id),))
            deleted = tx.count("DELETE FROM {lrs} WHERE id = ?", (str(lrs_id),)) == 1
        if deleted:
            self.db.scrub("lrs")  # the wrapped password is gone from the file too
        return deleted

    def record(self, lrs_id: UUID, attempt: Attempt, *, moved: tuple[int, int] | None) -> bool:
        """Record an attempt and, if `moved` = (expected, new), move the cursor with it.

        False if the cursor was no longer at `expected` (the attempt is kept)."""
        with self.db.transaction() as tx:
            tx.count(
                "INSERT INTO {attempts} (lrs_id, doc) VALUES (?, ?)",
                (str(lrs_id), msgspec.json.encode(attempt)),
            )
            return moved is None or self._move(tx, lrs_id, *moved)

    def advance(self, lrs_id: UUID, expected: int, position: int) -> bool:
        """Move the cursor past events that send nothing; False if it moved meanwhile."""
        with self.db.transaction() as tx:
            return self._move(tx, lrs_id, expected, position)

    def set_status(self, lrs_id: UUID, status: Status, reason: str = "") -> None:
        with self.db.transaction() as tx:
            tx.count(
                "UPDATE {lrs} SET status = ?, status_reason = ? WHERE id = ?",
                (status.value, reason, str(lrs_id)),
            )

    def attempts(self, lrs_id: UUID, after: int = 0, limit: int = 100) -> list[Attempt]:
        """Attempts in the order made, after sequence number `after`."""
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT seq, doc FROM {attempts} WHERE lrs_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (str(lrs_id), after, limit),
            )
        return [msgspec.structs.replace(_decode_attempt(bytes(d)), seq=s) for s, d in rows]

    @staticmethod
    def _move(tx: Tx, lrs_id: UUID, expected: int, position: int) -> bool:
        count = tx.count(
            "UPDATE {lrs} SET position = ? WHERE id = ? AND position = ?",
            (position, str(lrs_id), expected),
        )
        return count == 1

    def _select(self, where: str, params: Sequence[object]) -> list[Lrs]:
        with self.db.transaction() as tx:
            query = f"SELECT {_COLUMNS} FROM {{lrs}} {where}"  # noqa: S608 `where` is ours
            rows = tx.execute(query, params)
        return [
            Lrs(
                id=UUID(i),
                registration=_decode_registration(bytes(doc)),
                secrets=_decode_secrets(self.ring.unwrap(kek, bytes(sealed), _aad(i))),
                position=int(position),
                status=Status(status),
                status_reason=reason,
            )
            for i, doc, position, status, reason, sealed, kek in rows
        ]


def open_lrs_store(config: Config, ring: KeyRing | None = None) -> LrsStore:
    """The configured store, its secrets wrapped under the configured KEK (KekError if none)."""
    ring = ring or load_ring(config)
    db: Database
    if not config.uses_postgres:
        private_dir(config.data_dir)
        db = SqliteDatabase(
            config.data_dir / "lrs.sqlite",
            {
                "lrs": "lrs",
                "attempts": "lrs_attempts",
                "index": "lrs_attempts_by_lrs",
                "kek": "kek",
                "bigint": "INTEGER",
                "serial": "seq INTEGER PRIMARY KEY AUTOINCREMENT",
            },
            label="the LRS store",
            timeout=10.0,
            secure_delete=True,
        )
    else:
        db = PostgresDatabase(
            config.eventsourcing_env(),
            {
                "lrs": "eportfolio_lrs",
                "attempts": "eportfolio_lrs_attempts",
                "kek": "eportfolio_lrs_kek",
            },
            {
                "index": sql.Identifier("eportfolio_lrs_attempts_by_lrs").as_string(),
                "bigint": "bigint",
                "serial": "seq bigserial PRIMARY KEY",
            },
            label="LRS registrations",
        )
    try:
        return LrsStore(db, ring)
    except BaseException:
        db.close()
        raise


def steps(ring: KeyRing) -> tuple[Step, ...]:
    """The schema's versions (adapters/store/migrations.py); never edit a released step, add one."""

    def record_current_kek(tx: Tx) -> int:
        tx.execute(RECORD_CURRENT_KEK, (ring.newest,))
        return 0

    return (
        Step(
            1,
            "LRS registrations (secrets wrapped under the KEK) and their delivery attempts",
            (
                "CREATE TABLE {lrs} (id TEXT PRIMARY KEY, centre_id TEXT NOT NULL, "
                "doc {bytes} NOT NULL, position {bigint} NOT NULL, status TEXT NOT NULL, "
                "status_reason TEXT NOT NULL, secrets_sealed {bytes} NOT NULL, "
                "kek_id TEXT NOT NULL)",
                "CREATE TABLE {attempts} ({serial}, lrs_id TEXT NOT NULL, doc {bytes} NOT NULL)",
                "CREATE INDEX {index} ON {attempts} (lrs_id, seq)",
                CURRENT_KEK_TABLE,
            ),
            record_current_kek,
        ),
    )
