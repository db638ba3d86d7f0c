"""End to end: a real `eportfolio serve` process on 127.0.0.1, spoken to with httpx.

The server runs as a user would start it (the console command's module, its own process,
configured by environment), on a free port, and is stopped with SIGTERM so its shutdown
path (projections stopped, stores closed) runs too.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters.audit.verify import verify_bundle
from adapters.config import Config
from tests.e2e.http.conftest import ADMIN_TOKEN, HttpCentre
from tests.e2e.http.scenario import build_complete_portfolio

pytestmark = pytest.mark.slow


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    output: str = ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(config: Config, tmp_path: Path, *args: str) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "EPORTFOLIO_DATA_DIR": str(tmp_path / "data"),
        "EPORTFOLIO_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    env.pop("EPORTFOLIO_DATABASE_URL", None)
    env.pop("EPORTFOLIO_KEK", None)
    env.pop("EPORTFOLIO_KEK_FILE", None)
    if config.kek_path.exists():  # else the default, beside the data directory
        env["EPORTFOLIO_KEK_FILE"] = str(config.kek_path)
    if config.database_url:
        env["EPORTFOLIO_DATABASE_URL"] = config.database_url
    command = [sys.executable, "-m", "adapters.cli.main", "serve", "--port", str(port), *args]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    server = Server(url=f"http://127.0.0.1:{port}", process=process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{server.url}/me", timeout=1).status_code == 401:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    stop(server)
    pytest.fail(f"the server did not start:\n{server.output}")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        server.output, _ = server.process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.output, _ = server.process.communicate()


@pytest.fixture
def server(config: Config, tmp_path: Path) -> Iterator[Server]:
    running = start(config, tmp_path)
    try:
        yield running
    finally:
        stop(running)


def test_a_complete_seed_000_portfolio_through_a_real_server(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        _, _, coverage, sufficiency = build_complete_portfolio(client)
    assert (coverage["complete"], coverage["gaps"]) == (True, [])
    assert sufficiency["passed"]


def test_serve_demo_prints_tokens_that_work(tmp_path: Path) -> None:
    server = start(Config(data_dir=tmp_path), tmp_path, "--demo")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            client.get("/me")  # the output so far is complete once the server answers
            stop(server)
    finally:
        stop(server)
    tokens = dict(re.findall(r"^  (\w+)\s+(\S+)  ", server.output, re.MULTILINE))
    assert set(tokens) == {
        "admin",
        "centre_admin",
        "assessor",
        "iqa",
        "ev",
        "learner",
        "integrator",
    }
    assert "Application shutdown complete" in server.output
    kek = tmp_path / "data.kek"  # the demo made its KEK beside the data directory, 0600
    assert f"Wrote a key-encryption key to {kek}" in " ".join(server.output.split())
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in data.iterdir() if p.is_file()} == {0o600}
    portfolio = re.search(r"/portfolios/([0-9a-f-]+)/coverage", server.output)
    centre = re.search(r"^Demo centre ([0-9a-f-]+):", server.output, re.MULTILINE)
    assert portfolio is not None
    assert centre is not None
    restarted = start(Config(data_dir=tmp_path), tmp_path)  # tokens outlive the process
    try:
        with httpx.Client(base_url=restarted.url, timeout=30) as client:
            learner = {"Authorization": f"Bearer {tokens['learner']}"}
            coverage = client.get(f"/portfolios/{portfolio[1]}/coverage", headers=learner)
            assert coverage.status_code == 200
            assert (
                client.get("/me", headers={"Authorization": f"Bearer {tokens['admin']}"}).json()[
                    "role"
                ]
                == "admin"
            )
            ev = {"Authorization": f"Bearer {tokens['ev']}"}
            vkey = client.get("/audit/public-key", headers=ev).json()["vkey"]
            export = client.get("/audit/export", params={"centre_id": centre[1]}, headers=ev)
            assert export.status_code == 200, export.text  # the demo is checkpointed
            report = verify_bundle(export.content, trusted_key=vkey)
            assert report.verified, report.lines()
    finally:
        stop(restarted)


def test_a_second_server_drops_an_erased_learners_key_at_once(
    config: Config, tmp_path: Path
) -> None:
    """Two servers on one store; an erasure through one: the other, which has the learner's
    key cached, stops opening their name as soon as it reads the erasure from the log —
    well inside the cached key's 60-second lifetime."""
    eraser = start(config, tmp_path)
    reader = start(config, tmp_path)
    try:
        with (
            httpx.Client(base_url=eraser.url, timeout=30) as one,
            httpx.Client(base_url=reader.url, timeout=30) as other,
        ):
            centre = HttpCentre.create(one, "Northgate College")
            zara = centre.learner("zara_quist")
            integrator = {"Authorization": f"Bearer {centre.people['integrator'].token}"}

            def reader_feed() -> str:
                return other.get("/events", params={"limit": 1000}, headers=integrator).text

            assert "Zara_Quist" in reader_feed()  # the reader has opened (and cached) her key
            erased = centre.as_("centre_admin").post(
                f"/learners/{zara.id}/erasure", {"reason": "Art. 17 request"}
            )
            assert erased.status_code == 201, erased.text
            started = time.monotonic()
            while "Zara_Quist" in reader_feed() and time.monotonic() - started < 10:
                time.sleep(0.05)
            assert "Zara_Quist" not in reader_feed(), "the reader still opens her name"
            assert time.monotonic() - started < 10
    finally:
        stop(reader)
        stop(eraser)
