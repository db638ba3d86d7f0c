"""Bearer tokens: random secrets, stored only as SHA-256 hashes, each bound to one principal.

A token is shown once, when issued; the store keeps its hash, so a leaked database holds
nothing that authenticates. The secrets carry 256 random bits, so a fast hash is enough (no
password stretching needed) and a lookup is one primary-key read.

Tokens are credentials, not assessment facts: they live beside the event store, in
`tokens.sqlite` or an `api_tokens` table in the PostgreSQL schema, never in the log.

Every token issued now expires (`DEFAULT_LIFETIME` unless the issuer says otherwise) and
records when it was last used, to the minute (a lookup writes at most once a minute per
token, so authenticating stays a read). Tokens issued before expiries existed have none:
`eportfolio tokens list` shows them as never expiring, to be reissued.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from uuid import UUID, uuid4

import msgspec
import psycopg

from adapters.config import Config
from adapters.store.files import private_dir
from adapters.store.migrations import Step, migrate
from adapters.store.sql import Database, PostgresDatabase, Rows, SqliteDatabase
from domain.centre import CentreState
from domain.events import Role
from service.errors import IdempotencyKeyReused

PREFIX = "ep_"
DEFAULT_LIFETIME = timedelta(days=90)
USE_RECORDED_EVERY = 60.0  # seconds: how stale `last_used_at` may be
HELD_TOKENS = 10_000  # tokens `held` answers for without a read (all dropped when full)


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Who a token speaks for: a person (or integrator) in a role, usually at one centre."""

    token_id: UUID
    subject_id: UUID
    role: Role
    centre_id: UUID | None
    label: str
    created_at: datetime
    expires_at: datetime | None = None  # None: issued before tokens expired
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "live"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore(Protocol):
    def issue(
        self,
        *,
        subject_id: UUID,
        role: Role,
        centre_id: UUID | None,
        label: str = "",
        key: str | None = None,
        fingerprint: str = "",
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> tuple[TokenRecord, str | None]:
        """A new token for the subject, expiring after `lifetime`: its record and the secret,
        which is never stored.

        With an idempotency `key` already used, the first token's record and no secret
        (it was shown once); with a different `fingerprint`, IdempotencyKeyReused.
        """
        ...

    def find(self, secret: str) -> TokenRecord | None:
        """The live (not revoked, not expired) token with this secret; notes its use."""
        ...

    def held(self, secret: str) -> TokenRecord | None:
        """What `find` would answer, from memory, when that is known without a read: the
        token `find` last found, if nothing was written to the store since. None: ask
        `find` (a refused token is never held)."""
        ...

    def tokens(self, centre_id: UUID | None = None) -> list[TokenRecord]:
        """Every token (of one centre), revoked and expired ones too, oldest first."""
        ...

    def revoke(self, token_id: UUID) -> bool: ...

    def revoke_label(self, label: str) -> int: ...

    def revoke_subject(self, subject_id: UUID) -> int:
        """Revoke every live token of a person (their data was erased)."""
        ...

    def discard(self, token_id: UUID) -> None:
        """Forget a token entirely: undoes an `issue` whose write failed."""
        ...

    def close(self) -> None: ...


class TokenRefused(ValueError):
    """A token that must not be issued: says why, which rule and which field."""

    def __init__(self, message: str, rule: str, field: str) -> None:
        super().__init__(message)
        self.rule, self.field = rule, field


def check_holder(
    centre_of: Callable[[UUID], CentreState],
    role: Role,
    subject_id: UUID | None,
    centre_id: UUID | None,
) -> None:
    """A token only for someone the centre's records know (EVs: their allocations decide).

    Raises TokenRefused; `centre_of` raises NotFound for an unknown centre.
    """
    if role is Role.EV:
        if centre_id is not None:
            msg = "an EV's reach is the centres they are allocated to: omit centre_id"
            raise TokenRefused(msg, "ev_token_not_centre_bound", "centre_id")
        return
    if role is Role.ADMIN:
        msg = "the administrator's token is EPORTFOLIO_ADMIN_TOKEN, not an issued one"
        raise TokenRefused(msg, "role_not_issued", "role")
    if centre_id is None:
        raise TokenRefused(f"a {role} token needs centre_id", "centre_required", "centre_id")
    centre = centre_of(centre_id)
    if role is Role.INTEGRATOR:
        return
    known = (
        subject_id in centre.learners
        if role is Role.LEARNER
        else subject_id is not None and centre.staff_with_role(subject_id, role) is not None
    )
    if not known:
        msg = f"{subject_id} is not a {role} of centre {centre_id}"
        raise TokenRefused(msg, "not_found", "subject_id")


RevokeBy = Literal["token_id", "label", "subject_id"]
_SELECT = (
    "SELECT token_id, subject_id, role, centre_id, label, created_at, expires_at, "
    "last_used_at, revoked_at"
)


class SqlTokenStore:
    """The token store over one store database (SQLite file or PostgreSQL table)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._used: dict[str, float] = {}  # token hash -> when its use was last written
        self._used_lock = threading.Lock()
        # `held`: token hash -> (record, the store's stamp before `find` read it). Only on
        # SQLite, whose `data_version` says whether another connection (process) committed.
        self._held: dict[str, tuple[TokenRecord, tuple[int, int]]] = {}
        self._writes = 0  # this store's own writes, counted before and after each
        self._holds = db.dialect == "sqlite"
        migrate(db, "tokens", STEPS)

    def close(self) -> None:
        self.db.close()

    def issue(
        self,
        *,
        subject_id: UUID,
        role: Role,
        centre_id: UUID | None,
        label: str = "",
        key: str | None = None,
        fingerprint: str = "",
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> tuple[TokenRecord, str | None]:
        if key is not None:
            earlier = self._by_key(key, fingerprint)
            if earlier is not None:
                return earlier, None
        secret, now = new_secret(), datetime.now(UTC)
        record = TokenRecord(
            token_id=uuid4(),
            subject_id=subject_id,
            role=role,
            centre_id=centre_id,
            label=label,
            created_at=now,
            expires_at=now + lifetime,
        )
        try:
            self._insert(secret, record, key, fingerprint)
        except (sqlite3.IntegrityError, psycopg.IntegrityError):
            earlier = None if key is None else self._by_key(key, fingerprint)
            if earlier is None:
                raise
            return earlier, None  # a concurrent request with the same key won
        return record, secret

    def _insert(self, secret: str, record: TokenRecord, key: str | None, fingerprint: str) -> None:
        self._write(
            "INSERT INTO {table} (token_hash, token_id, subject_id, role, centre_id, label, "
            "created_at, expires_at, idem_key, idem_fingerprint) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token_hash(secret),
                str(record.token_id),
                str(record.subject_id),
                record.role.value,
                None if record.centre_id is None else str(record.centre_id),
                record.label,
                record.created_at.isoformat(),
                None if record.expires_at is None else record.expires_at.isoformat(),
                None if key is None else token_hash(key),
                fingerprint,
            ),
        )

    def _by_key(self, key: str, fingerprint: str) -> TokenRecord | None:
        rows = self.db.execute(
            _SELECT + " , idem_fingerprint FROM {table} WHERE idem_key = ?",
            (token_hash(key),),
        )
        if not rows:
            return None
        if rows[0][-1] != fingerprint:
            raise IdempotencyKeyReused(
                "this idempotency key was used for a different request", field="Idempotency-Key"
            )
        return _record(rows[0][:-1])

    def find(self, secret: str) -> TokenRecord | None:
        hashed, now = token_hash(secret), datetime.now(UTC)
        stamp = self._stamp() if self._holds else None  # before the read: a write after shows
        rows = self.db.execute(
            _SELECT + " FROM {table} WHERE token_hash = ? AND revoked_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (hashed, now.isoformat()),
        )
        if not rows:
            return None
        self._note_use(hashed, now)
        record = _record(rows[0])
        if stamp is not None:
            if len(self._held) >= HELD_TOKENS:
                self._held.clear()
            self._held[hashed] = (record, stamp)
        return record

    def held(self, secret: str) -> TokenRecord | None:
        """The token `find` last found for this secret, if the store is unchanged since.

        Revocation holds at once: any write to the store, by this process or another,
        changes the stamp (`PRAGMA data_version` counts other connections' commits, this
        store counts its own), and the next request reads again. Nor is a use left
        unnoted: when `last_used_at` is due, the answer is None and `find` writes it.
        """
        if not self._holds:
            return None
        hashed = token_hash(secret)
        entry = self._held.get(hashed)
        if entry is None:
            return None
        record, stamp = entry
        if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
            return None
        if time.monotonic() - self._used.get(hashed, -USE_RECORDED_EVERY) >= USE_RECORDED_EVERY:
            return None
        now = self._stamp(wait=False)  # held() runs on the event loop: never wait there
        return record if now is not None and now == stamp else None

    def _stamp(self, *, wait: bool = True) -> tuple[int, int] | None:
        """Changes whenever anything was committed to the store: by another connection
        (SQLite's `data_version`), or by this one (counted around each of its writes).
        None, without `wait`, if the connection is in use by a write."""
        writes = self._writes
        query = "PRAGMA data_version"
        if wait or not isinstance(self.db, SqliteDatabase):
            rows: Rows | None = self.db.execute(query)
        else:
            rows = self.db.execute_unless_busy(query)
        if rows is None:
            return None
        (version,) = rows[0]
        return int(version), writes

    def _write(self, query: str, params: Sequence[object]) -> Rows:
        """A statement that changes the store: counted before and after, so a `find` that
        overlaps it is never held."""
        self._count_write()
        try:
            return self.db.execute(query, params)
        finally:
            self._count_write()

    def _count_write(self) -> None:
        with self._used_lock:  # never a lost count: a stamp taken once must not come back
            self._writes += 1

    def _note_use(self, hashed: str, now: datetime) -> None:
        """Write `last_used_at` if it was not written for this token within the minute."""
        tick = time.monotonic()
        with self._used_lock:
            if tick - self._used.get(hashed, -USE_RECORDED_EVERY) < USE_RECORDED_EVERY:
                return
            self._used[hashed] = tick
            if len(self._used) > 100_000:  # forget the oldest notes; at worst one more write
                for stale in list(self._used)[:50_000]:
                    del self._used[stale]
        self._write(
            "UPDATE {table} SET last_used_at = ? WHERE token_hash = ?",
            (now.isoformat(), hashed),
        )

    def tokens(self, centre_id: UUID | None = None) -> list[TokenRecord]:
        if centre_id is None:
            rows = self.db.execute(_SELECT + " FROM {table} ORDER BY created_at", ())
        else:
            rows = self.db.execute(
                _SELECT + " FROM {table} WHERE centre_id = ? ORDER BY created_at",
                (str(centre_id),),
            )
        return [_record(row) for row in rows]

    def revoke(self, token_id: UUID) -> bool:
        return bool(self._revoke_where("token_id", str(token_id)))

    def revoke_label(self, label: str) -> int:
        return self._revoke_where("label", label)

    def revoke_subject(self, subject_id: UUID) -> int:
        return self._revoke_where("subject_id", str(subject_id))

    def _revoke_where(self, column: RevokeBy, value: str) -> int:
        """Revoke the live tokens whose `column` is `value` (the column is never input)."""
        rows = self._write(
            f"UPDATE {{table}} SET revoked_at = ? WHERE {column} = ? "  # noqa: S608
            "AND revoked_at IS NULL RETURNING token_id",
            (datetime.now(UTC).isoformat(), value),
        )
        return len(rows)

    def discard(self, token_id: UUID) -> None:
        self._write("DELETE FROM {table} WHERE token_id = ?", (str(token_id),))


def _record(row: Sequence[Any]) -> TokenRecord:
    token_id, subject_id, role, centre_id, label, created, expires, used, revoked = row
    return TokenRecord(
        token_id=UUID(token_id),
        subject_id=UUID(subject_id),
        role=Role(role),
        centre_id=None if centre_id is None else UUID(centre_id),
        label=label,
        created_at=datetime.fromisoformat(created),
        expires_at=_when(expires),
        last_used_at=_when(used),
        revoked_at=_when(revoked),
    )


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


STEPS = (
    Step(
        1,
        "release 0.1: tokens by hash",
        (
            """CREATE TABLE IF NOT EXISTS {table} (
    token_hash TEXT PRIMARY KEY, token_id TEXT NOT NULL UNIQUE, subject_id TEXT NOT NULL,
    role TEXT NOT NULL, centre_id TEXT, label TEXT NOT NULL, created_at TEXT NOT NULL,
    revoked_at TEXT, idem_key TEXT UNIQUE, idem_fingerprint TEXT NOT NULL DEFAULT '')""",
        ),
    ),
    Step(
        2,
        "tokens expire and record their last use (earlier ones: no expiry)",
        (
            "ALTER TABLE {table} ADD COLUMN expires_at TEXT",
            "ALTER TABLE {table} ADD COLUMN last_used_at TEXT",
        ),
    ),
)
"""The schema's versions (adapters/store/migrations.py); never edit a released step, add one."""


def open_token_store(config: Config) -> TokenStore:
    if config.uses_postgres:
        db: Database = PostgresDatabase(
            config.eventsourcing_env(), {"table": "api_tokens"}, label="api-tokens"
        )
    else:
        private_dir(config.data_dir)
        db = SqliteDatabase(
            config.data_dir / "tokens.sqlite", {"table": "api_tokens"}, label="the token store"
        )
    try:
        return SqlTokenStore(db)
    except BaseException:
        db.close()
        raise
