"""The background roles of a deployment, each run by one process at a time (docs/adr/0020).

A role is what follows the log on behalf of everyone: the projection follower, webhook
delivery, xAPI delivery, NATS publishing, the checkpoint schedule. `RoleRunner` runs them in
one of three modes:

- `ALL` (SQLite, the embedded default): every role runs in this process, no leases.
- `LEASED` (PostgreSQL): a thread per role waits for the role's lease
  (adapters.store.leases: in PostgreSQL's lock queue, asking again every `wait_seconds`);
  while this process holds it the role runs, and the lease is checked every
  `check_seconds`. A lost lease stops the role; whoever takes the lease next starts it from
  the role's stored position (views, cursors), so nothing is lost.
- `NONE`: an API-only process; roles added to it never run.

Roles can be added after the runner started (the streams open after the projections).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psycopg

from adapters.store.leases import Lease

log = logging.getLogger(__name__)


class Mode(enum.Enum):
    ALL = "all"
    LEASED = "leased"
    NONE = "none"


@dataclass(frozen=True)
class Role:
    """A named background duty: started when its lease is taken, stopped when it is lost.

    `tick` runs at every lease check while held: a role whose work others register in
    other processes (webhooks, LRSs) looks for it there.
    """

    name: str
    start: Callable[[], None]
    stop: Callable[[], None]
    tick: Callable[[], None] | None = None


Changed = Callable[[str, bool], None]
"""(role, held now?) after this process takes or gives up a role."""


class RoleRunner:
    def __init__(
        self,
        mode: Mode,
        env: Mapping[str, str] | None = None,
        *,
        check_seconds: float = 2.0,
        wait_seconds: float = 10.0,
        retry_seconds: float = 1.0,
        on_change: Changed | None = None,
    ) -> None:
        if mode is Mode.LEASED and env is None:
            raise ValueError("leased roles need the PostgreSQL settings")
        self.mode, self.env = mode, dict(env or {})
        self.check_seconds, self.retry_seconds = check_seconds, retry_seconds
        self.wait_seconds = wait_seconds
        self.on_change = on_change
        self._roles: dict[str, Role] = {}
        self._holders: dict[str, _Holder] = {}
        self._active: set[str] = set()  # ALL: the roles started here
        self._lock = threading.Lock()
        self._started = False

    @property
    def held(self) -> set[str]:
        """The roles running in this process now."""
        with self._lock:
            if self.mode is Mode.ALL:
                return set(self._active)
            return {name for name, holder in self._holders.items() if holder.running}

    def add(self, role: Role) -> None:
        """Run `role` too (at once if the runner has started)."""
        if self.mode is Mode.NONE:
            return
        with self._lock:
            if role.name in self._roles:
                raise ValueError(f"role {role.name} is already added")
            self._roles[role.name] = role
            if self._started:
                self._begin(role)

    def remove(self, name: str) -> None:
        """Stop `name` if it runs here and give its lease up."""
        with self._lock:
            role = self._roles.pop(name, None)
            holder = self._holders.pop(name, None)
            active = name in self._active
            self._active.discard(name)
        if holder is not None:
            holder.close()
        elif role is not None and active:
            role.stop()
            self.changed(name, held=False)

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            for role in self._roles.values():
                self._begin(role)

    def close(self) -> None:
        """Stop every role (the last added first) and give every lease up."""
        with self._lock:
            started, self._started = self._started, False
        if not started:
            return
        for name in reversed(list(self._roles)):
            self.remove(name)

    def _begin(self, role: Role) -> None:
        if self.mode is Mode.ALL:
            role.start()
            self._active.add(role.name)
            self.changed(role.name, held=True)
            return
        holder = self._holders[role.name] = _Holder(self, role)
        holder.start()

    def changed(self, name: str, *, held: bool) -> None:
        if self.on_change is not None:
            self.on_change(name, held)


class _Holder(threading.Thread):
    """Takes one role's lease when it is free and runs the role while it holds it."""

    def __init__(self, runner: RoleRunner, role: Role) -> None:
        super().__init__(name=f"role-{role.name}")
        self.runner, self.role = runner, role
        self.lease = Lease(runner.env, role.name)
        self.stopping = threading.Event()
        self.running = False

    def close(self) -> None:
        self.stopping.set()
        while self.is_alive():  # a cancel sent just before the wait began is lost: again
            self.lease.interrupt()
            self.join(0.5)

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                taken = self._take()
                if taken and not self.stopping.is_set():
                    self._hold()  # returns when the lease is lost: let another take it first
                    self.stopping.wait(self.runner.retry_seconds)
        finally:
            self.lease.release()

    def _take(self) -> bool:
        try:
            return self.lease.acquire(wait=self.runner.wait_seconds)
        except psycopg.Error as error:
            log.warning("role %s: cannot reach PostgreSQL (%s); retrying", self.role.name, error)
            self.stopping.wait(self.runner.retry_seconds)
            return False

    def _hold(self) -> None:
        name = self.role.name
        try:
            self.role.start()
        except Exception:
            log.exception("role %s failed to start; giving its lease up", name)
            self.lease.release()
            self.stopping.wait(self.runner.retry_seconds)
            return
        self.running = True
        log.info("role %s: taken by this process", name)
        self.runner.changed(name, held=True)
        try:
            while not self.stopping.wait(self.runner.check_seconds):
                if not self.lease.alive():
                    log.warning("role %s: lease lost (connection gone); stopping it", name)
                    return
                if self.role.tick is not None:
                    self._tick()
        finally:
            self.running = False
            try:
                self.role.stop()
            finally:
                self.lease.release()
                log.info("role %s: given up by this process", name)
                self.runner.changed(name, held=False)

    def _tick(self) -> None:
        try:
            if self.role.tick is not None:
                self.role.tick()
        except Exception:
            log.exception("role %s: a periodic check failed", self.role.name)
