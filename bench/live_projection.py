"""The live projection's CPU per event, A/B: `python -m bench.live_projection [--against DIR]`.

Figure 1's server follows the log one commit at a time, so the state view folds and
derives one event per batch. This replays a store made by figure 1's own traffic (a real
server, the same clients and command mix) through a fresh view, one event per batch as
the follower does, and reports the CPU per event of the projection (`apply` + `flush`)
and of the whole batch (reading, decoding, committing). With `--against DIR` (a checkout
of other code, e.g. main's worktree) it alternates runs of that code and this one on the
same store, each in a child process, and checks that both wrote the same documents: the
machine is shared, so only ratios from the same minutes mean anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

# In a child these are whichever checkout PYTHONPATH names (`_child`).
from adapters.bootstrap import build
from adapters.store.projection_runner import ProjectionRunner
from adapters.store.views import SqliteViewStore
from bench import ingest
from bench import server as srv
from bench.common import log, store_config
from projections.portfolio_view import PortfolioStateProjection

HERE = Path(__file__).resolve().parent.parent


def make_store(directory: Path, commands: int, centres: int, learners: int) -> Path:
    """A store holding figure 1's traffic: `centres` x `learners` portfolios, `commands`."""
    server = srv.start(directory)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            made = [
                srv.setup_centre(client, f"Bench centre {n}", learners=learners)
                for n in range(centres)
            ]
        portfolios = [p for centre in made for p in centre.portfolios]
        ingest._drive(server.url, portfolios, commands, 8)
    finally:
        srv.stop(server)
    return directory


def replay(store: Path) -> dict[str, Any]:
    """One replay of `store` into a fresh view, one event a batch (runs in a child)."""
    app = build(store_config(store))
    with tempfile.TemporaryDirectory(prefix="bench-live-") as scratch:
        view_path = Path(scratch) / "view.sqlite"
        view = SqliteViewStore(view_path, "portfolio_state")
        projection = PortfolioStateProjection(app.specs)
        spent = [0.0]
        apply, flush = projection.apply, projection.flush

        def timed_apply(position: int, event: Any, docs: Any) -> None:
            started = time.thread_time()
            apply(position, event, docs)
            spent[0] += time.thread_time() - started

        def timed_flush(docs: Any) -> None:
            started = time.thread_time()
            flush(docs)
            spent[0] += time.thread_time() - started

        projection.apply = timed_apply  # type: ignore[method-assign]
        projection.flush = timed_flush  # type: ignore[method-assign]
        runner = ProjectionRunner(app.ledger, projection, view, batch_size=1)
        started = time.thread_time()
        events = runner.catch_up(batch_size=1)
        total = time.thread_time() - started
        runner.close()
        with sqlite3.connect(view_path) as conn:
            digest = hashlib.sha256()
            for kind, key, centre, body in conn.execute(
                "SELECT kind, key, centre_id, body FROM docs ORDER BY kind, key"
            ):
                digest.update(f"{kind}\0{key}\0{centre}\0".encode() + body + b"\0")
    app.ledger.close()
    return {
        "events": events,
        "projection_ms_per_event": spent[0] * 1000 / events,
        "batch_ms_per_event": total * 1000 / events,
        "digest": digest.hexdigest(),
    }


def _child(code: Path, store: Path) -> dict[str, Any]:
    """`replay` with `code` first on the path (this file is run, not imported, there)."""
    script = (
        "import runpy, sys; sys.argv = [sys.argv[1], '--replay', sys.argv[2]]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run(
        [sys.executable, "-c", script, __file__, str(store)],
        cwd=code,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help="replay this store instead of making one")
    parser.add_argument("--against", type=Path, help="a checkout to compare with (A)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--commands", type=int, default=1200)
    parser.add_argument("--centres", type=int, default=4)
    parser.add_argument("--learners", type=int, default=8)
    args = parser.parse_args()
    if args.replay is not None:
        print(json.dumps(replay(args.replay)))
        return
    store = args.store
    if store is None:
        store = Path(tempfile.mkdtemp(prefix="bench-live-store-")) / "data"
        log(f"making a store of {args.commands} commands in {store}")
        make_store(store, args.commands, args.centres, args.learners)
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    codes = {"B": HERE} | ({"A": args.against.resolve()} if args.against else {})
    for round_ in range(args.rounds):
        for name, code in codes.items() if round_ % 2 else reversed(codes.items()):
            result = _child(code, store)
            runs[name].append(result)
            log(
                f"{name} ({code}): {result['events']} events, projection "
                f"{result['projection_ms_per_event']:.3f} ms/event, batch "
                f"{result['batch_ms_per_event']:.3f} ms/event"
            )
    for name, results in runs.items():
        if results:
            best = min(r["projection_ms_per_event"] for r in results)
            batch = min(r["batch_ms_per_event"] for r in results)
            log(f"{name}: best projection {best:.3f} ms/event, best batch {batch:.3f} ms/event")
    if runs["A"]:
        a = min(r["projection_ms_per_event"] for r in runs["A"])
        b = min(r["projection_ms_per_event"] for r in runs["B"])
        ab = min(r["batch_ms_per_event"] for r in runs["A"])
        bb = min(r["batch_ms_per_event"] for r in runs["B"])
        log(f"B / A: projection {b / a:.2f}x, batch {bb / ab:.2f}x")
        digests = {r["digest"] for rs in runs.values() for r in rs}
        log("documents identical" if len(digests) == 1 else f"DOCUMENTS DIFFER: {digests}")


if __name__ == "__main__":
    main()
