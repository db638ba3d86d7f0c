"""Figures 3 and 5: read latency against the size of the store, and time travel.

Figure 3 opens a small store (~10k events) and a big one side by side, and alternates
short blocks of reads between them, so a burst of load from elsewhere on the machine
hits both alike. Each block is `threads` concurrent readers, half asking for a random
portfolio's coverage, half for a random centre's EV audit view (first page of the trail,
every decision chain, sampling compliance, EV samples). The baseline is the small store.

Figure 5 grows one portfolio of the small store to 1,000 events with `Eportfolio.execute`
(the write path, so this also times `execute` on a long stream), then asks for its
coverage `as_known_at` random moments of its history. Baselines: reading and decoding the
stream alone, the stored (present-day) coverage, and the fold from the first event plus
coverage of the stream already decoded (what as_known_at did before it folded on from held
states). Each query's thread CPU time is reported beside its wall time: on a shared
machine the wall time's tail is mostly waiting for a core.
"""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast
from uuid import uuid4

from adapters.bootstrap import build
from adapters.config import Config
from adapters.http.app import freeze_startup_heap
from adapters.store.views import open_view_store
from bench.common import Figure, log, stopwatch, summary_ms
from bench.data import Generated
from domain import commands as c
from domain.events import Environment, Role
from domain.portfolio import fold_portfolio
from domain.spec import CriterionKind, Method
from projections.coverage import coverage
from projections.portfolio_view import PortfolioStateProjection
from service.handlers import Eportfolio
from service.queries import Queries, ViewReader


@dataclass
class Opened:
    label: str
    app: Eportfolio
    queries: Queries
    made: Generated


@contextmanager
def opened(label: str, config: Config, made: Generated) -> Iterator[Opened]:
    app = build(config)
    view = open_view_store(config, PortfolioStateProjection.name)
    try:
        yield Opened(label, app, Queries(app, cast(ViewReader, view)), made)
    finally:
        view.close()
        app.ledger.close()


def latency(
    small: tuple[Config, Generated],
    big: tuple[Config, Generated],
    *,
    rounds: int,
    block: int,
    threads: int,
) -> list[Figure]:
    samples: dict[tuple[str, str], list[float]] = {}
    with opened("small", *small) as a, opened("big", *big) as b:
        for store in (a, b):  # warm both: first reads open connections, load specs
            _block(store, 20, threads, samples={})
        freeze_startup_heap()  # as `serve` does once its services run (ADR 0026)
        for n in range(rounds):
            for store in (a, b) if n % 2 == 0 else (b, a):
                _block(store, block, threads, samples)
        alone = _alone(a, b, reads=rounds * block // 2)
        sizes = {s.label: s.made.events for s in (a, b)}
    gc.unfreeze()
    log(f"reads: {rounds} rounds of {block} reads on each store")
    figures = []
    for kind in ("coverage", "audit"):
        at_small = summary_ms(samples["small", kind])
        at_big = summary_ms(samples["big", kind])
        ratio = at_big["p99_ms"] / at_small["p99_ms"]
        figures.append(
            Figure(
                "3", f"{kind} p99 at {sizes['big']:,} events", "sqlite", at_big["p99_ms"], "ms",
                baseline=at_small["p99_ms"], baseline_label=f"p99 at {sizes['small']:,} events",
                target="≤1.2x small store", passed=ratio <= 1.2,
                notes=f"{threads} concurrent readers; p50 {at_big['p50_ms']:.2f} vs "
                f"{at_small['p50_ms']:.2f} ms",
                extra={"big": at_big, "small": at_small},
            )
        )  # fmt: skip
    figures.append(
        Figure(
            "3", f"audit p99 at {sizes['big']:,} events, one reader", "sqlite",
            alone["big"]["p99_ms"], "ms", baseline=alone["small"]["p99_ms"],
            baseline_label=f"p99 at {sizes['small']:,} events, one reader",
            target="p99 < 20 ms", passed=alone["big"]["p99_ms"] < 20,
            notes=f"one request at a time, as one EV's desk asks; p50 "
            f"{alone['big']['p50_ms']:.2f} vs {alone['small']['p50_ms']:.2f} ms",
            extra=alone,
        )
    )  # fmt: skip
    return figures


def _alone(a: Opened, b: Opened, *, reads: int) -> dict[str, dict[str, float]]:
    """The EV audit view read by one thread, the two stores alternating every 50 reads.

    The readers above share one GIL, so their p99 is mostly the other readers' turns; this
    is the latency of one request with nothing else in the process.
    """
    rng = random.Random(7)
    timings: dict[str, list[float]] = {a.label: [], b.label: []}
    for n in range(reads // 50):
        store = (a, b)[n % 2]
        for _ in range(50):
            centre = rng.choice(store.made.centres)
            started = time.perf_counter()
            store.queries.audit(centre, limit=100)
            timings[store.label].append(time.perf_counter() - started)
    return {label: summary_ms(seconds) for label, seconds in timings.items()}


def _block(
    store: Opened, count: int, threads: int, samples: dict[tuple[str, str], list[float]]
) -> None:
    lock = threading.Lock()

    def read(seed: int) -> None:
        rng = random.Random(seed)
        own: list[tuple[str, float]] = []
        for n in range(count // threads):
            kind = "coverage" if n % 2 == 0 else "audit"
            started = time.perf_counter()
            if kind == "coverage":
                store.queries.coverage(rng.choice(store.made.portfolios).portfolio_id)
            else:
                store.queries.audit(rng.choice(store.made.centres), limit=100)
            own.append((kind, time.perf_counter() - started))
        with lock:
            for kind, seconds in own:
                samples.setdefault((store.label, kind), []).append(seconds)

    workers = [
        threading.Thread(target=read, args=(random.getrandbits(32),)) for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def time_travel(config: Config, made: Generated, *, events: int, queries: int) -> list[Figure]:
    with opened("small", config, made) as store:
        app = store.app
        ref = made.portfolios[0]
        portfolio = app.portfolio(ref.portfolio_id)
        spec = app.spec_of(portfolio)
        performance = [x.id for x in spec.criteria if x.kind is CriterionKind.PERFORMANCE]
        learner = c.Actor(id=ref.learner_id, role=Role.LEARNER)
        assessor = c.Actor(id=ref.assessor_id, role=Role.ASSESSOR)
        grow = events - portfolio.version
        today = datetime.now(UTC).date()
        with stopwatch() as elapsed:
            for n in range(grow):
                if n % 2:
                    command: c.Command = c.RecordObservation(
                        evidence_id=uuid4(),
                        occasion=f"shift {n}",
                        customer_ref=f"cust-{n % 900 + 100}",
                        environment=Environment.WORKPLACE,
                        criteria=tuple(performance[n % 3 :: 3][:4]),
                        notes="Observed handling a live customer problem end to end.",
                        effective_on=today,
                    )
                    app.execute(assessor, command, target=ref.portfolio_id)
                else:
                    command = c.SubmitEvidence(
                        evidence_id=uuid4(),
                        method=Method.WORK_PRODUCT,
                        title=f"Complaint record, occasion {n}",
                        occasion=f"shift {n}",
                        customer_ref=f"cust-{n % 900 + 100}",
                        environment=Environment.WORKPLACE,
                        authenticity_declared=True,
                        effective_on=today,
                    )
                    app.execute(learner, command, target=ref.portfolio_id)
        execute_rate = grow / elapsed()
        recorded = [e.recorded_at for e in app.ledger.portfolio_events(ref.portfolio_id)]
        log(f"time travel: grew a portfolio to {len(recorded)} events ({execute_rate:.0f} cmd/s)")
        rng = random.Random(5)
        travel, cpu, reading, stored, fold = [], [], [], [], []
        stream = app.ledger.portfolio_events(ref.portfolio_id)
        centre = app.centre(ref.centre_id)
        observed = centre.observed_criteria.get(spec.code, ())
        for _ in range(queries):
            moment = rng.choice(recorded)
            started, on_cpu = time.perf_counter(), time.thread_time()
            store.queries.coverage(ref.portfolio_id, as_known_at=moment)
            travel.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - on_cpu)  # this thread's own: the load left out
            reading.append(_timed(lambda: app.ledger.recorded(ref.portfolio_id)))
            stored.append(_timed(lambda: store.queries.coverage(ref.portfolio_id)))
            started = time.perf_counter()  # what a cache of the decoded stream would leave
            known = fold_portfolio([e for e in stream if e.recorded_at <= moment])
            assert known is not None
            coverage(known, spec, observed)
            fold.append(time.perf_counter() - started)
    got, base, view = summary_ms(travel), summary_ms(reading), summary_ms(stored)
    folded, own = summary_ms(fold), summary_ms(cpu)
    return [
        Figure(
            "5", f"coverage as_known_at, {len(recorded):,}-event portfolio, p99", "sqlite",
            got["p99_ms"], "ms", baseline=base["p99_ms"],
            baseline_label="read + decode the stream alone, p99", target="p99 < 10 ms",
            passed=got["p99_ms"] < 10,
            notes=f"p50 {got['p50_ms']:.2f} ms; CPU p50 {own['p50_ms']:.2f}, p99 "
            f"{own['p99_ms']:.2f} ms; stored coverage p99 {view['p99_ms']:.2f} ms",
            extra={"as_known_at": got, "as_known_at_cpu": own, "stream": base, "stored": view,
                   "fold_only": folded},
        ),
        Figure(
            "5", "  the same, events already decoded (fold + coverage only)", "sqlite",
            folded["p99_ms"], "ms", baseline=got["p99_ms"], baseline_label="as_known_at p99",
            notes=f"context: the fold from the first event, and coverage; p50 "
            f"{folded['p50_ms']:.2f} ms",
        ),
        Figure(
            "5", f"execute on a portfolio growing to {len(recorded):,} events", "sqlite",
            execute_rate, "cmd/s", notes="context: one thread, in process",
        ),
    ]  # fmt: skip


def _timed(ask: Callable[[], object]) -> float:
    started = time.perf_counter()
    ask()
    return time.perf_counter() - started
