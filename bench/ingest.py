"""Figure 1 (and 7): commands through HTTP against the library's own save rate, same run.

A real server process; `concurrency` client threads (httpx), each owning some portfolios,
post evidence (as the learner), observations and decisions (as the assessor) in the ratio
2:2:1. Baselines in the same run, on the same backend: the library's `Application.save`
of the very events the server stored (one event per call, one thread), and raw single-row
commits (sqlite3 / psycopg, one transaction per row) of the same bytes: the disk's limit.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from adapters.bootstrap import build
from adapters.config import Config
from bench import server as srv
from bench.common import Figure, cpu_seconds, log, rss_mb, stopwatch, store_config, summary_ms
from domain.events import (
    DecisionRecorded,
    EvidenceSubmitted,
    LearnerEnrolled,
    ObservationRecorded,
)
from service.codec import Recorded

INGESTED = (EvidenceSubmitted.TOPIC, ObservationRecorded.TOPIC, DecisionRecorded.TOPIC)


@dataclass
class Store:
    backend: str
    config: Config
    url: str | None = None
    schema: str | None = None


@contextmanager
def store(backend: str, directory: Path, pg_url: str, label: str) -> Iterator[Store]:
    """A fresh SQLite directory, or a fresh PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        yield Store("sqlite", store_config(directory))
        return
    schema = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    url = f"{pg_url}?schema={schema}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        yield Store("postgres", store_config(directory, url), url, schema)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def run(
    backend: str,
    workdir: Path,
    pg_url: str,
    *,
    commands: int,
    concurrency: int,
    centres: int,
    learners: int,
    workers: int = 1,
) -> list[Figure]:
    """`workers` > 1 (PostgreSQL): `serve --workers N --no-roles` plus `eportfolio worker`,
    server CPU summed over all their processes."""
    with store(backend, workdir / f"ingest-{backend}", pg_url, "ingest") as target:
        http = _http(target, commands, concurrency, centres, learners, workers)
        enrolments, events = _stored_events(target.config)
    with store(backend, workdir / f"save-{backend}", pg_url, "save") as fresh:
        save_rate = _library_save(fresh.config, enrolments, events)
    with store(backend, workdir / f"raw-{backend}", pg_url, "raw") as raw:
        raw_rate = _raw_commits(raw, [r.state for r in events][: max(500, commands // 2)])
    rate = http["rate"]
    deployment = f", serve --workers {workers} + a worker" if workers > 1 else ""
    return [
        Figure(
            "1", f"ingest via HTTP, commands/s{deployment}", backend, rate, "cmd/s",
            baseline=save_rate, baseline_label="library Application.save, 1 event/call",
            target="≥0.5x save (stretch 1.0x)", passed=rate >= 0.5 * save_rate,
            notes=f"{concurrency} clients; p50 {http['p50_ms']:.1f} ms, "
            f"p99 {http['p99_ms']:.1f} ms; {http['errors']} errors; "
            f"CPU per command: server {http['server_cpu_ms_per_command']:.1f} ms, "
            f"clients {http['client_cpu_ms_per_command']:.1f} ms",
            extra=http,
        ),
        Figure(
            "1", "library Application.save, events/s", backend, save_rate, "ev/s",
            baseline=raw_rate, baseline_label="raw single-row commits (disk limit)",
            notes="context: the save baseline against the disk",
        ),
    ] + ([] if workers > 1 else [  # with N processes, the supervisor's peak says nothing
        Figure(
            "7", "server peak RSS during ingest", backend, http["peak_rss_mb"], "MB",
            baseline=http["idle_rss_mb"], baseline_label="server RSS after start-up",
            notes="VmHWM of the server process",
        ),
    ])  # fmt: skip


@dataclass
class _Stored:
    state: bytes
    recorded: Recorded


def _http(  # noqa: PLR0917 - the figure's sizes, in the order `run` takes them
    target: Store, commands: int, concurrency: int, centres: int, learners: int, workers: int = 1
) -> dict[str, float]:
    server = srv.start(target.config.data_dir, target.url, workers=workers)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            made = [
                srv.setup_centre(client, f"Bench centre {n}", learners=learners)
                for n in range(centres)
            ]
        portfolios = [p for centre in made for p in centre.portfolios]
        idle_rss = rss_mb(server.pid)
        warm = _drive(server.url, portfolios, max(20, commands // 20), concurrency)
        log(f"ingest {target.backend}: warm-up {warm['n']:.0f} commands, timed {commands}")
        pids = server.pids()
        cpu, client_cpu = sum(map(cpu_seconds, pids)), cpu_seconds()
        with profiled(server.pid, f"ingest-{target.backend}"):
            result = _drive(server.url, portfolios, commands, concurrency)
        # CPU the server spent per command: with 2 cores shared by server and clients this,
        # not the disk, is what bounds commands/s.
        spent = sum(map(cpu_seconds, pids)) - cpu
        result["server_cpu_ms_per_command"] = spent * 1000 / commands
        result["client_cpu_ms_per_command"] = (cpu_seconds() - client_cpu) * 1000 / commands
        result["peak_rss_mb"] = server.peak_rss_mb()
        result["idle_rss_mb"] = idle_rss
        result["portfolios"] = len(portfolios)
        result["concurrency"] = concurrency
        return result
    finally:
        srv.stop(server)


@contextmanager
def profiled(pid: int, name: str) -> Iterator[None]:
    """With BENCH_PROFILE_DIR set, py-spy samples every thread of `pid` meanwhile."""
    directory = os.environ.get("BENCH_PROFILE_DIR")
    if not directory:
        yield
        return
    out = Path(directory) / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = ["py-spy", "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--gil"]
    spy = subprocess.Popen([*command, "--nonblocking", "-o", str(out)], stderr=subprocess.DEVNULL)
    time.sleep(1)  # attached
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
        log(f"py-spy profile of {name}: {out}")


def _drive(
    url: str, portfolios: list[srv.ApiPortfolio], commands: int, concurrency: int
) -> dict[str, float]:
    """`commands` writes from `concurrency` threads; latency of each and the wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    shares = [portfolios[i::concurrency] for i in range(concurrency)]
    per_worker = [
        commands // concurrency + (i < commands % concurrency) for i in range(concurrency)
    ]

    def work(mine: list[srv.ApiPortfolio], count: int) -> None:
        own: list[float] = []
        with httpx.Client(base_url=url, timeout=60) as client:
            for n in range(count):
                portfolio = mine[n % len(mine)]
                step = (n // len(mine)) % 5
                started = time.perf_counter()
                status, text = _command(client, portfolio, step, n)
                own.append(time.perf_counter() - started)
                if status >= 300:
                    with lock:
                        errors.append(f"{status} {text[:200]}")
        with lock:
            latencies.extend(own)

    threads = [
        threading.Thread(target=work, args=(mine, count))
        for mine, count in zip(shares, per_worker, strict=True)
        if mine and count
    ]
    with stopwatch() as elapsed:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        log(f"{len(errors)} failed commands, e.g. {errors[0]}")
    ok = len(latencies) - len(errors)
    return {"rate": ok / elapsed(), "seconds": elapsed(), "errors": len(errors)} | summary_ms(
        latencies
    )


def _command(
    client: httpx.Client, portfolio: srv.ApiPortfolio, step: int, n: int
) -> tuple[int, str]:
    base = f"/portfolios/{portfolio.portfolio_id}"
    if step in (0, 2) or not portfolio.evidence:
        path, token, body = f"{base}/evidence", portfolio.learner_token, srv.evidence_body(n)
    elif step in (1, 3):
        path, token, body = (
            f"{base}/observations",
            portfolio.assessor_token,
            srv.observation_body(n),
        )
    else:
        path, token = f"{base}/decisions", portfolio.assessor_token
        body = srv.decision_body(portfolio.evidence)
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code < 300 and step != 4:
        portfolio.evidence.append(response.json()["created_id"])
    return response.status_code, response.text


def _stored_events(config: Config) -> tuple[list[Recorded], list[_Stored]]:
    """The enrolments, and the evidence, observations and decisions the server stored."""
    app = build(config)
    try:
        enrolments, ingested = [], []
        for n in app.ledger.notifications():
            if n.topic == LearnerEnrolled.TOPIC:
                enrolments.append(app.ledger.decode(n))
            elif n.topic in INGESTED:
                ingested.append(_Stored(n.state, app.ledger.decode(n)))
        return enrolments, ingested
    finally:
        app.ledger.close()


def _library_save(config: Config, enrolments: list[Recorded], events: list[_Stored]) -> float:
    """The library's save rate for the same events: one `save()` per event, one thread.

    The ledger is built as the server builds it (`build`: the key store seals personal
    fields); the enrolments go first, untimed, so the same streams and versions follow.
    """
    app = build(config)
    try:
        app.ledger.save(*enrolments)
        with stopwatch() as elapsed:
            for item in events:
                app.ledger.save(item.recorded)
        return len(events) / elapsed()
    finally:
        app.ledger.close()


def _raw_commits(target: Store, states: list[bytes]) -> float:
    """One row per transaction: the storage's own commit rate, nothing of ours on top."""
    if target.backend == "sqlite":
        conn = sqlite3.connect(target.config.data_dir / "raw.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")  # as the library's pool sets it
        conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        try:
            with stopwatch() as elapsed:
                for state in states:
                    conn.execute("BEGIN")
                    conn.execute("INSERT INTO rows (body) VALUES (?)", (state,))
                    conn.execute("COMMIT")
            return len(states) / elapsed()
        finally:
            conn.close()
    assert target.url is not None
    assert target.schema is not None
    with psycopg.connect(target.url.split("?")[0], autocommit=True) as pg:
        table = sql.Identifier(target.schema, "raw_rows")
        pg.execute(sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, body bytea)").format(table))
        insert = sql.SQL("INSERT INTO {} (body) VALUES (%s)").format(table)
        with stopwatch() as elapsed:
            for state in states:
                pg.execute(insert, (state,), prepare=True)
        return len(states) / elapsed()
