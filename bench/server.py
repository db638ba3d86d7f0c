"""A real `eportfolio serve` process on 127.0.0.1, and centres set up through its API alone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from bench.common import peak_rss_mb, store_config

ADMIN_TOKEN = "bench-admin-token"
UNIT = "CS-RCSP-H"  # seed 000: PCs 3-7 must be observed; two of a-d by observation
PCS = tuple(f"PC{n}" for n in range(1, 17))
KNOWLEDGE = tuple(f"K{n}" for n in range(1, 8))


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    worker: subprocess.Popen[bytes] | None = None  # `eportfolio worker` beside `--workers N`

    @property
    def pid(self) -> int:
        return self.process.pid

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.pid)

    def pids(self) -> list[int]:
        """Every process serving: `serve`, the API processes it started, and the worker."""
        found = [self.pid, *_children(self.pid)]
        return found + ([self.worker.pid] if self.worker is not None else [])


def _children(pid: int) -> list[int]:
    """A process's descendants, from /proc (the API processes of `serve --workers N`)."""
    try:
        direct = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [d for child in map(int, direct) for d in (child, *_children(child))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(data_dir: Path, database_url: str | None = None, *, workers: int = 1) -> Server:
    """`python -m adapters.cli.main serve` as a user starts it, configured by environment.

    `workers` > 1 (PostgreSQL): `serve --workers N --no-roles` and an `eportfolio worker`
    for the background roles, the deployment docs/deploy.md describes.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    store_config(data_dir)  # the server finds its KEK beside the data directory
    port = free_port()
    env = {
        **os.environ,
        "EPORTFOLIO_DATA_DIR": str(data_dir),
        "EPORTFOLIO_ADMIN_TOKEN": ADMIN_TOKEN,
        # The load comes from one address, far above any one client's limit.
        "EPORTFOLIO_RATE_LIMIT_WRITES": "0",
        "EPORTFOLIO_RATE_LIMIT_UPLOADS": "0",
    }
    env.pop("EPORTFOLIO_DATABASE_URL", None)
    if database_url:
        env["EPORTFOLIO_DATABASE_URL"] = database_url
    log_path = data_dir / "server.log"
    command = [sys.executable, "-m", "adapters.cli.main", "serve", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers), "--no-roles"]
    with log_path.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    if workers > 1:
        with (data_dir / "worker.log").open("wb") as out:
            server.worker = subprocess.Popen(
                [sys.executable, "-m", "adapters.cli.main", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{server.url}/me", timeout=1).status_code == 401:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    stop(server)
    msg = f"the server did not start:\n{log_path.read_text()[-2000:]}"
    raise RuntimeError(msg)


def stop(server: Server) -> None:
    for process in (server.process, server.worker):
        if process is None:
            continue
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass
class ApiPortfolio:
    portfolio_id: str
    learner_token: str
    assessor_token: str
    evidence: list[str] = field(default_factory=list)


@dataclass
class ApiCentre:
    centre_id: str
    portfolios: list[ApiPortfolio]


def _ok(client: httpx.Client, method: str, path: str, token: str, body: Any = None) -> Any:
    response = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code >= 300:
        msg = f"{method} {path}: {response.status_code} {response.text[:500]}"
        raise RuntimeError(msg)
    return response.json()


def setup_centre(
    client: httpx.Client, name: str, *, learners: int, assessors: int = 2
) -> ApiCentre:
    """A centre, its admin, assessors, an IQA and learners, each enrolled on seed 000."""
    centre_id = _ok(client, "POST", "/centres", ADMIN_TOKEN, {"name": name})["created_id"]
    base = f"/centres/{centre_id}"

    def staff(role: str, who: str, token: str) -> dict[str, Any]:
        body = {"name": who, "role": role, "qualification": "qualified"}
        made: dict[str, Any] = _ok(client, "POST", f"{base}/staff", token, body)
        return made

    admin = staff("centre_admin", f"{name} admin", ADMIN_TOKEN)
    team = [staff("assessor", f"{name} assessor {n}", admin["token"]) for n in range(assessors)]
    iqa = staff("iqa", f"{name} IQA", admin["token"])
    portfolios = []
    for n in range(learners):
        learner = _ok(
            client, "POST", f"{base}/learners", admin["token"], {"name": f"Learner {n} of {name}"}
        )
        assessor = team[n % len(team)]
        enrol = {
            "centre_id": centre_id,
            "learner_id": learner["created_id"],
            "unit_code": UNIT,
            "assessor_id": assessor["created_id"],
            "iqa_id": iqa["created_id"],
            "effective_on": today(),
        }
        pid = _ok(client, "POST", "/portfolios", admin["token"], enrol)["created_id"]
        portfolios.append(ApiPortfolio(pid, learner["token"], assessor["token"]))
    return ApiCentre(centre_id, portfolios)


def evidence_body(n: int) -> dict[str, Any]:
    """A work product of realistic size (~480 bytes stored, like the demo's)."""
    return {
        "method": "WP",
        "title": f"Complaint record, occasion {n}",
        "description": "Customer complaint log with the agreed resolution and follow-up call.",
        "occasion": f"shift {n}",
        "customer_ref": f"cust-{100 + n % 900}",
        "environment": "workplace",
        "authenticity_declared": True,
        "effective_on": today(),
    }


def observation_body(n: int) -> dict[str, Any]:
    return {
        "occasion": f"shift {n}",
        "customer_ref": f"cust-{100 + n % 900}",
        "environment": "workplace",
        "criteria": ["PC3", "PC4", "PC5", "PC6", "PC7", "a"],
        "location": "Front desk",
        "notes": "Observed handling a live customer problem end to end.",
        "effective_on": today(),
    }


def decision_body(evidence: list[str]) -> dict[str, Any]:
    return {
        "outcome": "met",
        "criteria": ["PC3", "PC4", "PC5", "PC6", "PC7"],
        "evidence_ids": evidence[-3:],
        "feedback": "Consistent, confident handling of customer problems.",
        "effective_on": today(),
    }


def parse_uuid(text: str) -> UUID:
    return UUID(text)
