"""Webhook subscriptions, their tracked cursors and every delivery attempt, stored.

A subscription's cursor is the last log position delivered (or skipped by its filters). It
moves only by a conditional update from the position the worker started from, in the same
transaction as the attempt that earned it, so a redelivery that rewinds the cursor mid-flight
makes the worker's move fail and start again from the new position instead of overwriting it.
What the owner may change (URL, filters, content mode, rate limit, status, secret) changes by
a conditional update on the subscription's `version` (its ETag), never touching the cursor.

SQLite keeps a file of its own (`webhooks.sqlite`, WAL); PostgreSQL keeps two tables in the
application's schema. Signing needs the secret itself (ADR 0006), so it is stored wrapped
under the key-encryption key (`adapters.store.kek`, ADR 0010) in a column of its own, never in
the registration document: a copy of the store alone signs nothing. During a secret rotation
the old secret is sealed the same way in a second column, until it expires.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from adapters.streams.feed import Filters


class Status(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class ContentMode(StrEnum):
    """CloudEvents HTTP content modes: the whole envelope as the body, or `ce-*` headers."""

    STRUCTURED = "structured"
    BINARY = "binary"


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    """What `POST /webhooks` set; URL, filters, mode, rate and secret change by PATCH/rotation."""

    owner_id: UUID
    url: str
    secret: str
    filters: Filters = Filters()
    scope: frozenset[UUID] | None = None  # centres the owner may see; None: every centre
    created_at: datetime
    content_mode: ContentMode = ContentMode.STRUCTURED
    rate_limit: float | None = None  # deliveries (requests) per second; None: no limit
    old_secret: str = ""  # the secret before the last rotation, still signing until...
    old_secret_expires_at: datetime | None = None  # ...this moment

    def secrets_at(self, now: datetime) -> list[str]:
        """The secrets that sign at `now`: the current one, then the old one if unexpired."""
        expires = self.old_secret_expires_at
        if self.old_secret and expires is not None and now < expires:
            return [self.secret, self.old_secret]
        return [self.secret]


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    registration: Registration
    position: int
    status: Status = Status.ACTIVE
    status_reason: str = ""
    version: int = 1  # moves with every change of registration or status: the ETag


class Stale(Exception):
    """The subscription's version is not the one the caller expected (If-Match)."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the webhook is at version {current}")
        self.current = current


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP request to the endpoint, and what came of it."""

    position: int
    event_id: UUID
    attempt: int
    at: datetime
    status_code: int | None
    error: str = ""
    duration_ms: float
    outcome: str  # delivered | retrying | disabled
    seq: int = 0  # set by the store, in recording order


_SUB_COLUMNS = (
    "id, doc, position, status, status_reason, secret_sealed, kek_id, old_secret_sealed, version"
)
_decode_registration = msgspec.json.Decoder(Registration).decode
_decode_attempt = msgspec.json.Decoder(Attempt).decode
_SECRET_AAD = b"eportfolio:webhook-secret:v1\x00"
_OLD_SECRET_AAD = b"eportfolio:webhook-old-secret:v1\x00"  # not swappable with the current one


def _aad(webhook_id: UUID | str) -> bytes:
    return _SECRET_AAD + str(webhook_id).encode()


def _old_aad(webhook_id: UUID | str) -> bytes:
    return _OLD_SECRET_AAD + str(webhook_id).encode()


def _document(registration: Registration) -> bytes:
    """The registration as stored: everything but the secrets."""
    return msgspec.json.encode(msgspec.structs.replace(registration, secret="", old_secret=""))


class WebhookStore:
    """Subscriptions, cursors and attempts in one store database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, ring: KeyRing) -> None:
        self.db = db
        self.ring = ring
        if migrate(db, "webhooks", steps(ring)).rewritten:
            self._scrub()  # release 0.1's secrets in clear were just overwritten
        self._opened()

    def _scrub(self) -> None:
        """Make sure overwritten secrets are gone from the files, not just unreachable."""
        self.db.scrub("webhooks")

    def close(self) -> None:
        self.db.close()

    def add(self, subscription: Subscription) -> None:
        with self.db.transaction() as tx:
            (current,) = tx.execute("SELECT kek_id FROM {kek}{share}")[0]
            sealed, old_sealed = self._seal(current, subscription.id, subscription.registration)
            tx.count(
                "INSERT INTO {webhooks} (id, owner_id, doc, position, status, status_reason, "
                "secret_sealed, kek_id, old_secret_sealed, version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(subscription.id),
                    str(subscription.registration.owner_id),
                    _document(subscription.registration),
                    subscription.position,
                    subscription.status.value,
                    subscription.status_reason,
                    sealed,
                    current,
                    old_sealed,
                    subscription.version,
                ),
            )

    def _seal(self, kek: str, webhook_id: UUID, r: Registration) -> tuple[bytes, bytes | None]:
        """The current secret and the old one (None if there is none), wrapped under `kek`."""
        sealed = self.ring.wrap(kek, r.secret.encode(), _aad(webhook_id))
        old = (
            self.ring.wrap(kek, r.old_secret.encode(), _old_aad(webhook_id))
            if r.old_secret
            else None
        )
        return sealed, old

    def update(
        self,
        webhook_id: UUID,
        change: Callable[[Subscription], Subscription],
        expected_version: int | None = None,
    ) -> Subscription | None:
        """Apply `change` to the registration and status, keeping the cursor; bump the version.

        None if there is no such subscription; Stale if `expected_version` is given and is
        not the current one (also when another change committed meanwhile).
        """
        with self.db.transaction() as tx:
            (current,) = tx.execute("SELECT kek_id FROM {kek}{share}")[0]  # first, as rewrap
            found = self._rows(tx, "WHERE id = ?{for_update}", (str(webhook_id),))
            if not found:
                return None
            before = found[0]
            if expected_version is not None and before.version != expected_version:
                raise Stale(before.version)
            after = msgspec.structs.replace(change(before), version=before.version + 1)
            sealed, old_sealed = self._seal(current, webhook_id, after.registration)
            moved = tx.count(
                "UPDATE {webhooks} SET doc = ?, status = ?, status_reason = ?, "
                "secret_sealed = ?, old_secret_sealed = ?, kek_id = ?, version = ? "
                "WHERE id = ? AND version = ?",
                (
                    _document(after.registration),
                    after.status.value,
                    after.status_reason,
                    sealed,
                    old_sealed,
                    current,
                    after.version,
                    str(webhook_id),
                    before.version,
                ),
            )
            if moved != 1:  # cannot happen under the row lock; never overwrite blindly
                raise Stale(before.version + 1)
        return msgspec.structs.replace(after, position=before.position)

    def rewrap(self, target: str) -> int:
        """Wrap every secret under the KEK `target` (a rotation); how many were rewrapped."""
        self.ring.key(target)  # held, or KekError before anything changes
        with self.db.transaction() as tx:
            tx.count("UPDATE {kek} SET kek_id = ?", (target,))  # waits for writers
            rows = tx.execute(
                "SELECT id, secret_sealed, kek_id, old_secret_sealed FROM {webhooks} "
                "WHERE kek_id <> ?",
                (target,),
            )
            for webhook_id, sealed, old, old_sealed in rows:
                secret = self.ring.unwrap(old, bytes(sealed), _aad(webhook_id))
                old_secret = None
                if old_sealed is not None:
                    previous = self.ring.unwrap(old, bytes(old_sealed), _old_aad(webhook_id))
                    old_secret = self.ring.wrap(target, previous, _old_aad(webhook_id))
                tx.count(
                    "UPDATE {webhooks} SET secret_sealed = ?, old_secret_sealed = ?, kek_id = ? "
                    "WHERE id = ?",
                    (
                        self.ring.wrap(target, secret, _aad(webhook_id)),
                        old_secret,
                        target,
                        webhook_id,
                    ),
                )
        if rows:
            self._scrub()
        return len(rows)

    def kek_ids(self) -> set[str]:
        """Every KEK something in this store is wrapped under (the current one included)."""
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT kek_id FROM {kek} UNION SELECT DISTINCT kek_id FROM {webhooks}"
            )
        return {str(row[0]) for row in rows}

    def _opened(self) -> None:
        """Every KEK the secrets are wrapped under must be at hand: say so at startup."""
        for wanted in self.kek_ids():
            self.ring.key(wanted)

    def get(self, webhook_id: UUID) -> Subscription | None:
        found = self._select("WHERE id = ?", (str(webhook_id),))
        return found[0] if found else None

    def subscriptions(self, owner_id: UUID | None = None) -> list[Subscription]:
        if owner_id is None:
            return self._select("ORDER BY id", ())
        return self._select("WHERE owner_id = ? ORDER BY id", (str(owner_id),))

    def active(self) -> list[Subscription]:
        return self._select("WHERE status = ? ORDER BY id", (Status.ACTIVE.value,))

    def delete(self, webhook_id: UUID) -> bool:
        with self.db.transaction() as tx:
            tx.count("DELETE FROM {attempts} WHERE webhook_id = ?", (str(webhook_id),))
            return tx.count("DELETE FROM {webhooks} WHERE id = ?", (str(webhook_id),)) == 1

    def record(self, webhook_id: UUID, attempt: Attempt, *, moved: tuple[int, int] | None) -> bool:
        """Record an attempt and, if `moved` = (expected, new), move the cursor with it.

        Returns False if the cursor was no longer at `expected` (the attempt is kept).
        """
        with self.db.transaction() as tx:
            tx.count(
                "INSERT INTO {attempts} (webhook_id, doc) VALUES (?, ?)",
                (str(webhook_id), msgspec.json.encode(attempt)),
            )
            return moved is None or self._move(tx, webhook_id, *moved)

    def advance(self, webhook_id: UUID, expected: int, position: int) -> bool:
        """Move the cursor past events the filters skip; False if it had moved meanwhile."""
        with self.db.transaction() as tx:
            return self._move(tx, webhook_id, expected, position)

    def set_status(self, webhook_id: UUID, status: Status, reason: str = "") -> None:
        with self.db.transaction() as tx:
            tx.count(
                "UPDATE {webhooks} SET status = ?, status_reason = ?, version = version + 1 "
                "WHERE id = ?",
                (status.value, reason, str(webhook_id)),
            )

    def rewind(self, webhook_id: UUID, position: int) -> bool:
        """Deliver again from after `position`, re-enabling a disabled subscription."""
        with self.db.transaction() as tx:
            return (
                tx.count(
                    "UPDATE {webhooks} SET position = ?, status = ?, status_reason = '', "
                    "version = version + 1 WHERE id = ?",
                    (position, Status.ACTIVE.value, str(webhook_id)),
                )
                == 1
            )

    def attempts(self, webhook_id: UUID, after: int = 0, limit: int = 100) -> list[Attempt]:
        """Attempts in the order made, after sequence number `after`."""
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT seq, doc FROM {attempts} WHERE webhook_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (str(webhook_id), after, limit),
            )
        return [msgspec.structs.replace(_decode_attempt(bytes(d)), seq=s) for s, d in rows]

    @staticmethod
    def _move(tx: Tx, webhook_id: UUID, expected: int, position: int) -> bool:
        count = tx.count(
            "UPDATE {webhooks} SET position = ? WHERE id = ? AND position = ?",
            (position, str(webhook_id), expected),
        )
        return count == 1

    def _select(self, where: str, params: Sequence[object]) -> list[Subscription]:
        with self.db.transaction() as tx:
            return self._rows(tx, where, params)

    def _rows(self, tx: Tx, where: str, params: Sequence[object]) -> list[Subscription]:
        query = f"SELECT {_SUB_COLUMNS} FROM {{webhooks}} {where}"  # noqa: S608 `where` is ours
        return [
            Subscription(
                id=UUID(i),
                registration=msgspec.structs.replace(
                    _decode_registration(bytes(doc)),
                    secret=self.ring.unwrap(kek, bytes(sealed), _aad(i)).decode(),
                    old_secret=""
                    if old is None
                    else self.ring.unwrap(kek, bytes(old), _old_aad(i)).decode(),
                ),
                position=int(position),
                status=Status(status),
                status_reason=reason,
                version=int(version),
            )
            for i, doc, position, status, reason, sealed, kek, old, version in tx.execute(
                query, params
            )
        ]


def open_webhook_store(config: Config, ring: KeyRing | None = None) -> WebhookStore:
    """The configured store, its secrets wrapped under the configured KEK (KekError if none)."""
    ring = ring or load_ring(config)
    db: Database
    if not config.uses_postgres:
        private_dir(config.data_dir)
        db = SqliteDatabase(
            config.data_dir / "webhooks.sqlite",
            {
                "webhooks": "webhooks",
                "attempts": "webhook_attempts",
                "index": "webhook_attempts_by_webhook",
                "kek": "kek",
                "for_update": "",  # BEGIN IMMEDIATE already holds the only write lock
                "bigint": "INTEGER",
                "serial": "seq INTEGER PRIMARY KEY AUTOINCREMENT",
            },
            label="the webhook store",
            timeout=10.0,
            secure_delete=True,
        )
    else:
        db = PostgresDatabase(
            config.eventsourcing_env(),
            {
                "webhooks": "eportfolio_webhooks",
                "attempts": "eportfolio_webhook_attempts",
                "kek": "eportfolio_webhooks_kek",
            },
            {
                "index": sql.Identifier("eportfolio_webhook_attempts_by_webhook").as_string(),
                "bigint": "bigint",
                "serial": "seq bigserial PRIMARY KEY",
                "for_update": " FOR UPDATE",
            },
            label="webhooks",
        )
    try:
        return WebhookStore(db, ring)
    except BaseException:
        db.close()
        raise


_RELEASE_01 = Step(
    1,
    "release 0.1: subscriptions and their delivery attempts",
    (
        "CREATE TABLE IF NOT EXISTS {webhooks} (id TEXT PRIMARY KEY, "
        "owner_id TEXT NOT NULL, doc {bytes} NOT NULL, position {bigint} NOT NULL, "
        "status TEXT NOT NULL, status_reason TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {attempts} ({serial}, "
        "webhook_id TEXT NOT NULL, doc {bytes} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS {index} ON {attempts} (webhook_id, seq)",
    ),
)


def steps(ring: KeyRing) -> tuple[Step, ...]:
    """The schema's versions (adapters/store/migrations.py); never edit a released step, add one."""

    def seal_every_secret(tx: Tx) -> int:
        current = ring.newest
        tx.execute(RECORD_CURRENT_KEK, (current,))
        rows = tx.execute("SELECT id, doc FROM {webhooks}")
        for webhook_id, doc in rows:
            registration = _decode_registration(bytes(doc))
            tx.execute(
                "UPDATE {webhooks} SET doc = ?, secret_sealed = ?, kek_id = ? WHERE id = ?",
                (
                    _document(registration),
                    ring.wrap(current, registration.secret.encode(), _aad(webhook_id)),
                    current,
                    webhook_id,
                ),
            )
        return len(rows)

    return (
        _RELEASE_01,
        Step(
            2,
            "secrets wrapped under the KEK, out of the registration document",
            (
                "ALTER TABLE {webhooks} ADD COLUMN secret_sealed {bytes}",
                "ALTER TABLE {webhooks} ADD COLUMN kek_id TEXT",
                CURRENT_KEK_TABLE,
            ),
            seal_every_secret,
        ),
        Step(
            3,
            "managed endpoints: a version (the ETag) and the old secret of a rotation",
            (
                "ALTER TABLE {webhooks} ADD COLUMN old_secret_sealed {bytes}",
                "ALTER TABLE {webhooks} ADD COLUMN version {bigint} NOT NULL DEFAULT 1",
            ),
        ),
    )
