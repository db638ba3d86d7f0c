"""Figure 4: how soon a commit can be read back (coverage) and reaches SSE subscribers.

Read-your-writes runs in process, as the HTTP `?wait=true` path does: `execute` returns
after the commit, then `Projections.wait_all(position)` and the stored coverage read; the
baseline is the same coverage read with nothing to wait for. SSE runs against a real
server: `subscribers` clients (httpx, one asyncio loop) hold `GET /events/stream` open
while a writer posts observations at a steady rate; each frame's latency is the time it
arrived minus the event's `recordedtime` — stamped *before* the save, so this includes
deciding and committing and over-states commit → delivery. The baseline is one subscriber.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast
from uuid import uuid4

import httpx

from adapters.bootstrap import build, build_projections
from adapters.store.views import SqliteViewStore
from bench import server as srv
from bench.common import Figure, log, store_config, summary_ms
from bench.data import Template, generate
from domain import commands as c
from domain.events import Environment, Role
from domain.portfolio import PortfolioState
from domain.spec import CriterionKind
from service.queries import Queries, ViewReader


def read_your_writes(workdir: Path, template: Template, *, writes: int) -> Figure:
    config = store_config(workdir / "freshness")
    app = build(config, specs=None)
    made = generate(app.ledger, template, 5_000, seed=11)
    projections = build_projections(config, app)
    try:
        projections.start()
        projections.wait_all(app.ledger.recorder.max_notification_id() or 0, 120)
        store = projections["portfolio_state"].store
        assert isinstance(store, SqliteViewStore)
        queries = Queries(app, cast(ViewReader, store))
        rng = random.Random(3)
        reads, fresh = [], []
        # The demo centre certifies and withdraws some learners: their portfolios refuse
        # assessment writes, so only open ones are written to.
        open_ones = [p for p in made.portfolios if _is_open(app.portfolio(p.portfolio_id))]
        for n in range(writes):
            ref = rng.choice(open_ones)
            spec = app.spec_of(app.portfolio(ref.portfolio_id))
            criteria = tuple(x.id for x in spec.criteria if x.kind is CriterionKind.PERFORMANCE)[:3]
            started = time.perf_counter()
            queries.coverage(ref.portfolio_id)
            reads.append(time.perf_counter() - started)
            command = c.RecordObservation(
                evidence_id=uuid4(),
                occasion=f"bench {n}",
                customer_ref=f"cust-{n % 900 + 100}",
                environment=Environment.WORKPLACE,
                criteria=criteria,
                notes="Observed handling a live customer problem end to end.",
                effective_on=datetime.now(UTC).date(),
            )
            actor = c.Actor(id=ref.assessor_id, role=Role.ASSESSOR)
            result = app.execute(actor, command, target=ref.portfolio_id)
            committed = time.perf_counter()
            if not projections.wait_all(result.position, 2.0):
                msg = f"the view did not reach {result.position} within 2 s"
                raise RuntimeError(msg)
            report = queries.coverage(ref.portfolio_id)
            fresh.append(time.perf_counter() - committed)
            assert report is not None
    finally:
        projections.close()
        app.ledger.close()
    got, base = summary_ms(fresh), summary_ms(reads)
    return Figure(
        "4", "commit → visible in coverage, p99", "sqlite", got["p99_ms"], "ms",
        baseline=base["p99_ms"], baseline_label="coverage read alone, p99",
        target="p99 < 20 ms", passed=got["p99_ms"] < 20,
        notes=f"in process, {writes} writes; p50 {got['p50_ms']:.2f} ms",
        extra={"fresh": got, "read": base},
    )  # fmt: skip


def sse(workdir: Path, *, subscribers: int, writes: int, rate: float) -> list[Figure]:
    """One server; first one subscriber (the baseline), then `subscribers` at once."""
    server = srv.start(workdir / "sse")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            centre = srv.setup_centre(client, "SSE centre", learners=4)
        single = _sse_round(server.url, centre, 1, writes, rate)
        many = _sse_round(server.url, centre, subscribers, writes, rate)
        peak = server.peak_rss_mb()
    finally:
        srv.stop(server)
    return [
        Figure(
            "4", f"commit → each of {subscribers} SSE subscribers, p99", "sqlite",
            many["p99_ms"], "ms", baseline=single["p99_ms"], baseline_label="1 subscriber, p99",
            target="p99 < 100 ms", passed=many["p99_ms"] < 100 and many["missing"] == 0,
            notes=f"{writes} events at {rate:.0f}/s; p50 {many['p50_ms']:.1f} ms; "
            f"{many['missing']:.0f} frames missing; server peak RSS {peak:.0f} MB",
            extra={"many": many, "single": single, "server_peak_rss_mb": peak},
        )
    ]  # fmt: skip


def _sse_round(
    url: str, centre: srv.ApiCentre, subscribers: int, writes: int, rate: float
) -> dict[str, float]:
    connected = threading.Event()
    count = [0]
    done = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(subscribers)]

    async def subscribe(index: int, client: httpx.AsyncClient) -> None:
        headers = {"Authorization": f"Bearer {srv.ADMIN_TOKEN}", "Accept": "text/event-stream"}
        async with client.stream("GET", "/events/stream", headers=headers) as response:
            response.raise_for_status()
            count[0] += 1
            if count[0] == subscribers:
                connected.set()
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    arrived = time.time()
                    event = json.loads(line[6:])  # the caught-up frame has no type
                    if event.get("type", "").endswith("observation.recorded.v1"):
                        recorded = datetime.fromisoformat(event["recordedtime"]).timestamp()
                        latencies[index].append(arrived - recorded)
                        if len(latencies[index]) >= writes:
                            return
                if done.is_set():
                    return

    async def main() -> None:
        limits = httpx.Limits(max_connections=subscribers + 5)
        async with httpx.AsyncClient(base_url=url, timeout=None, limits=limits) as client:
            tasks = [asyncio.create_task(subscribe(i, client)) for i in range(subscribers)]
            await asyncio.to_thread(done.wait)
            await asyncio.sleep(3)  # the last frames
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    loop_thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    loop_thread.start()
    if not connected.wait(120):
        msg = f"only {count[0]} of {subscribers} SSE subscribers connected"
        raise RuntimeError(msg)
    time.sleep(0.5)
    log(f"sse: {subscribers} subscribers connected; {writes} writes at {rate}/s")
    with httpx.Client(base_url=url, timeout=60) as client:
        for n in range(writes):
            portfolio = centre.portfolios[n % len(centre.portfolios)]
            response = client.post(
                f"/portfolios/{portfolio.portfolio_id}/observations",
                json=srv.observation_body(n),
                headers={"Authorization": f"Bearer {portfolio.assessor_token}"},
            )
            response.raise_for_status()
            time.sleep(1 / rate)
    done.set()
    loop_thread.join(timeout=30)
    flat = [x for per in latencies for x in per]
    missing = subscribers * writes - len(flat)
    return summary_ms(flat) | {"missing": float(max(0, missing))}


def _is_open(portfolio: PortfolioState) -> bool:
    return portfolio.certified_on is None and portfolio.withdrawn_on is None
