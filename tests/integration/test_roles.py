"""Role runners on a real PostgreSQL: each role runs in one process at a time, and moves."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from adapters.config import postgres_env
from adapters.roles import Mode, Role, RoleRunner
from adapters.store.leases import holders
from tests.conftest import POSTGRES_URL


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
