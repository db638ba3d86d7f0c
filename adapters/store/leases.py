"""Leases on PostgreSQL: a background role held by one process at a time (docs/adr/0020).

A lease is a session-level advisory lock (`pg_advisory_lock`) keyed by the role's name and
the store's schema; one session (`LeaseSession`) holds all of a process's leases. A lease is
held for as long as that session lives: when the holder dies, or its connection is cut,
PostgreSQL ends the session and grants the lock to the next process waiting for it, at once.
The holder checks its connection every few seconds (`alive()`, one `SELECT 1`); TCP
keep-alives and a user timeout, on the client's side and (per session) the server's, bound
how long a silent network or a dead host can hide a dead session: about ten seconds.

An advisory lock is not a fencing token: a holder cut off from the database may still act
until its next `alive()` fails. Every role writes through a conditional update (a tracked
position, a cursor), so a stale holder's late write is refused, not applied twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import LiteralString

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


class LeaseSession:
    """One PostgreSQL session holding any number of leases (a process's roles share one).

    Driven by one thread; `interrupt()` may be called from any. A process's leases then end
    together: when it dies its one session ends and every lock it held is granted at once
    to whoever waits for it. Every method but `interrupt` raises psycopg.Error when the
    database cannot be reached, after dropping the session (so `held` is then empty).
    """

    def __init__(self, env: Mapping[str, str], label: str = "roles") -> None:
        self.env = dict(env)
        self.label = label  # in application_name: "eportfolio-lease <label> <pid>@<host>"
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._held: set[int] = set()
        self._waiting = False
        self._cancelling = threading.Lock()  # a cancel lands in the wait it was sent for
        self._lock_timeout = 0  # ms, as last set on this session

    @property
    def held(self) -> frozenset[int]:
        """The keys this session holds (as far as it knows: `alive()` finds out)."""
        return frozenset(self._held)

    def try_acquire(self, keys: Collection[int]) -> set[int]:
        """Take whichever of `keys` are free now, in one statement; returns those taken."""
        wanted = [key for key in keys if key not in self._held]
        if not wanted:
            return set()
        rows = self._run(
            "SELECT k FROM unnest(%s::bigint[]) AS k WHERE pg_try_advisory_lock(k)", (wanted,)
        )
        taken = {int(str(row[0])) for row in rows}
        self._held |= taken
        return taken

    def wait(self, key: int, seconds: float) -> bool:
        """Wait in PostgreSQL's lock queue up to `seconds` for `key` (granted the moment its
        holder's session ends); False on the timeout or an `interrupt()`."""
        if key in self._held:
            return True
        conn = self._connection()
        timeout = max(1, round(seconds * 1000))
        self._waiting = True
        try:
            if timeout != self._lock_timeout:
                conn.execute(f"SET lock_timeout = {timeout}")
                self._lock_timeout = timeout
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        except psycopg.errors.LockNotAvailable:
            return False
        except psycopg.errors.QueryCanceled:
            # A cancel may land just after the grant: a session-level lock outlives the
            # statement's error, so ask whether it is held (else no one could have it).
            if not self._holds(key):
                return False
        except psycopg.Error:
            self._drop()
            raise
        finally:
            with self._cancelling:  # no cancel still on its way when the next statement runs
                self._waiting = False
        self._held.add(key)
        return True

    def _holds(self, key: int) -> bool:
        rows = self._run(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
            "AND granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = %s",
            (key,),
        )
        return bool(rows)

    def release(self, key: int) -> None:
        """Give one lease up; the others stay held."""
        if key in self._held:
            self._held.discard(key)
            self._run("SELECT pg_advisory_unlock(%s)", (key,))

    def alive(self) -> bool:
        """Whether the session answers (else it is dropped, and with it every lease)."""
        if self._conn is None:
            return False
        try:
            self._run("SELECT 1", ())
        except psycopg.Error:
            return False
        return True

    def interrupt(self) -> None:
        """End a `wait` now (another thread wants the session's thread back)."""
        with self._cancelling:
            conn = self._conn
            if conn is not None and self._waiting:
                with contextlib.suppress(psycopg.Error):  # else the wait ends at lock_timeout
                    conn.cancel_safe(timeout=2.0)

    def close(self) -> None:
        """Give every lease up (closing the session frees its locks, whatever its state)."""
        self._drop()

    def _run(self, query: LiteralString, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        conn = self._connection()
        try:
            try:
                return conn.execute(query, params).fetchall()
            except psycopg.errors.QueryCanceled:  # an interrupt meant for a wait just ended
                return conn.execute(query, params).fetchall()
        except psycopg.Error:
            self._drop()
            raise

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None:
            name = f"{APPLICATION} {self.label} {os.getpid()}@{socket.gethostname()}"[:63]
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
        conn, self._conn = self._conn, None
        self._held.clear()
        self._lock_timeout = 0
        if conn is not None:
            conn.close()


class Lease:
    """One role's lease on a session of its own (a role runner shares one session instead)."""

    def __init__(self, env: Mapping[str, str], role: str) -> None:
        self.role = role
        self.key = lease_key(schema_of(env), role)
        self._session = LeaseSession(env, role)

    @property
    def held(self) -> bool:
        return self.key in self._session.held

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lease, waiting up to `wait` seconds for its holder's session to end.

        A waiting process sits in PostgreSQL's lock queue (no polling): the lock is granted
        the moment the holder's session ends. False if it is still held after `wait` (or
        `interrupt()` was called). Raises psycopg.Error when the database cannot be reached.
        """
        if wait <= 0:
            return bool(self._session.try_acquire([self.key])) or self.held
        return self._session.wait(self.key, wait)

    def interrupt(self) -> None:
        """End a wait in `acquire` now (another thread is stopping the role runner)."""
        self._session.interrupt()

    def alive(self) -> bool:
        """Whether the lease is still held: its session answers (else it is dropped)."""
        return self.held and self._session.alive()

    def release(self) -> None:
        """Give the lease up (closing the session frees the lock, whatever state it is in)."""
        self._session.close()


SETUP_SECONDS = 120  # how long a starting process waits for another's set-up


@contextlib.contextmanager
def schema_setup(env: Mapping[str, str] | None) -> Iterator[None]:
    """One process of a schema at a time opens its stores (None: SQLite, no lock needed).

    Opening them creates what is missing and replaces the stored functions (`CREATE OR
    REPLACE FUNCTION`, the library's and the key store's): two processes doing that at the
    same moment collide ("tuple concurrently updated"), and under `serve --workers N` the
    API processes all start at once; one failing to start stops uvicorn's supervisor.
    """
    if env is None:
        yield
        return
    key = lease_key(schema_of(env), "setup")
    conninfo = make_conninfo(postgres_conninfo(env), connect_timeout=CONNECT_SECONDS)
    with psycopg.connect(conninfo, autocommit=True) as conn:  # closing it frees the lock
        conn.execute(f"SET lock_timeout = {SETUP_SECONDS * 1000}")
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield


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
