"""PostgreSQL deployments of real processes: API processes, workers, `serve --workers N`.

Writes go through both API processes; the views, webhook delivery and the checkpoint
schedule are background roles each held by one worker at a time (docs/deploy.md). The
worker holding them is killed (SIGKILL: no goodbye) and the other takes them over: every
event is projected once and delivered once, in order, and read-your-writes keeps working
in both API processes whichever process projects. `serve --workers 2` is one port served by
two processes: which one accepted each connection is asked of the OS (Linux's /proc).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.audit.signing import SigningKey, write_signing_key
from adapters.config import Config, postgres_env
from adapters.store.leases import holders
from tests.conftest import POSTGRES_URL, with_kek
from tests.e2e.http.conftest import ADMIN_TOKEN, HttpCentre
from tests.e2e.http.test_server import free_port
from tests.e2e.streams.servers import Receiver, serve

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROLES = ["projections", "checkpoints", "webhooks", "xapi"]  # no NATS URL: no nats role
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")


STARTUP_SECONDS = 90.0  # a process's start on a busy 2-core host (imports, first connections)


def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0, *logs: Process) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            output = "\n".join(f"--- {p.name}:\n{p.output()[-3000:]}" for p in logs)
            pytest.fail(f"not within {timeout} s: {what}\n{output}")
        time.sleep(0.1)


@pytest.fixture
def deployment_env(postgres_schema: str, tmp_path: Path) -> dict[str, str]:
    url = f"{POSTGRES_URL}?schema={postgres_schema}"
    config = with_kek(Config(database_url=url), tmp_path / "kek")
    write_signing_key(tmp_path / "signing.key", SigningKey.generate())
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPORTFOLIO_")}
    return env | {
        "EPORTFOLIO_DATABASE_URL": url,
        "EPORTFOLIO_KEK_FILE": str(config.kek_path),
        "EPORTFOLIO_SIGNING_KEY_FILE": str(tmp_path / "signing.key"),
        "EPORTFOLIO_DATA_DIR": str(tmp_path / "data"),
        "EPORTFOLIO_BLOB_DIR": str(tmp_path / "blobs"),  # shared by every process
        "EPORTFOLIO_ADMIN_TOKEN": ADMIN_TOKEN,
        "EPORTFOLIO_CHECKPOINT_SECONDS": "1",
        "EPORTFOLIO_WEBHOOKS_ALLOW_PRIVATE": "1",
        "EPORTFOLIO_WAIT_SECONDS": "10",
        "EPORTFOLIO_RATE_LIMIT_WRITES": "0",
        "EPORTFOLIO_RATE_LIMIT_FAILED_LOOKUPS": "0",
    }


@pytest.fixture
def launch(deployment_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def launch(name: str, *args: str) -> Process:
        log = tmp_path / f"{name}.log"
        command = [sys.executable, "-m", "adapters.cli.main", *args]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, env=deployment_env, stdout=out, stderr=subprocess.STDOUT
            )
        started.append(Process(name, process, log))
        return started[-1]

    yield launch
    for each in started:
        if each.process.poll() is None:
            each.process.send_signal(signal.SIGTERM)
    for each in started:
        try:
            each.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            each.process.kill()
            each.process.wait()


def api(launch: Callable[..., Process], name: str) -> Process:
    port = free_port()
    process = launch(name, "serve", "--no-roles", "--port", str(port))
    process.url = f"http://127.0.0.1:{port}"
    return process


def answers(process: Process) -> bool:
    assert process.process.poll() is None, process.output()
    try:
        return httpx.get(f"{process.url}/me", timeout=1).status_code == 401
    except httpx.TransportError:
        return False


def role_holders(env: dict[str, str]) -> dict[str, int]:
    store = postgres_env(env["EPORTFOLIO_DATABASE_URL"])
    return {role: h.os_pid for role, h in holders(store, ROLES).items()}


def feed(client: httpx.Client) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = client.get("/events", params={"after": after, "limit": 1000}, headers=ADMIN)
        assert page.status_code == 200, page.text
        body = page.json()
        events += body["events"]
        if not body["events"]:
            return events
        after = body["next_after"]


def trail_positions(client: httpx.Client, centre: HttpCentre) -> list[int]:
    """The positions of the EV's audit trail of the centre (a row per centre event)."""
    ev = {"Authorization": f"Bearer {centre.people['ev'].token}"}
    positions: list[int] = []
    after = 0
    while True:
        page = client.get(centre.path("audit"), params={"after": after, "limit": 500}, headers=ev)
        assert page.status_code == 200, page.text
        body = page.json()
        positions += [row["position"] for row in body["trail"]]
        if body["next_after"] is None:
            return positions
        after = body["next_after"]


def test_two_api_processes_and_two_workers_share_the_roles_and_survive_a_kill(
    launch: Callable[..., Process], deployment_env: dict[str, str]
) -> None:
    receiver = Receiver()
    with ExitStack() as stack:
        hook_url = stack.enter_context(serve(receiver))
        first = launch("worker-1", "worker")
        apis = [api(launch, "api-1"), api(launch, "api-2")]
        eventually(
            lambda: set(role_holders(deployment_env)) == set(ROLES),
            "worker 1 takes the roles",
            STARTUP_SECONDS,
            first,
        )
        assert set(role_holders(deployment_env).values()) == {first.process.pid}
        second = launch("worker-2", "worker")  # holds nothing while the first lives
        for each in apis:
            eventually(lambda each=each: answers(each), f"{each.name} answers", STARTUP_SECONDS)  # type: ignore[misc]
        clients = [stack.enter_context(httpx.Client(base_url=a.url, timeout=30)) for a in apis]

        centre = HttpCentre.create(clients[0], "Two Process College")
        hook = clients[1].post("/webhooks", json={"url": f"{hook_url}/h", "from_position": 1},
                               headers=ADMIN)  # fmt: skip
        assert hook.status_code == 201, hook.text
        written = write_learners(centre, clients, "before")

        def delivered_up_to_head() -> bool:
            ids = [e["id"] for e in feed(clients[0])]
            return [r.headers["webhook-id"] for r in receiver.requests] == ids

        def quiet() -> bool:  # the schedule has checkpointed the writes and that was sent
            events = feed(clients[1])
            return events[-1]["type"].endswith("checkpoint.issued.v1") and delivered_up_to_head()

        eventually(quiet, "every event delivered and checkpointed", 30, first, second)
        assert role_holders(deployment_env)["webhooks"] == first.process.pid
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        eventually(
            lambda: role_holders(deployment_env) == dict.fromkeys(ROLES, second.process.pid),
            "worker 2 takes every role over",
            10,
            second,
        )
        written += write_learners(centre, clients, "after")
        eventually(quiet, "every event delivered after the takeover", 30, second)

        events = feed(clients[0])
        ids = [r.headers["webhook-id"] for r in receiver.requests]
        assert ids == [e["id"] for e in events]  # each once, in log order, nothing lost
        assert len(set(ids)) == len(ids)
        for client in clients:  # every event projected once, whichever worker did it
            trail = trail_positions(client, centre)
            assert len(trail) == len(set(trail))
            assert set(written) <= set(trail)
        checkpoints = clients[1].get("/audit/checkpoints", headers=ADMIN).json()
        scheduled = [c["tree_size"] for c in checkpoints if c["reason"] == "scheduled"]
        assert len(scheduled) >= 2
        assert scheduled == sorted(set(scheduled))  # one schedule: never two of one size
    assert "competing for the background roles" in second.output()


def write_learners(centre: HttpCentre, clients: list[httpx.Client], tag: str) -> list[int]:
    """Learners registered through each API process in turn, each read back through the other
    at once (?wait=true: the view was made by a worker, another process)."""
    positions = []
    for i in range(6):
        here, there = clients[i % 2], clients[(i + 1) % 2]
        admin = centre.as_("centre_admin")
        body = {"name": f"Learner {tag} {i}"}
        made = here.post(centre.path("learners"), json=body, params={"wait": "true"},
                         headers=admin.headers())  # fmt: skip
        assert made.status_code == 201, made.text
        assert made.json()["visible"] is True
        position = made.json()["position"]
        positions.append(position)
        assert position in trail_positions(there, centre)
    return positions


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (uvicorn's API processes of a supervisor)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def accepted_by(response: httpx.Response, server_port: int, candidates: list[int]) -> int:
    """Which of `candidates` holds the server's end of the connection `response` came on."""
    client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    ends = f":{server_port:04X}", f":{client_port:04X}"
    inode = next(
        line.split()[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if (line.split()[1].endswith(ends[0]) and line.split()[2].endswith(ends[1]))
    )
    for pid in candidates:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return pid
    raise AssertionError(f"no process of {candidates} holds the connection from {client_port}")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="asks Linux's /proc who accepted")
def test_serve_workers_2_is_two_api_processes_on_one_port_beside_a_worker(
    launch: Callable[..., Process], deployment_env: dict[str, str]
) -> None:
    """`serve --workers 2` and `worker`: connections to the one port are accepted by two
    processes; a write through one is read at once (?wait=true) through the other, whichever
    process projected it; every event is projected exactly once; the API processes hold no
    role (the supervisor and the worker share them)."""
    port = free_port()
    served = launch("serve-2", "serve", "--workers", "2", "--port", str(port))
    served.url = f"http://127.0.0.1:{port}"
    worker = launch("worker", "worker")  # all three start at once, on a fresh schema
    eventually(lambda: answers(served), "serve --workers 2 answers", STARTUP_SECONDS, served)
    eventually(lambda: len(children(served.process.pid)) >= 2, "two API processes", 30, served)
    eventually(
        lambda: set(role_holders(deployment_env)) == set(ROLES),
        "the roles are taken",
        STARTUP_SECONDS,
        served,
        worker,
    )
    apis = [pid for pid in children(served.process.pid) if _is_api_process(pid)]
    assert len(apis) == 2, apis
    assert set(role_holders(deployment_env).values()) <= {served.process.pid, worker.process.pid}

    with ExitStack() as stack:
        # One client per API process: connect until each process has accepted one.
        by_process: dict[int, httpx.Client] = {}
        for _ in range(64):
            client = stack.enter_context(httpx.Client(base_url=served.url, timeout=30))
            response = client.get("/me")
            assert response.status_code == 401
            by_process.setdefault(accepted_by(response, port, apis), client)
            if len(by_process) == 2:
                break
        assert sorted(by_process) == sorted(apis), "one process accepted every connection"
        clients = list(by_process.values())

        centre = HttpCentre.create(clients[0], "Two Worker College")
        admin = centre.as_("centre_admin").headers()
        written: list[int] = []
        crossed = 0  # writes read back through the other process than the one that took them
        for i in range(6):
            here, there = clients[i % 2], clients[(i + 1) % 2]
            made = here.post(centre.path("learners"), json={"name": f"Learner {i}"},
                             params={"wait": "true"}, headers=admin)  # fmt: skip
            assert made.status_code == 201, made.text
            assert made.json()["visible"] is True
            written.append(made.json()["position"])
            ev = {"Authorization": f"Bearer {centre.people['ev'].token}"}
            read = there.get(centre.path("audit"), params={"limit": 500}, headers=ev)
            assert read.status_code == 200, read.text
            assert written[-1] in [row["position"] for row in read.json()["trail"]]
            crossed += accepted_by(made, port, apis) != accepted_by(read, port, apis)
        assert crossed >= 3, f"only {crossed} of 6 writes were read through the other process"

        for client in clients:  # every event of the centre projected once
            trail = trail_positions(client, centre)
            assert len(trail) == len(set(trail))
            assert set(written) <= set(trail)
        centre_events = [int(e["sequence"]) for e in feed(clients[1]) if _of(e, centre)]
        assert sorted(trail) == centre_events
    assert "competing for the background roles" in worker.output()


def _is_api_process(pid: int) -> bool:
    """An API process of uvicorn's (multiprocessing's spawn), not its resource tracker."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "multiprocessing.spawn import spawn_main" in command


def _of(event: dict[str, Any], centre: HttpCentre) -> bool:
    return bool(event["source"] == f"/centres/{centre.id}")
