"""Soak: 20 writers at two centres while the server is killed with SIGKILL, again and again.

A real `eportfolio serve` process; writers speak HTTP to it with an Idempotency-Key per
write and retry the same request (same key) whenever the answer was lost: the server was
killed mid-request, or refused the connection while it restarted. A write counts as
acknowledged when it was answered 201. Afterwards: every acknowledged write is in the log,
none twice; the views the crashing servers kept equal a rebuild from zero; and
`eportfolio verify --store` finds the store intact against the checkpoints signed meanwhile.
`EPORTFOLIO_SOAK_SECONDS` (default 20) sets how long each store is soaked.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from adapters.audit.signing import SigningKey, write_signing_key
from adapters.bootstrap import build
from adapters.config import Config
from adapters.store.projection_runner import ProjectionRunner
from adapters.store.views import open_view_store
from domain.events import Event, LearnerRegistered
from projections.portfolio_view import PortfolioStateProjection
from tests.e2e.http.conftest import ADMIN_TOKEN, HttpCentre
from tests.e2e.http.test_server import free_port
from tests.integration.test_projection_runner import docs_of

pytestmark = pytest.mark.slow
SOAK_SECONDS = float(os.environ.get("EPORTFOLIO_SOAK_SECONDS", "20"))
WRITERS_PER_CENTRE = 10


@dataclass
class Server:
    """One `eportfolio serve` at a fixed port, (re)started as often as it is killed."""

    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "adapters.cli.main", "serve", "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/me", timeout=1).status_code == 401:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail(f"the server did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown path runs, whatever was in flight is cut off."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Acknowledged:
    events: list[UUID] = field(default_factory=list)  # event ids answered 201
    learners: dict[UUID, set[UUID]] = field(default_factory=dict)  # centre -> learner ids
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def send_until_answered(
    client: httpx.Client, stop: threading.Event, method: str, path: str, **kw: Any
) -> httpx.Response | None:
    """The same request (same Idempotency-Key) until it is answered, or the soak ends.

    Not answered: the connection failed (killed mid-request, or restarting), the service
    was starting or stopping (503), or writers kept colliding (409 concurrency_conflict).
    """
    while not stop.is_set():
        try:
            response = client.request(method, path, **kw)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        collided = response.status_code == 409 and "concurrency_conflict" in response.text
        if response.status_code == 503 or collided:
            time.sleep(0.05)
            continue
        return response
    return None


Request = Callable[[], tuple[str, dict[str, Any]]]  # a fresh (path, body) per write


@dataclass(frozen=True)
class Plan:
    """What one writer does, as whom."""

    centre: HttpCentre
    make: Request
    who: str
    registers: bool = False  # the writes register learners: check they are all there


def writer(server: Server, acked: Acknowledged, stop: threading.Event, plan: Plan) -> None:
    token = plan.centre.people[plan.who].token
    with httpx.Client(base_url=server.url, timeout=10) as client:
        while not stop.is_set():
            path, body = plan.make()
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid4())}
            response = send_until_answered(client, stop, "POST", path, json=body, headers=headers)
            if response is None:
                return  # the soak ended before this write was answered: not acknowledged
            assert response.status_code == 201, (path, response.status_code, response.text)
            answer = response.json()
            with acked.lock:
                acked.events.append(UUID(answer["event_id"]))
                acked.retries += bool(answer["replayed"])
                if plan.registers:
                    learners = acked.learners.setdefault(plan.centre.id, set())
                    learners.add(UUID(answer["created_id"]))


def writers_of(centre: HttpCentre) -> list[Plan]:
    """Ten writers: learners submitting evidence, the assessor observing, the admin
    registering learners; each portfolio has several writers at once, so writes collide."""
    mine, theirs = centre.enrol(), centre.enrol(learner="other_learner")
    work: dict[str, Any] = {"method": "WP", "title": "Rota", "environment": "workplace"}
    work |= {"authenticity_declared": True}
    seen = {"environment": "workplace", "criteria": ["PC3", "PC4"], "customer_ref": "c-1"}

    def evidence(portfolio: UUID) -> Request:
        return lambda: (f"/portfolios/{portfolio}/evidence", work | {"evidence_id": str(uuid4())})

    def observation(portfolio: UUID) -> Request:
        return lambda: (f"/portfolios/{portfolio}/observations", seen)

    def learner() -> tuple[str, dict[str, Any]]:
        return centre.path("learners"), {"learner_id": str(uuid4()), "name": "New Learner"}

    return [
        *(Plan(centre, evidence(mine), "learner") for _ in range(2)),
        *(Plan(centre, evidence(theirs), "other_learner") for _ in range(2)),
        *(Plan(centre, observation(p), "assessor") for p in (mine, mine, theirs, theirs)),
        *(Plan(centre, learner, "centre_admin", registers=True) for _ in range(2)),
    ]


@pytest.fixture
def server(config: Config, tmp_path: Path) -> Iterator[Server]:
    key = tmp_path / "signing.key"
    write_signing_key(key, SigningKey.generate())
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPORTFOLIO_")}
    env |= {
        "EPORTFOLIO_DATA_DIR": str(config.data_dir if not config.uses_postgres else tmp_path),
        "EPORTFOLIO_ADMIN_TOKEN": ADMIN_TOKEN,
        "EPORTFOLIO_SIGNING_KEY_FILE": str(key),
        "EPORTFOLIO_KEK_FILE": str(config.kek_path),  # the fixture's config made it
        "EPORTFOLIO_CHECKPOINT_SECONDS": "2",  # checkpoints signed while the kills go on
        "EPORTFOLIO_RATE_LIMIT_WRITES": "0",  # twenty writers, one address
    }
    if config.database_url:
        env["EPORTFOLIO_DATABASE_URL"] = config.database_url
    running = Server(env=env, port=free_port(), log=tmp_path / "server.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_killing_the_server_loses_no_acknowledged_write(
    config: Config, server: Server, tmp_path: Path
) -> None:
    rng = random.Random(13)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        centres = [HttpCentre.create(client, f"Soak {n}") for n in ("North", "South")]
        plans = [plan for centre in centres for plan in writers_of(centre)]
    assert len(plans) == 2 * WRITERS_PER_CENTRE
    acked, stop = Acknowledged(), threading.Event()
    threads = [threading.Thread(target=writer, args=(server, acked, stop, p)) for p in plans]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + SOAK_SECONDS
    while time.monotonic() < deadline or server.kills < 2:  # a slow restart is no excuse
        time.sleep(rng.uniform(1.0, 3.0))
        server.kill()
        server.start()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert server.kills >= 2
    assert len(acked.events) > 50, "the writers barely wrote: the soak proves little"

    with httpx.Client(base_url=server.url, timeout=30) as client:  # views caught up, signed
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        last = client.post(
            "/centres", json={"name": "Last"}, params={"wait": "true"}, headers=admin
        )
        assert last.json()["visible"] is True, last.text
        assert client.post("/audit/checkpoints", headers=admin).status_code in (200, 201)
    server.stop()

    app = build(config)
    try:
        ledger = app.ledger
        stored = [ledger.fact(n).event for n in ledger.notifications()]
        event_ids = [e.event_id for e in stored if isinstance(e, Event)]
        assert len(event_ids) == len(set(event_ids))
        missing = set(acked.events) - set(event_ids)
        assert not missing, f"{len(missing)} acknowledged writes are not in the log"
        registered = [e for e in stored if isinstance(e, LearnerRegistered)]
        assert len({e.learner_id for e in registered}) == len(registered)  # none twice
        for centre_id, learners in acked.learners.items():
            assert learners <= set(app.centre(centre_id).learners)

        projection = PortfolioStateProjection(app.specs)
        live = open_view_store(config, projection.name)
        rebuilt = ProjectionRunner(ledger, projection, open_view_store(config, "soak_rebuilt"))
        try:
            rebuilt.catch_up()
            assert live.position() == rebuilt.position == ledger.recorder.max_notification_id()
            assert docs_of(live) == docs_of(rebuilt.store)
        finally:
            rebuilt.close()
            live.close()
    finally:
        app.ledger.close()

    verified = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "verify", "--store"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    store = "postgres" if config.uses_postgres else "sqlite"
    print(  # the soak's figures, shown with -s
        f"soak {store}: {len(acked.events)} "
        f"acknowledged writes, {acked.retries} answered by replay, {server.kills} kills"
    )
