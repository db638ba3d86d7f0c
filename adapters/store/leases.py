"""Leases on PostgreSQL: a background role held by one process at a time (docs/adr/0020).

A lease is a session-level advisory lock (`pg_advisory_lock`) taken on a connection of its
own, keyed by the role's name and the store's schema. It is held for as long as that
session lives: when the holder dies, or its connection is cut, PostgreSQL ends the session
and grants the lock to the next process waiting for it, at once. The holder checks its own
connection every few seconds (`alive()`, one `SELECT 1`); TCP keep-alives and a user
timeout, on the client's side and (per session) the server's, bound how long a silent
network or a dead host can hide a dead session: about ten seconds.

An advisory lock is not a fencing token: a holder cut off from the database may still act
until its next `alive()` fails. Every role writes through a conditional update (a tracked
position, a cursor), so a stale holder's late write is refused, not applied twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import make_conninfo

from adapters.store.sql import postgres_conninfo

CONNECT_SECONDS = 5
KEEPALIVE = {  # libpq: a dead peer is noticed within ~10 s even on a silent network
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 10_000,
}
SERVER_KEEPALIVE = (  # the server's side of the session: a dead client host frees its locks
    "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=2 "
    "-c tcp_user_timeout=10000"
)
APPLICATION = "eportfolio-lease"


def lease_key(schema: str, role: str) -> int:
    """The role's advisory-lock key: a signed 64-bit number from the schema and the name."""
    digest = hashlib.blake2b(f"eportfolio:{schema}:{role}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def schema_of(env: Mapping[str, str]) -> str:
    return env.get("POSTGRES_SCHEMA", "").strip() or "public"


class Lease:
    """One role's lease for one process, driven by one thread (`interrupt` from any)."""

    def __init__(self, env: Mapping[str, str], role: str) -> None:
        self.env = dict(env)
        self.role = role
        self.key = lease_key(schema_of(env), role)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lease, waiting up to `wait` seconds for its holder's session to end.

        A waiting process sits in PostgreSQL's lock queue (no polling): the lock is granted
        the moment the holder's session ends. False if it is still held after `wait` (or
        `interrupt()` was called). Raises psycopg.Error when the database cannot be reached.
        """
        if self._held:
            return True
        conn = self._connection()
        try:
            if wait <= 0:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
                self._held = bool(row and row[0])
                return self._held
            conn.execute(f"SET lock_timeout = {max(1, round(wait * 1000))}")
            conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
            return False
        except psycopg.Error:
            self._drop()
            raise
        self._held = True
        return True

    def interrupt(self) -> None:
        """End a wait in `acquire` now (another thread is stopping the role runner)."""
        conn = self._conn
        if conn is not None and not self._held:
            with contextlib.suppress(psycopg.Error):  # else the wait ends at its lock_timeout
                conn.cancel_safe(timeout=2.0)

    def alive(self) -> bool:
        """Whether the lease is still held: its session answers (else it is dropped)."""
        conn = self._conn
        if conn is None or not self._held:
            return False
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            self._drop()
            return False
        return True

    def release(self) -> None:
        """Give the lease up (closing the session frees the lock, whatever state it is in)."""
        self._drop()

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None:
            name = f"{APPLICATION} {self.role} {os.getpid()}@{socket.gethostname()}"[:63]
            conninfo = make_conninfo(
                postgres_conninfo(self.env),
                connect_timeout=CONNECT_SECONDS,
                application_name=name,
                options=SERVER_KEEPALIVE,
                **KEEPALIVE,
            )
            self._conn = psycopg.connect(conninfo, autocommit=True)
        return self._conn

    def _drop(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            conn.close()


@dataclass(frozen=True)
class Holder:
    role: str
    pid: int  # the holding session's server process (pg_stat_activity.pid)
    application: str  # "eportfolio-lease <role> <os pid>@<host>"

    @property
    def os_pid(self) -> int:
        """The holding process's own pid, from its application name."""
        return int(self.application.split(" ")[2].split("@")[0])


def holders(env: Mapping[str, str], roles: list[str]) -> dict[str, Holder]:
    """Who holds each of `roles` now (roles no one holds are left out)."""
    keys = {lease_key(schema_of(env), role): role for role in roles}
    query = (
        "SELECT ((l.classid::bigint << 32) | l.objid::bigint) AS key, a.pid, "
        "a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    found: dict[str, Holder] = {}
    with psycopg.connect(postgres_conninfo(env), connect_timeout=CONNECT_SECONDS) as conn:
        for key, pid, application in conn.execute(query).fetchall():
            role = keys.get(int(key))
            if role is not None:
                found[role] = Holder(role, int(pid), str(application))
    return found
