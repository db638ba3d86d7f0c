"""Role runners on a real PostgreSQL: each role runs in one process at a time, and moves."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from adapters.config import Config, postgres_env
from adapters.http.dependencies import open_services
from adapters.http.settings import HttpSettings
from adapters.roles import Mode, Role, RoleRunner
from adapters.store.leases import holders
from tests.conftest import POSTGRES_URL, with_kek


class Duty:
    """Counts how many runners run it at once (it must never be more than one)."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.most = 0
        self._lock = threading.Lock()

    def role(self, name: str, who: str) -> Role:
        def start() -> None:
            with self._lock:
                self.running.append(who)
                self.most = max(self.most, len(self.running))

        def stop() -> None:
            with self._lock:
                self.running.remove(who)

        return Role(name, start, stop)


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sqlite_runs_every_role_here_and_an_api_process_none() -> None:
    duty = Duty()
    everything, nothing = RoleRunner(Mode.ALL), RoleRunner(Mode.NONE)
    for who, runner in (("all", everything), ("none", nothing)):
        runner.add(duty.role("projections", who))
        runner.start()
    assert duty.running == ["all"]
    assert everything.held == {"projections"}
    assert nothing.held == set()
    everything.close()
    nothing.close()
    assert duty.running == []


@pytest.mark.postgres
def test_one_runner_holds_a_role_and_another_takes_it_over_when_it_goes(
    postgres_schema: str,
) -> None:
    env = postgres_env(f"{POSTGRES_URL}?schema={postgres_schema}")
    duties = {"projections": Duty(), "webhooks": Duty()}
    runners = {
        who: RoleRunner(Mode.LEASED, env, check_seconds=0.2, retry_seconds=0.2) for who in "ab"
    }
    try:
        for who, runner in runners.items():
            for name, duty in duties.items():
                runner.add(duty.role(name, who))
            runner.start()
        assert eventually(lambda: all(len(d.running) == 1 for d in duties.values()))
        assert all(d.most == 1 for d in duties.values())
        pid = holders(env, ["projections"])["projections"].pid
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:  # its connection is cut
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

        def moved() -> bool:
            now = holders(env, ["projections"]).get("projections")
            return now is not None and now.pid != pid and len(duties["projections"].running) == 1

        assert eventually(moved)  # taken again in seconds (by either: the cut one may retry)
        # A cut holder may overlap its successor until its next check (no fencing token:
        # the roles' conditional writes cover that); a clean stop never overlaps.
        for duty in duties.values():
            duty.most = len(duty.running)
        holder = duties["projections"].running[0]
        rest = "b" if holder == "a" else "a"
        runners[holder].close()  # a clean stop hands everything over
        assert eventually(lambda: all(d.running == [rest] for d in duties.values()))
    finally:
        for runner in runners.values():
            runner.close()
    assert all(d.most == 1 and d.running == [] for d in duties.values())


def lease_sessions_here() -> int:
    """This OS process's lease sessions (a role runner's are named after it, not a role)."""
    name = f"eportfolio-lease roles {os.getpid()}@{socket.gethostname()}"[:63]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.postgres
def test_one_session_holds_every_lease_of_a_runner(postgres_schema: str) -> None:
    """A process's leases share one connection (they were one connection each): the
    holder's roles are all held by one server session, and the standby opens one too."""
    env = postgres_env(f"{POSTGRES_URL}?schema={postgres_schema}")
    names = ["projections", "checkpoints", "webhooks", "xapi", "nats"]
    duties = {name: Duty() for name in names}
    runners = [RoleRunner(Mode.LEASED, env, check_seconds=0.2) for _ in range(2)]
    try:
        for who, runner in zip("ab", runners, strict=True):
            for name, duty in duties.items():
                runner.add(duty.role(name, who))
            runner.start()
            assert eventually(lambda: all(len(d.running) == 1 for d in duties.values()))
        held = holders(env, names)
        assert set(held) == set(names)
        assert len({h.pid for h in held.values()}) == 1
        assert runners[0].held == set(names)
        assert runners[1].held == set()
        assert lease_sessions_here() == 2
    finally:
        for runner in runners:
            runner.close()
    assert lease_sessions_here() == 0
    assert all(d.running == [] for d in duties.values())


@pytest.mark.postgres
def test_a_role_that_stops_on_an_error_gives_its_lease_up(postgres_schema: str) -> None:
    """Its work stopped (a projection raised): the holder stops it and lets the lease go,
    so another process takes it; the holder's other roles stay where they are."""
    env = postgres_env(f"{POSTGRES_URL}?schema={postgres_schema}")
    broken = threading.Event()
    duty, other = Duty(), Duty()
    runners = {
        who: RoleRunner(Mode.LEASED, env, check_seconds=0.2, wait_seconds=30) for who in "ab"
    }
    try:
        for who, runner in runners.items():
            role = duty.role("projections", who)
            failed = broken.is_set if who == "a" else None
            runner.add(Role(role.name, role.start, role.stop, failed=failed))
            runner.add(other.role("webhooks", who))
            runner.start()
            assert eventually(lambda: len(duty.running) == len(other.running) == 1)
        assert duty.running == other.running == ["a"]
        broken.set()
        assert eventually(lambda: duty.running == ["b"])
        assert other.running == ["a"]
        assert runners["a"].held == {"webhooks"}
        assert holders(env, ["projections"])["projections"].os_pid == os.getpid()
    finally:
        for runner in runners.values():
            runner.close()
    assert duty.most == other.most == 1


@pytest.mark.postgres
def test_a_view_that_stopped_on_an_error_lets_the_projections_lease_go(
    postgres_schema: str, tmp_path: Path
) -> None:
    """The server's projections role fails when a view's follower stopped on an error (here
    made to look so): the process stops the role and gives its lease up (another process
    would take it; this one waits `wait_seconds` before it competes again)."""
    config = with_kek(Config(database_url=f"{POSTGRES_URL}?schema={postgres_schema}"),
                      tmp_path / "kek")  # fmt: skip
    services = open_services(config, HttpSettings(), roles=Mode.LEASED)
    try:
        services.roles.check_seconds = 0.2
        services.start()
        assert eventually(lambda: "projections" in services.roles.held, timeout=20)
        env = config.eventsourcing_env()
        assert "projections" in holders(env, ["projections"])
        view = next(iter(services.projections))
        view.stop()
        view._error = RuntimeError("a view that raised on an event")  # as its follower leaves it
        assert eventually(lambda: "projections" not in services.roles.held, timeout=10)
        assert "projections" not in holders(env, ["projections"])
    finally:
        services.close()
