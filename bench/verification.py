"""Figure 6: offline verification of a full export, against plain SHA-256 of the same bytes.

The store's Merkle index is caught up (figure 2 leaves it there), a checkpoint is signed,
the whole log is exported as a bundle (zip bytes in memory) and `verify_bundle` checks it
with no database: signatures, every leaf and root, the decoded view against the stored
bytes, per-stream versions. The baseline is `hashlib.sha256` over each event's stored bytes,
in memory, in the same run. The breakdown (folded in from the former
`bench/merkle_throughput.py`) shows where verification spends its time.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from eventsourcing.persistence import Notification

from adapters.audit.export import export_bundle
from adapters.audit.merkle_index import open_merkle_index
from adapters.audit.signing import SigningKey
from adapters.audit.verify import verify_bundle
from adapters.bootstrap import build
from adapters.config import Config
from bench.common import Figure, RssSampler, log, rss_mb, stopwatch, store_config
from bench.data import Template, generate
from bench.report import table
from service.checkpoints import Checkpointer, Reason, decoded, leaf_of
from service.ledger import Ledger
from service.merkle import Tree, event_leaf, recorded_time


def run(config: Config, *, breakdown: bool = True) -> list[Figure]:
    app = build(config)
    index = open_merkle_index(config)
    try:
        index.catch_up(app.ledger)
        key = SigningKey.generate()
        Checkpointer(app.ledger, index, key).issue(Reason.ON_DEMAND)
        notifications = list(app.ledger.notifications(batch=5_000))
        states = [n.state for n in notifications]
        count = len(states)
        with stopwatch() as elapsed:
            for state in states:
                hashlib.sha256(state).digest()
        sha = count / elapsed()
        figures = _breakdown(app.ledger, notifications, sha) if breakdown else []
        del notifications
        log(f"verification: exporting {count:,} events")
        with stopwatch() as elapsed:
            bundle = export_bundle(app.ledger, index, key).data
        export_rate = count / elapsed()
    finally:
        index.close()
        app.ledger.close()
    log(f"verification: verifying a {len(bundle) / 1e6:.0f} MB bundle")
    before = rss_mb()
    with RssSampler() as memory, stopwatch() as elapsed:
        report = verify_bundle(bundle)
    verify_rate = count / elapsed()
    if not report.verified:
        msg = f"the bundle did not verify: {report.lines()[-3:]}"
        raise RuntimeError(msg)
    return [
        Figure(
            "6", f"offline verify, full export of {count:,} events", "sqlite", verify_rate, "ev/s",
            baseline=sha, baseline_label="hashlib.sha256 of each event's stored bytes",
            target="≥0.3x sha256", passed=verify_rate >= 0.3 * sha,
            notes=f"bundle {len(bundle) / 1e6:.0f} MB; verifier RSS +{memory.peak - before:.0f} MB",
            extra={"bundle_bytes": len(bundle), "verify_rss_growth_mb": memory.peak - before},
        ),
        Figure(
            "6", "  full export (context)", "sqlite", export_rate, "ev/s",
            baseline=sha, baseline_label="hashlib.sha256",
        ),
        *figures,
    ]  # fmt: skip


def _breakdown(ledger: Ledger, items: list[Notification], sha: float) -> list[Figure]:
    """Leaf hashing and tree building alone, as bench/merkle_throughput.py measured them."""
    events = [decoded(ledger, n) for n in items]
    times = [recorded_time(getattr(e, "recorded_at", None)) for e in events]
    with stopwatch() as elapsed:
        leaves = [
            event_leaf(
                position=n.id,
                originator_id=n.originator_id,  # type: ignore[arg-type]
                originator_version=n.originator_version,
                topic=n.topic,
                recorded_at=when,
                state=n.state,
            )
            for n, when in zip(items, times, strict=True)
        ]
    leaf_rate = len(items) / elapsed()
    with stopwatch() as elapsed:
        Tree(leaves).root()
    tree_rate = len(items) / elapsed()
    with stopwatch() as elapsed:
        for n in items:
            leaf_of(ledger, n)
    decoded_rate = len(items) / elapsed()
    label = "hashlib.sha256"
    return [
        Figure("6", "  leaf hash (encode d, 2x sha256)", "sqlite", leaf_rate, "ev/s",
               baseline=sha, baseline_label=label),
        Figure("6", "  tree root over the leaves", "sqlite", tree_rate, "ev/s",
               baseline=sha, baseline_label=label),
        Figure("6", "  leaf hash incl. decoding the event", "sqlite", decoded_rate, "ev/s",
               baseline=sha, baseline_label=label),
    ]  # fmt: skip


def main(events: int) -> None:
    """The breakdown alone on a generated store: `python -m bench.merkle_throughput [N]`."""
    config = store_config(Path(tempfile.mkdtemp(prefix="bench-merkle-")))
    app = build(config)
    try:
        generate(app.ledger, Template(app.specs), events)
    finally:
        app.ledger.close()
    table(run(config))
