"""Figure 6: export and offline verification of a whole store, as the CLI runs them.

Each store's Merkle index is caught up (figure 2 leaves it there) and a checkpoint signed;
a child process writes the full export to a file (`write_bundle`, as `eportfolio export`
does), another verifies that file with no database (`verify_bundle` of the path, as
`eportfolio verify` does). Done for two stores (the small one and the big one), so that
memory "independent of the bundle's size" shows as a ratio of the two peaks (VmHWM of the
child, which held nothing else; with a core idle, a big bundle's second half or its tree is
checked by a process of its own, whose peak and CPU are noted beside). The verifier's
baseline, in the same child right after it, is `hashlib.sha256` over each event's stored
bytes, read from the same bundle; the same child then times what bounds the verifier with
no check at all (every member inflated and hashed, the rows and views read). The breakdown
(in the parent, big store only) shows what a leaf and the tree cost on their own.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import msgspec
from eventsourcing.persistence import Notification

from adapters.audit import bundle as b
from adapters.audit.bundle_io import ZipIn
from adapters.audit.export import write_bundle
from adapters.audit.findings import Report
from adapters.audit.merkle_index import open_merkle_index
from adapters.audit.signing import SigningKey
from adapters.audit.verify import verify_bundle
from adapters.audit.verify_rows import Views, read_rows
from adapters.bootstrap import build
from adapters.config import Config
from bench.common import Figure, log, peak_rss_mb, stopwatch, store_config
from bench.data import Template, generate
from bench.report import table
from service.checkpoints import Checkpointer, Reason, decoded, leaf_of
from service.ledger import Ledger
from service.merkle import Tree, event_leaf, recorded_time


def run(config: Config, small: Config | None = None, *, breakdown: bool = True) -> list[Figure]:
    """Figure 6 for the store of `config`, with `small` for the memory ratio."""
    folder = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    measured = [
        _measure(c, folder / f"{name}.zip") for name, c in (("small", small), ("big", config)) if c
    ]
    big = measured[-1]
    low = measured[0] if small is not None else None
    count = big["events"]
    verify_rate, sha = count / big["verify_s"], count / big["sha_s"]
    export_rate = count / big["export_s"]
    figures = [
        Figure(
            "6", f"offline verify, full export of {count:,} events", "sqlite", verify_rate, "ev/s",
            baseline=sha, baseline_label="hashlib.sha256 of each event's stored bytes (same child)",
            target="≥0.3x sha256", passed=verify_rate >= 0.3 * sha,
            notes=f"bundle {big['bundle_bytes'] / 1e6:.0f} MB, read from the file",
            extra=big,
        ),
        Figure(
            "6", "  full export to a file (context)", "sqlite", export_rate, "ev/s",
            baseline=sha, baseline_label="hashlib.sha256",
        ),
    ]  # fmt: skip
    figures += [
        Figure(
            "6", f"  {what}", "sqlite", count / big[key], "ev/s",
            baseline=sha, baseline_label="hashlib.sha256 (same child)",
        )
        for what, key in (
            ("every member inflated + sha256 only (one thread)", "inflate_s"),
            ("rows and views only read (inflated, split, decoded)", "read_rows_s"),
        )
    ]  # fmt: skip
    if low is not None:
        started = f"child RSS after imports {big['verify_start_mb']:.0f} MB"
        if big.get("tree_child_peak_mb"):  # a second process: the tree, or the second half
            started += (
                f"; its second process peaked at {big['tree_child_peak_mb']:.0f} MB"
                f" ({big['child_cpu_s']:.1f} CPU s)"
            )
        figures += [
            _peak_figure("verify", count, big, low, notes=started, extra={"small": low}),
            _peak_figure("export", count, big, low),
        ]
    if breakdown:
        figures += _breakdown(config, sha)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    return figures


def _measure(config: Config, bundle: Path) -> dict[str, Any]:
    """Export the store to `bundle` and verify it, each in a child process of its own."""
    log(f"verification: exporting {config.data_dir} to {bundle}")
    exported = _child("export", str(config.data_dir), str(bundle))
    log(f"verification: verifying {bundle.stat().st_size / 1e6:.0f} MB")
    verified = _child("verify", str(bundle))
    return {**exported, **verified, "bundle_bytes": bundle.stat().st_size}


def _child(*args: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.verification", "--child", *args]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _export_child(data_dir: Path, bundle: Path) -> dict[str, Any]:
    config = store_config(data_dir)
    app = build(config)
    index = open_merkle_index(config)
    try:
        index.catch_up(app.ledger)
        key = SigningKey.generate("bench.example/log")
        Checkpointer(app.ledger, index, key).issue(Reason.ON_DEMAND)
        start = peak_rss_mb()
        with stopwatch() as elapsed, bundle.open("wb") as out:
            written = write_bundle(out, app.ledger, index, key)
        seconds = elapsed()
    finally:
        index.close()
        app.ledger.close()
    return {
        "events": written.events, "export_s": seconds, "export_start_mb": start,
        "export_peak_mb": peak_rss_mb(),
    }  # fmt: skip


def _verify_child(bundle: Path) -> dict[str, Any]:
    start = peak_rss_mb()
    with stopwatch() as elapsed:
        report = verify_bundle(bundle)
    seconds, peak = elapsed(), peak_rss_mb()
    if not report.verified:
        msg = f"the bundle did not verify: {report.lines()[-3:]}"
        raise RuntimeError(msg)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    states = list(_states(bundle))
    with stopwatch() as hashing:
        for state in states:
            hashlib.sha256(state).digest()
    with stopwatch() as inflating:
        _inflate_all(bundle)
    with stopwatch() as reading:
        _read_rows(bundle)
    return {
        "verify_s": seconds, "verify_start_mb": start, "verify_peak_mb": peak,
        "sha_s": hashing(), "hashed_events": len(states),
        "inflate_s": inflating(), "read_rows_s": reading(),
        "tree_child_peak_mb": children.ru_maxrss / 1024,
        "child_cpu_s": children.ru_utime + children.ru_stime,
    }  # fmt: skip


def _inflate_all(bundle: Path) -> None:
    """Every member inflated and hashed, one thread, no check: what the manifest costs."""
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            hasher = hashlib.sha256()
            with archive.open(info) as member:
                while chunk := member.read(1 << 16):
                    hasher.update(chunk)


def _read_rows(bundle: Path) -> None:
    """The stored rows and their views read as the verifier reads them, nothing checked."""
    with zipfile.ZipFile(bundle) as archive:
        zin = ZipIn(archive)
        try:
            views = Views(zin, Report())
            for row in read_rows(zin, Report()):
                views.take(row.stored.position)
        finally:
            zin.close()


def _states(bundle: Path) -> Any:
    """Each event's stored bytes, from the bundle (the bytes the verifier hashed)."""
    with zipfile.ZipFile(bundle) as archive, archive.open(b.STORED) as rows:
        for line in rows:
            if line.startswith(b"{"):
                row = msgspec.json.decode(line.rstrip(b",\n"), type=b.StoredRow)
                yield base64.b64decode(row.state)


def _breakdown(config: Config, sha: float) -> list[Figure]:
    """Leaf hashing and tree building alone, as bench/merkle_throughput.py measured them."""
    app = build(config)
    try:
        items = list(app.ledger.notifications(batch=5_000))
        return _parts(app.ledger, items, sha)
    finally:
        app.ledger.close()


def _parts(ledger: Ledger, items: list[Notification], sha: float) -> list[Figure]:
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
    label = "hashlib.sha256 (verify child)"
    return [
        Figure("6", "  leaf hash (encode d, 2x sha256)", "sqlite", leaf_rate, "ev/s",
               baseline=sha, baseline_label=label),
        Figure("6", "  tree root over the leaves", "sqlite", tree_rate, "ev/s",
               baseline=sha, baseline_label=label),
        Figure("6", "  leaf hash incl. decoding the event", "sqlite", decoded_rate, "ev/s",
               baseline=sha, baseline_label=label),
    ]  # fmt: skip


def main() -> None:
    """`python -m bench.verification [N]`: figure 6 on stores of N and N/10 events."""
    parser = argparse.ArgumentParser(prog="python -m bench.verification")
    parser.add_argument("events", type=int, nargs="?", default=100_000)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, *paths = args.child
        out = (
            _export_child(Path(paths[0]), Path(paths[1]))
            if what == "export"
            else _verify_child(Path(paths[0]))
        )
        sys.stdout.write(json.dumps(out) + "\n")
        return
    folder = Path(tempfile.mkdtemp(prefix="bench-verify-stores-"))
    configs = []
    for name, events, seed in (("small", args.events // 10, 1), ("big", args.events, 2)):
        config = store_config(folder / name)
        app = build(config)
        try:
            log(f"generating {events:,} events")
            generate(app.ledger, Template(app.specs), events, seed=seed)
        finally:
            app.ledger.close()
        configs.append(config)
    table(run(configs[1], configs[0]))


def _peak_figure(
    command: str, count: int, big: dict[str, Any], low: dict[str, Any], **more: Any
) -> Figure:
    """A command's peak RSS on the big store against the small one's (target: size-free)."""
    peak, base = big[f"{command}_peak_mb"], low[f"{command}_peak_mb"]
    return Figure(
        "6", f"{command} peak RSS, {count:,} vs {low['events']:,} events", "sqlite",
        peak, "MB", baseline=base,
        baseline_label=f"{command} peak RSS at {low['events']:,} events",
        target="≤1.2x and ≤150 MB", passed=peak <= 1.2 * base and peak <= 150, **more,
    )  # fmt: skip


if __name__ == "__main__":
    main()
