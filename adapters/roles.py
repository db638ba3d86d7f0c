"""The background roles of a deployment, each run by one process at a time (docs/adr/0020).

A role is what follows the log on behalf of everyone: the projection follower, webhook
delivery, xAPI delivery, NATS publishing, the checkpoint schedule. `RoleRunner` runs them in
one of three modes:

- `ALL` (SQLite, the embedded default): every role runs in this process, no leases.
- `LEASED` (PostgreSQL): one thread keeps all of this process's leases on one session
  (adapters.store.leases.LeaseSession): it takes the free ones, waits in PostgreSQL's lock
  queue for one it lacks, and checks the session every `check_seconds`; a role runs while
  its lease is held. A lost lease stops the role, and a role that stops on an error gives
  its lease up for `wait_seconds`; whoever takes the lease next starts it from the role's
  stored position (views, cursors), so nothing is lost.
- `NONE`: an API-only process; roles added to it never run.

Roles can be added after the runner started (the streams open after the projections).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psycopg

from adapters.store.leases import LeaseSession, lease_key, schema_of

log = logging.getLogger(__name__)


class Mode(enum.Enum):
    ALL = "all"
    LEASED = "leased"
    NONE = "none"


@dataclass(frozen=True)
class Role:
    """A named background duty: started when its lease is taken, stopped when it is lost.

    `tick` runs at every lease check while held: a role whose work others register in
    other processes (webhooks, LRSs) looks for it there. `failed` says the role's work has
    stopped on an error: its holder then stops it and gives its lease up, so another
    process (or this one, later) starts it again from its stored position.
    """

    name: str
    start: Callable[[], None]
    stop: Callable[[], None]
    tick: Callable[[], None] | None = None
    failed: Callable[[], bool] | None = None


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
        self.wait_seconds = wait_seconds  # a failed role waits this long before it is retried
        self.on_change = on_change
        self._roles: dict[str, Role] = {}
        self._active: set[str] = set()  # the roles started here
        self._lock = threading.Lock()
        self._started = False
        self._keeper: _Keeper | None = None

    @property
    def held(self) -> set[str]:
        """The roles running in this process now."""
        with self._lock:
            return set(self._active)

    def roles(self) -> dict[str, Role]:
        """The roles added (and not removed), in the order they were added."""
        with self._lock:
            return dict(self._roles)

    def add(self, role: Role) -> None:
        """Run `role` too (at once if the runner has started)."""
        if self.mode is Mode.NONE:
            return
        with self._lock:
            if role.name in self._roles:
                raise ValueError(f"role {role.name} is already added")
            self._roles[role.name] = role
            started, keeper = self._started, self._keeper
        if started and self.mode is Mode.ALL:
            self._run_here(role)
        elif keeper is not None:
            keeper.poke()

    def remove(self, name: str) -> None:
        """Stop `name` if it runs here and give its lease up."""
        with self._lock:
            role = self._roles.pop(name, None)
            keeper = self._keeper
        if keeper is not None and keeper.is_alive():
            keeper.settle()  # the keeper stops it and gives its lease up
        elif role is not None and self.mark(name, held=False):
            role.stop()
            self.changed(name, held=False)

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            roles = list(self._roles.values())
            if self.mode is Mode.LEASED:
                self._keeper = _Keeper(self)
        if self._keeper is not None:
            self._keeper.start()
        elif self.mode is Mode.ALL:
            for role in roles:
                self._run_here(role)

    def close(self) -> None:
        """Stop every role (the last added first) and give every lease up."""
        with self._lock:
            started, self._started = self._started, False
            keeper, self._keeper = self._keeper, None
        if not started:
            return
        if keeper is not None:
            keeper.close()
        for name in reversed(list(self.roles())):
            self.remove(name)

    def mark(self, name: str, *, held: bool) -> bool:
        """Note that `name` runs here now (or not); False if that was so already."""
        with self._lock:
            if (name in self._active) == held:
                return False
            if held:
                self._active.add(name)
            else:
                self._active.discard(name)
            return True

    def _run_here(self, role: Role) -> None:
        role.start()
        self.mark(role.name, held=True)
        self.changed(role.name, held=True)

    def changed(self, name: str, *, held: bool) -> None:
        if self.on_change is not None:
            self.on_change(name, held)


class _Keeper(threading.Thread):
    """This process's leases, all on one session, and the roles they let it run.

    Each round takes whichever wanted leases are free (one statement), starts their roles,
    ticks and checks the roles held, then waits: in PostgreSQL's lock queue for one lease it
    lacks (granted the moment its holder's session ends; a dead process's leases all end at
    once, so the rest are taken at the next round, straight after), or, holding every
    lease, for `check_seconds` before it checks the session. Either way a round lasts at
    most `check_seconds`, so a lease freed by a process this one is not waiting on is
    taken within that.
    """

    def __init__(self, runner: RoleRunner) -> None:
        super().__init__(name="role-leases")
        self.runner = runner
        self.session = LeaseSession(runner.env)
        self.schema = schema_of(runner.env)
        self.stopping = threading.Event()
        self._poked = threading.Event()
        self._settled = threading.Condition()
        self._rounds = 0
        self._not_before: dict[str, float] = {}  # a role that failed waits until then
        self._turn = 0
        self._running: dict[str, Role] = {}  # started here, in the order they were taken

    def poke(self) -> None:
        """Start a round now (a role was added or removed, or the runner stops)."""
        self._poked.set()
        self.session.interrupt()

    def settle(self) -> None:
        """Return once a round has started and ended since this call (what was removed
        before it is stopped and its lease given up)."""
        if threading.current_thread() is self:
            return  # called from a role's own start or tick: the next round does it
        with self._settled:
            target = self._rounds + 2
            while self._rounds < target and self.is_alive():
                self.poke()
                self._settled.wait(0.5)

    def close(self) -> None:
        self.stopping.set()
        while self.is_alive():  # a cancel sent just before a wait began is lost: again
            self.poke()
            self.join(0.5)

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self._round()
                except psycopg.Error as error:
                    log.warning("roles: cannot reach PostgreSQL (%s); retrying", error)
                    self._give_up_all("lease session lost")
                    self.stopping.wait(self.runner.retry_seconds)
                with self._settled:
                    self._rounds += 1
                    self._settled.notify_all()
        finally:
            self._give_up_all(None)
            self.session.close()
            with self._settled:
                self._settled.notify_all()

    def _key(self, name: str) -> int:
        return lease_key(self.schema, name)

    def _round(self) -> None:
        self._poked.clear()
        roles = self.runner.roles()
        running = self.runner.held
        for name in running - set(roles):  # removed
            self._give_up(name, None)
        if running and not self.session.held:
            self._give_up_all("lease lost (connection gone)")
        now = time.monotonic()
        wanted = [
            name
            for name in roles
            if name not in self.runner.held and self._not_before.get(name, 0.0) <= now
        ]
        taken = self.session.try_acquire([self._key(name) for name in wanted])
        for name in wanted:
            if self._key(name) in taken and not self.stopping.is_set():
                self._take(roles[name])
        for name in self.runner.held & set(roles):
            self._check(roles[name])
        if self.stopping.is_set() or self._poked.is_set():
            return
        lacking = [name for name in wanted if name not in self.runner.held]
        if lacking:
            self._turn = (self._turn + 1) % len(lacking)
            name = lacking[self._turn]
            if self.session.wait(self._key(name), self.runner.check_seconds):
                self._take(roles[name])
            elif self.runner.held and not self.session.held:
                self._give_up_all("lease lost (connection gone)")
            return
        self._poked.wait(self.runner.check_seconds)
        if self.runner.held and not self.session.alive():
            self._give_up_all("lease lost (connection gone)")

    def _take(self, role: Role) -> None:
        name = role.name
        try:
            role.start()
        except Exception:
            log.exception("role %s failed to start; giving its lease up", name)
            self._back_off(name, self.runner.retry_seconds)
            return
        self._running[name] = role
        self.runner.mark(name, held=True)
        log.info("role %s: taken by this process", name)
        self.runner.changed(name, held=True)

    def _check(self, role: Role) -> None:
        try:
            if role.failed is not None and role.failed():
                log.error("role %s stopped on an error; giving its lease up", role.name)
                self._give_up(role.name, None)
                self._back_off(role.name, self.runner.wait_seconds)
                return
            if role.tick is not None:
                role.tick()
        except Exception:
            log.exception("role %s: a periodic check failed", role.name)

    def _back_off(self, name: str, seconds: float) -> None:
        """Give `name`'s lease up and leave it to others for `seconds`."""
        self.session.release(self._key(name))
        self._not_before[name] = time.monotonic() + seconds

    def _give_up(self, name: str, why: str | None) -> None:
        role = self._running.pop(name, None)
        if role is None or not self.runner.mark(name, held=False):
            return
        if why is not None:
            log.warning("role %s: %s; stopping it", name, why)
        try:
            role.stop()
        finally:
            with contextlib.suppress(psycopg.Error):
                self.session.release(self._key(name))
            log.info("role %s: given up by this process", name)
            self.runner.changed(name, held=False)

    def _give_up_all(self, why: str | None) -> None:
        for name in reversed(list(self._running)):  # the last taken first
            self._give_up(name, why)
