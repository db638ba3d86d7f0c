"""Figure 2 (and 7): every projection rebuilt from zero, against reading the log, same run.

Each side runs in its own child process (`python -m bench.rebuild read|rebuild DIR`), so its
peak RSS (VmHWM) is its own: the baseline reads every notification with the recorder's
`select_notifications` (5,000 a page) and decodes it; the rebuild drops every view the
server runs (`build_projections`: the portfolio state view with coverage, sufficiency,
chains and the audit trail) and the Merkle index, and rebuilds them as `eportfolio
projections rebuild` does, 5,000 events a batch, the garbage collector paused but for a
collection per batch (`ProjectionRunner.rebuild(pause_gc=True)`; the baseline's is left as
it is): one read of the log, each page decoded once for the views, and the Merkle index
caught up at the same time, in a second process with its own read if a core is idle
(`adapters.cli.index_log`; `index_elsewhere` in the JSON says which, with that child's
peak RSS), else from the views' pages (`alongside`). The figure is the wall time until
both are done. The view alone is the time until the views are done, less any time spent
indexing their pages; the Merkle index alone is timed again after it, dropped and caught
up from zero with its own read (as a checkpoint does when its index is missing), and not
part of the figure. Peak RSS is read at 10/25/50/100 % of the log to show it does not grow
with N.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Notification

from adapters.audit.merkle_index import open_merkle_index
from adapters.bootstrap import build, build_projections
from adapters.cli.index_log import Indexing
from adapters.config import Config
from adapters.store.projection_runner import Alongside
from bench.common import Figure, peak_rss_mb, rss_mb, stopwatch, store_config
from service.codec import Stored

BATCH = 5_000
MARKS = (0.1, 0.25, 0.5, 1.0)


def run(config: Config) -> list[Figure]:
    read = _child("read", config)
    rebuilt = _child("rebuild", config)
    events = rebuilt["events"]
    base = read["rate"]
    total = events / rebuilt["rebuild_seconds"]
    state = events / rebuilt["state_seconds"]
    merkle = events / rebuilt["merkle_seconds"]
    where = "in a second process" if rebuilt["index_elsewhere"] else "from the views' read"
    marks = rebuilt["marks"]
    quarter = next(m for m in marks if m["fraction"] >= 0.25)
    full = marks[-1]
    memory = ", ".join(f"{m['fraction']:.0%}: {m['peak_rss_mb']:.0f} MB" for m in marks)
    label = "select_notifications + decode"
    return [
        Figure(
            "2", f"rebuild all projections from zero ({events:,} ev)", "sqlite", total, "ev/s",
            baseline=base, baseline_label=label, target="≥0.5x read+decode",
            passed=total >= 0.5 * base,
            notes=f"views, and the Merkle index {where}; the views alone {state:,.0f}/s",
            extra={"read": read, "rebuild": rebuilt},
        ),
        Figure(
            "2", "  portfolio_state view alone", "sqlite", state, "ev/s",
            baseline=base, baseline_label=label, notes="coverage, sufficiency, chains, trail",
        ),
        Figure(
            "2", "  Merkle index alone", "sqlite", merkle, "ev/s",
            baseline=base, baseline_label=label,
            notes="its own read: leaf = decode + 2x sha256 (not in the figure above)",
        ),
        Figure(
            "2", "rebuild peak RSS at 100% vs 25% of the log", "sqlite", full["peak_rss_mb"], "MB",
            baseline=quarter["peak_rss_mb"], baseline_label="peak RSS at 25%",
            target="≤1.2x (bounded)", passed=full["peak_rss_mb"] <= 1.2 * quarter["peak_rss_mb"],
            notes=memory,
        ),
        Figure(
            "7", "rebuild process peak RSS", "sqlite", rebuilt["peak_rss_mb"], "MB",
            baseline=read["peak_rss_mb"], baseline_label="read+decode process peak RSS",
            notes="the process `eportfolio projections rebuild` would be",
        ),
    ]  # fmt: skip


def _child(mode: str, config: Config) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.rebuild", mode, str(config.data_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _read(config: Config) -> dict[str, Any]:
    app = build(config)
    try:
        events = 0
        with stopwatch() as elapsed:
            for notification in app.ledger.notifications(batch=BATCH):
                app.ledger.decode(notification)
                events += 1
        return {"events": events, "rate": events / elapsed(), "peak_rss_mb": peak_rss_mb()}
    finally:
        app.ledger.close()


def _rebuild(config: Config) -> dict[str, Any]:
    app = build(config)
    projections = build_projections(config, app)
    index = open_merkle_index(config)
    start_rss = rss_mb()
    marks: list[dict[str, float]] = []
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        while len(marks) < len(MARKS) and done >= MARKS[len(marks)] * total:
            marks.append(
                {
                    "fraction": MARKS[len(marks)],
                    "seconds": time.perf_counter() - started,
                    "peak_rss_mb": peak_rss_mb(),
                    "rss_mb": rss_mb(),
                }
            )

    indexing = [0.0]

    def timed(extend: Alongside) -> Alongside:
        def alongside(after: int, page: Sequence[Notification], events: Sequence[Stored]) -> None:
            began = time.perf_counter()
            extend(after, page, events)
            indexing[0] += time.perf_counter() - began

        return alongside

    try:
        index.store.drop()
        with stopwatch() as rebuild_seconds:
            both = Indexing(config, index, app.ledger)  # as `projections rebuild` does
            alongside = None if both.alongside is None else timed(both.alongside)
            for runner in projections:
                runner.rebuild(
                    progress=progress, batch_size=BATCH, alongside=alongside, pause_gc=True
                )
            views_seconds = rebuild_seconds()
            both.done()
        head = index.head()
        state_peak = peak_rss_mb()
        index.store.drop()
        with stopwatch() as merkle_seconds:
            alone = index.catch_up(app.ledger)
        if alone != head:
            msg = f"the index rebuilt alone is {alone}, with the views {head}"
            raise AssertionError(msg)
        return {
            "events": head.size,
            "rebuild_seconds": rebuild_seconds(),
            "index_elsewhere": both.elsewhere is not None,
            "index_child_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            / 1024,
            "state_seconds": views_seconds - indexing[0],
            "indexing_seconds": indexing[0],
            "merkle_seconds": merkle_seconds(),
            "start_rss_mb": start_rss,
            "state_peak_rss_mb": state_peak,
            "peak_rss_mb": peak_rss_mb(),
            "marks": marks,
        }
    finally:
        index.close()
        projections.close()
        app.ledger.close()


if __name__ == "__main__":
    mode, directory = sys.argv[1], Path(sys.argv[2])
    child_config = store_config(directory)
    result = _read(child_config) if mode == "read" else _rebuild(child_config)
    print(json.dumps(result))
