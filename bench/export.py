"""Export speed as A/B: the same store exported by two source trees, alternating.

`python -m bench.export make DIR EVENTS` generates a store, catches its Merkle index up and
signs one checkpoint with a key kept beside it (`DIR/bench-signing.key`), so that every
export of it is cut at the same checkpoint and two trees' bundles can be compared byte for
byte. `python -m bench.export ab DIR --base TREE [--rounds N]` then exports it by this tree
and by TREE in turn (each in a child process of its own, as `eportfolio export` runs),
reporting seconds, events/s and the child's peak RSS (VmHWM), and whether the two bundles
hold the same bytes member by member.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

_KEY = "bench-signing.key"
_HERE = Path(__file__).resolve().parent.parent


def make(data_dir: Path, events: int, seed: int) -> None:
    """A store of `events` events, its index caught up and one checkpoint signed."""
    from adapters.audit.merkle_index import open_merkle_index  # noqa: PLC0415
    from adapters.audit.signing import SigningKey  # noqa: PLC0415
    from adapters.bootstrap import build  # noqa: PLC0415
    from bench.common import log, store_config  # noqa: PLC0415
    from bench.data import Template, generate  # noqa: PLC0415
    from service.checkpoints import Checkpointer, Reason  # noqa: PLC0415

    config = store_config(data_dir)
    app = build(config)
    index = open_merkle_index(config)
    try:
        log(f"generating {events:,} events in {data_dir}")
        generate(app.ledger, Template(app.specs), events, seed=seed)
        index.catch_up(app.ledger)
        key = SigningKey.generate("bench.example/log")
        Checkpointer(app.ledger, index, key).issue(Reason.ON_DEMAND)
        (data_dir / _KEY).write_text(key.to_text())
    finally:
        index.close()
        app.ledger.close()


def child(data_dir: Path, bundle: Path, jobs: int | None) -> dict[str, Any]:
    """Export the store to `bundle` with the tree this runs from (no new checkpoint)."""
    from adapters.audit.export import write_bundle  # noqa: PLC0415
    from adapters.audit.merkle_index import open_merkle_index  # noqa: PLC0415
    from adapters.audit.signing import SigningKey  # noqa: PLC0415
    from adapters.bootstrap import build  # noqa: PLC0415
    from bench.common import peak_rss_mb, stopwatch, store_config  # noqa: PLC0415

    config = store_config(data_dir)
    app = build(config)
    index = open_merkle_index(config)
    key = SigningKey.from_text((data_dir / _KEY).read_text())
    try:
        start = peak_rss_mb()
        cpu = time.process_time()
        with stopwatch() as elapsed, bundle.open("wb") as out:
            more = {} if jobs is None else {"jobs": jobs}  # main's write_bundle has none
            written = write_bundle(out, app.ledger, index, key, **more)  # type: ignore[arg-type]
        seconds, cpu = elapsed(), time.process_time() - cpu
    finally:
        index.close()
        app.ledger.close()
    return {
        "events": written.events,
        "seconds": seconds,
        "cpu_s": cpu,  # the machine is shared: CPU time is the steadier of the two
        "start_mb": start,
        "peak_mb": peak_rss_mb(),
    }


def _run(tree: Path, data_dir: Path, bundle: Path, jobs: int | None) -> dict[str, Any]:
    """One export by the source tree `tree`, in a child that imports only from it."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, "-m", "bench.export", "child", str(data_dir), str(bundle)]
    command += [] if jobs is None else ["--jobs", str(jobs)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=tree, env=env)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def members(bundle: Path) -> dict[str, str]:
    """Each member's SHA-256 (the zip's own bytes differ only if a member does)."""
    found: dict[str, str] = {}
    with zipfile.ZipFile(bundle) as archive:
        for name in archive.namelist():
            hasher = hashlib.sha256()
            with archive.open(name) as member:
                while chunk := member.read(1 << 20):
                    hasher.update(chunk)
            found[name] = hasher.hexdigest()
    return found


def ab(data_dir: Path, base: Path, rounds: int, jobs: int | None) -> None:
    """`jobs` goes to this tree's export only (main's has no such parameter)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-export-ab-"))
    trees = {"base": base.resolve(), "head": _HERE}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for n in range(rounds):
        order = list(trees) if n % 2 == 0 else list(reversed(trees))
        for name in order:
            result = _run(
                trees[name], data_dir, folder / f"{name}.zip", jobs if name == "head" else None
            )
            runs[name].append(result)
            rate = result["events"] / result["seconds"]
            print(
                f"round {n + 1} {name}: {result['seconds']:.2f} s ({result['cpu_s']:.2f} s CPU),"
                f" {rate:,.0f} ev/s, peak {result['peak_mb']:.1f} MB",
                flush=True,
            )
    for what in ("seconds", "cpu_s"):
        best = {name: min(r[what] for r in rs) for name, rs in runs.items()}
        print(f"best {what}: base {best['base']:.2f}, head {best['head']:.2f}: "
              f"head {best['base'] / best['head']:.2f}x faster")  # fmt: skip
    old, new = members(folder / "base.zip"), members(folder / "head.zip")
    differ = sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))
    same = (folder / "base.zip").read_bytes() == (folder / "head.zip").read_bytes()
    print(f"bundles identical: {same}; members that differ: {differ or 'none'}")
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    made = sub.add_parser("make")
    made.add_argument("dir", type=Path)
    made.add_argument("events", type=int)
    made.add_argument("--seed", type=int, default=2)
    run = sub.add_parser("child")
    run.add_argument("dir", type=Path)
    run.add_argument("bundle", type=Path)
    run.add_argument("--jobs", type=int, default=None)
    compare = sub.add_parser("ab")
    compare.add_argument("dir", type=Path)
    compare.add_argument("--base", type=Path, required=True)
    compare.add_argument("--rounds", type=int, default=2)
    compare.add_argument("--jobs", type=int, default=None, help="this tree's export's jobs")
    args = parser.parse_args()
    if args.what == "make":
        make(args.dir, args.events, args.seed)
    elif args.what == "child":
        sys.stdout.write(json.dumps(child(args.dir, args.bundle, args.jobs)) + "\n")
    else:
        ab(args.dir, args.base, args.rounds, args.jobs)


if __name__ == "__main__":
    main()
