"""`python -m bench.processes`: API throughput with 1, 2 and 4 API processes on PostgreSQL.

Each setting is a real deployment on this machine: `eportfolio serve --no-roles --workers N`
(N API processes behind uvicorn's shared socket) and one `eportfolio worker` holding the
roles, over a PostgreSQL schema of its own. An asyncio client (one process, `--clients`
requests in flight) then, for `--seconds` each:

- writes: registers learners (`POST /centres/{id}/learners`, an event each, no wait),
  each client in a centre of its own (one centre's writes queue on its stream's version);
- reads: fetches the centre's EV audit view (`GET /centres/{id}/audit?limit=50`, the
  stored trail and decision chains).

Figures are requests a second and their ratio to one API process, measured in the same run
(the machine is shared and noisy; ratios hold better than absolute numbers). The client
runs on the same cores as the servers and PostgreSQL, so this measures the whole machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from uuid import uuid4

import httpx
import psycopg

from bench.common import log, store_config
from bench.server import ADMIN_TOKEN, free_port

DEFAULT_PG = os.environ.get(
    "EPORTFOLIO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
RESULTS = Path(__file__).parent / "results"


@contextmanager
def deployment(pg_url: str, workdir: Path, processes: int) -> Iterator[str]:
    """N API processes and one worker over a fresh schema; yields the API's base URL."""
    schema = f"bench_{uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{pg_url}?schema={schema}"
    data = workdir / schema
    data.mkdir(parents=True)
    config = store_config(data, url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPORTFOLIO_")} | {
        "EPORTFOLIO_DATABASE_URL": url,
        "EPORTFOLIO_DATA_DIR": str(data),
        "EPORTFOLIO_KEK_FILE": str(config.kek_path),
        "EPORTFOLIO_ADMIN_TOKEN": ADMIN_TOKEN,
        "EPORTFOLIO_RATE_LIMIT_WRITES": "0",  # the load comes from one address
        "EPORTFOLIO_RATE_LIMIT_UPLOADS": "0",
    }
    cli = [sys.executable, "-m", "adapters.cli.main"]
    api_command = [*cli, "serve", "--no-roles", "--workers", str(processes), "--port", str(port)]
    running: list[subprocess.Popen[bytes]] = []
    try:
        for name, command in (("worker", [*cli, "worker"]), ("api", api_command)):
            with (data / f"{name}.log").open("wb") as out:
                running.append(
                    subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
                )
        wait_until_serving(data / "api.log", processes, running)
        yield f"http://127.0.0.1:{port}"
    finally:
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def wait_until_serving(log: Path, processes: int, running: list[subprocess.Popen[bytes]]) -> None:
    """Until every API process has said its startup is complete (none still importing)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in running):
            tails = [f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}" for f in logs(log)]
            raise RuntimeError("a process of the deployment exited:\n" + "\n".join(tails))
        if log.read_text(errors="replace").count("Application startup complete") >= processes:
            time.sleep(1.0)
            return
        time.sleep(0.2)
    raise RuntimeError(f"{processes} API processes did not start: {log}")


def logs(api_log: Path) -> list[Path]:
    return sorted(api_log.parent.glob("*.log"))


def _ok(client: httpx.Client, path: str, token: str, body: Any) -> dict[str, Any]:
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code >= 300:
        raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
    made: dict[str, Any] = response.json()
    return made


def centre(base: str) -> tuple[str, str, str]:
    """A centre, its admin's token and an EV's token, made through the API."""
    with httpx.Client(base_url=base, timeout=30) as client:
        centre_id = _ok(client, "/centres", ADMIN_TOKEN, {"name": "Bench"})["created_id"]
        body = {"name": "Admin", "role": "centre_admin", "qualification": "qualified"}
        admin = _ok(client, f"/centres/{centre_id}/staff", ADMIN_TOKEN, body)["token"]
        ev = _ok(client, f"/centres/{centre_id}/ev-allocations", ADMIN_TOKEN, {"name": "EV"})
        return str(centre_id), str(admin), str(ev["token"])


async def load(
    base: str,
    seconds: float,
    clients: int,
    request: Callable[[httpx.AsyncClient, int], Awaitable[int]],
) -> float:
    """Requests a second over `seconds`, `clients` in flight, after a one-second warm-up."""
    done = 0
    failed: dict[int, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        start = time.monotonic() + 1.0
        stop = start + seconds

        async def one(worker: int) -> None:
            nonlocal done, failed
            n = 0
            while time.monotonic() < stop:
                status = await request(client, worker * 1_000_000 + n)
                n += 1
                if time.monotonic() >= start:
                    if status < 300:
                        done += 1
                    else:
                        failed[status] = failed.get(status, 0) + 1

        await asyncio.gather(*(one(w) for w in range(clients)))
    if failed:
        log(f"  requests failed (status: count): {failed}")
    return done / seconds


def measure(base: str, seconds: float, clients: int) -> dict[str, float]:
    centres = [centre(base) for _ in range(clients)]
    centre_id, _, ev = centres[0]

    async def write(client: httpx.AsyncClient, n: int) -> int:
        own, admin, _ = centres[n // 1_000_000]
        response = await client.post(
            f"/centres/{own}/learners",
            json={"name": f"Learner {n}"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        return response.status_code

    async def read(client: httpx.AsyncClient, n: int) -> int:
        response = await client.get(
            f"/centres/{centre_id}/audit",
            params={"limit": "50"},
            headers={"Authorization": f"Bearer {ev}"},
        )
        return response.status_code

    writes = asyncio.run(load(base, seconds, clients, write))
    reads = asyncio.run(load(base, seconds, clients, read))
    return {"writes_per_s": writes, "reads_per_s": reads}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.processes", description=__doc__)
    parser.add_argument("--processes", default="1,2,4", help="API process counts to measure")
    parser.add_argument("--seconds", type=float, default=10.0, help="per figure")
    parser.add_argument("--clients", type=int, default=16, help="requests in flight")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--out", type=Path, help="the JSON file (default bench/results/...)")
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    rows: list[dict[str, float]] = []
    load_before = os.getloadavg()[0]
    with TemporaryDirectory(prefix="eportfolio-processes-") as tmp:
        for count in counts:
            log(f"{count} API process(es) + 1 worker")
            with deployment(args.pg_url, Path(tmp), count) as base:
                row = {"api_processes": float(count), **measure(base, args.seconds, args.clients)}
            rows.append(row)
            log(f"  writes {row['writes_per_s']:.0f}/s, reads {row['reads_per_s']:.0f}/s")
    first = rows[0]
    for row in rows:
        row["writes_ratio"] = row["writes_per_s"] / first["writes_per_s"]
        row["reads_ratio"] = row["reads_per_s"] / first["reads_per_s"]
    lines = [
        "| API processes | writes/s | vs 1 process | reads/s | vs 1 process |",
        "| --- | --- | --- | --- | --- |",
    ] + [
        f"| {r['api_processes']:.0f} | {r['writes_per_s']:.0f} | {r['writes_ratio']:.2f} "
        f"| {r['reads_per_s']:.0f} | {r['reads_ratio']:.2f} |"
        for r in rows
    ]
    lines.append(
        f"\nLoad average (1 min) before and after: {load_before:.1f}, "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
    )
    print("\n".join(lines))
    day = datetime.now(UTC).date().isoformat()
    out = args.out or RESULTS / f"{day}-processes.json"
    meta = {
        "seconds": args.seconds,
        "clients": args.clients,
        "cores": os.cpu_count(),
        "load_average_1min": [load_before, os.getloadavg()[0]],  # others' work on the host
    }
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
