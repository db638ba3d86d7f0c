"""`python -m bench [--quick]`: every figure of issue 7, a table, and bench/results/*.json.

See bench/README.md for what each figure measures, its baseline and its target.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from adapters.bootstrap import build
from adapters.config import Config
from bench import freshness, ingest, reads, rebuild, verification
from bench.common import Figure, log, store_config
from bench.data import Generated, Template, generate
from bench.report import markdown, table, write_json

RESULTS = Path(__file__).parent / "results"
DEFAULT_PG = os.environ.get(
    "EPORTFOLIO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


class Sizes:
    def __init__(self, quick: bool, big: int | None) -> None:
        self.small = 10_000
        self.big = big or (50_000 if quick else 1_000_000)
        self.ingest_commands = 400 if quick else 3_000
        self.ingest_concurrency = 8
        self.ingest_centres = 4
        self.ingest_learners = 8
        self.read_rounds = 4 if quick else 10
        self.read_block = 200
        self.read_threads = 4
        self.fresh_writes = 150 if quick else 500
        self.sse_subscribers = 100
        self.sse_writes = 50 if quick else 200
        self.sse_rate = 20.0
        self.travel_events = 1_000
        self.travel_queries = 200 if quick else 500


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a few minutes")
    parser.add_argument("--events", type=int, help="events in the big store (default 1M / 50k)")
    parser.add_argument("--only", default="1,2,3,4,5,6", help="figures to run, e.g. 1,4")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL for figure 1")
    parser.add_argument("--no-postgres", action="store_true", help="figure 1 on SQLite only")
    parser.add_argument("--workdir", type=Path, help="where the stores go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    parser.add_argument("--out", type=Path, help="the JSON file (default bench/results/...)")
    args = parser.parse_args()
    sizes = Sizes(args.quick, args.events)
    only = {x.strip() for x in args.only.split(",")}
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="eportfolio-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    load_before = os.getloadavg()
    figures: list[Figure] = []
    log(f"{mode} run in {workdir}; big store {sizes.big:,} events")
    try:
        figures += run(only, sizes, workdir, args)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    stamp = datetime.now(UTC)
    out = args.out or RESULTS / f"{stamp:%Y-%m-%d}-{mode}.json"
    meta = {
        "date": stamp.isoformat(timespec="seconds"),
        "mode": mode,
        "command": "python -m bench" + (" --quick" if args.quick else ""),
        "seconds": round(time.perf_counter() - started, 1),
        "cpus": os.cpu_count(),
        # Other work on the machine inflates p99s: the load averages say how much there was.
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "big_store_events": sizes.big,
    }
    write_json(out, figures, meta)
    table(figures, title=f"eportfolio benchmarks ({mode}, {stamp:%Y-%m-%d})")
    (out.with_suffix(".md")).write_text(markdown(figures) + "\n")
    log(f"wrote {out} and {out.with_suffix('.md')} in {meta['seconds']} s")
    return 0


def run(only: set[str], sizes: Sizes, workdir: Path, args: argparse.Namespace) -> list[Figure]:
    figures: list[Figure] = []
    if "1" in only:
        backends = ["sqlite"] if args.no_postgres or not _postgres_up(args.pg_url) else [
            "sqlite", "postgres"
        ]  # fmt: skip
        deployments = [(b, 1) for b in backends] + [("postgres", 2)] * ("postgres" in backends)
        for backend, workers in deployments:  # PostgreSQL also as docs/deploy.md runs it
            figures += ingest.run(
                backend,
                workdir,
                args.pg_url,
                commands=sizes.ingest_commands,
                concurrency=sizes.ingest_concurrency,
                centres=sizes.ingest_centres,
                learners=sizes.ingest_learners,
                workers=workers,
            )
    template: Template | None = None
    if only & {"2", "3", "4", "5", "6"}:
        specs_app = build(store_config(workdir / "specs-only"))
        specs_app.ledger.close()
        template = Template(specs_app.specs)
    if "4" in only and template is not None:
        figures.append(freshness.read_your_writes(workdir, template, writes=sizes.fresh_writes))
        figures += freshness.sse(
            workdir,
            subscribers=sizes.sse_subscribers,
            writes=sizes.sse_writes,
            rate=sizes.sse_rate,
        )
    if not only & {"2", "3", "5", "6"} or template is None:
        return figures
    small_config = store_config(workdir / "small")
    small = _store(small_config, template, sizes.small, seed=1)
    big_config = store_config(workdir / "big")
    big = _store(big_config, template, sizes.big, seed=2)
    figures.append(
        Figure("-", f"generate the big store ({big.events:,} events)", "sqlite", big.rate, "ev/s",
               notes=f"{len(big.centres):,} centres, {len(big.portfolios):,} portfolios; "
               f"Application.save, 5,000 events a call")
    )  # fmt: skip
    # The rebuild also builds the views figures 3 and 5 read and the Merkle index figure 6
    # exports.
    log("rebuilding the small store's views")
    rebuild.run(small_config)
    if only & {"2", "3", "6"}:
        log(f"figure 2: rebuilding {big.events:,} events")
        rebuilt = rebuild.run(big_config)
        if "2" in only:
            figures += rebuilt
    if "3" in only:
        figures += reads.latency(
            (small_config, small),
            (big_config, big),
            rounds=sizes.read_rounds,
            block=sizes.read_block,
            threads=sizes.read_threads,
        )
    if "5" in only:
        figures += reads.time_travel(
            small_config, small, events=sizes.travel_events, queries=sizes.travel_queries
        )
    if "6" in only:
        figures += verification.run(big_config, small_config)
    return figures


def _store(config: Config, template: Template, events: int, *, seed: int) -> Generated:
    app = build(config)
    try:
        log(f"generating {events:,} events in {config.data_dir}")
        step = max(50_000, events // 10)

        logged = [0]

        def progress(done: int) -> None:
            if done // step > logged[0]:
                logged[0] = done // step
                log(f"  {done:,} events")

        made = generate(app.ledger, template, events, seed=seed, progress=progress)
        log(f"  {made.events:,} events in {made.seconds:.0f} s ({made.rate:,.0f}/s)")
        return made
    finally:
        app.ledger.close()


def _postgres_up(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        log(f"no PostgreSQL at {url}: figure 1 on SQLite only")
        return False


if __name__ == "__main__":
    raise SystemExit(main())
