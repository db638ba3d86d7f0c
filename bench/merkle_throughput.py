"""Leaf hashing, tree building, index catch-up and offline verification, in events/s.

Run: uv run python bench/merkle_throughput.py [N]. The events are the demo centre's,
copied into N distinct stored events (new stream ids, same payload shapes and sizes).
Plain `hashlib.sha256` over the same stored bytes, in the same process, is the baseline.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

from eventsourcing.persistence import Notification

from adapters import bundle as b
from adapters.bootstrap import build
from adapters.config import Config
from adapters.export import export_bundle
from adapters.merkle_index import open_merkle_index
from adapters.signing import SigningKey
from adapters.verify import verify_bundle
from domain.spec import SpecCatalogue
from service.checkpoints import Checkpointer, Reason, decoded, leaf_of
from service.codec import Recorded
from service.demo import load_demo
from service.ledger import Ledger
from service.merkle import Frontier, Tree, event_leaf, recorded_time


def rate(label: str, count: int, seconds: float, base: float | None = None) -> float:
    per_second = count / seconds
    ratio = f"  ({base / per_second:.1f}x slower than sha256)" if base else ""
    print(f"{label:<48} {per_second:>12,.0f} events/s{ratio}")
    return per_second


def main(n: int) -> None:
    data_dir = Path(tempfile.mkdtemp())
    app = build(Config(data_dir=data_dir))
    try:
        notifications = _fill(app.ledger, app.specs, n)
        base = _hashing(app.ledger, notifications)
        _pipeline(app.ledger, Config(data_dir=data_dir), len(notifications), base)
    finally:
        app.ledger.close()


def _fill(ledger: Ledger, specs: SpecCatalogue, n: int) -> list[Notification]:
    load_demo(ledger, specs)
    demo = [ledger.decode(x) for x in ledger.notifications()]
    batch: list[Recorded] = []
    streams: dict[object, object] = {}
    while len(batch) + len(demo) < n:
        streams.clear()
        for item in demo:
            stream = streams.setdefault(item.originator_id, uuid4())
            batch.append(Recorded(stream, item.originator_version, item.event))  # type: ignore[arg-type]
    for i in range(0, len(batch), 1000):
        ledger.save(*batch[i : i + 1000])
    notifications = list(ledger.notifications())
    size = sum(len(x.state) for x in notifications) / len(notifications)
    print(f"{len(notifications):,} stored events, {size:.0f} bytes each")
    return notifications


def _hashing(ledger: Ledger, notifications: list[Notification]) -> float:
    states = [x.state for x in notifications]

    started = time.perf_counter()
    for state in states:
        hashlib.sha256(state).digest()
    base = rate("hashlib.sha256(stored bytes)", len(states), time.perf_counter() - started)

    events = [decoded(ledger, x) for x in notifications]
    times = [recorded_time(getattr(e, "recorded_at", None)) for e in events]
    columns = [(x.id, x.originator_id, x.originator_version, x.topic) for x in notifications]
    started = time.perf_counter()
    leaves = [
        event_leaf(
            position=position,
            originator_id=stream,  # type: ignore[arg-type]
            originator_version=version,
            topic=topic,
            recorded_at=when,
            state=state,
        )
        for (position, stream, version, topic), when, state in zip(
            columns, times, states, strict=True
        )
    ]
    elapsed = time.perf_counter() - started
    rate("leaf hash (encode d, 2x sha256)", len(states), elapsed, base)
    started = time.perf_counter()
    Tree(leaves).root()
    rate("verify = leaf hashes + root", len(states), elapsed + time.perf_counter() - started, base)
    started = time.perf_counter()
    [recorded_time(getattr(e, "recorded_at", None)) for e in events]
    rate("formatting the recorded time alone", len(states), time.perf_counter() - started, base)
    started = time.perf_counter()
    [leaf_of(ledger, x) for x in notifications]
    rate("leaf hash incl. decoding the event", len(states), time.perf_counter() - started, base)
    started = time.perf_counter()
    Tree(leaves).root()
    rate(
        "tree over the leaves (node hashes, root)", len(states), time.perf_counter() - started, base
    )
    started = time.perf_counter()
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    rate("frontier appends (incremental root)", len(states), time.perf_counter() - started, base)
    return base


def _pipeline(ledger: Ledger, config: Config, count: int, base: float) -> None:
    index = open_merkle_index(config)
    started = time.perf_counter()
    index.catch_up(ledger)
    rate("index catch-up from zero (SQLite)", count, time.perf_counter() - started, base)
    key = SigningKey.generate()
    Checkpointer(ledger, index, key).issue(Reason.ON_DEMAND)
    started = time.perf_counter()
    bundle = export_bundle(ledger, index, key).data
    rate("full export", count, time.perf_counter() - started, base)
    started = time.perf_counter()
    report = verify_bundle(bundle)
    rate("offline verify, full export (all checks)", count, time.perf_counter() - started, base)
    assert report.verified, report.lines()[-3:]
    print(f"bundle: {len(bundle) / 1e6:.1f} MB zipped; files: {sorted(b.read_zip(bundle))}")
    index.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
