"""Profiles behind the missed targets and export: `python -m bench.profile WHAT`
(ingest|rebuild|verify|export|travel).

In-process work (rebuild, verify, time travel) is profiled with pyinstrument, which samples
the main thread. The server of figure 1 runs its handlers in a thread pool, so py-spy
attaches to the server process (`--gil`: only the thread holding the GIL, i.e. where the
server's Python time goes) and its raw stacks are summarised here. Output goes to
bench/results/profiles/<name>.txt.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from pyinstrument import Profiler

from adapters.audit.export import export_bundle, write_bundle
from adapters.audit.merkle_index import open_merkle_index
from adapters.audit.signing import SigningKey
from adapters.audit.verify import verify_bundle
from adapters.bootstrap import build, build_projections
from adapters.config import Config
from bench import ingest
from bench.common import log, store_config
from bench.data import Generated, Template, generate
from domain import commands as c
from domain.events import Environment, Role
from domain.spec import CriterionKind, Method
from service.checkpoints import Checkpointer, Reason
from service.queries import Queries

PROFILES = Path(__file__).parent / "results" / "profiles"


def _store(events: int) -> tuple[Config, Generated]:
    config = store_config(Path(tempfile.mkdtemp(prefix="bench-profile-")))
    app = build(config)
    try:
        made = generate(app.ledger, Template(app.specs), events)
    finally:
        app.ledger.close()
    return config, made


def _write(name: str, profiler: Profiler, header: str) -> None:
    PROFILES.mkdir(parents=True, exist_ok=True)
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    (PROFILES / f"{name}.txt").write_text(f"{header}\n{text}")
    log(f"wrote {PROFILES / f'{name}.txt'}")


def rebuild(events: int) -> None:
    config, _ = _store(events)
    app = build(config)
    projections = build_projections(config, app)
    index = open_merkle_index(config)
    profiler = Profiler(interval=0.002)
    try:
        profiler.start()
        index.store.drop()
        for runner in projections:  # the index from the views' read, as with no idle core
            runner.rebuild(batch_size=5_000, alongside=index.extend)
        index.catch_up(app.ledger)
        profiler.stop()
    finally:
        index.close()
        projections.close()
        app.ledger.close()
    _write(
        "rebuild", profiler, f"rebuild of every projection and the Merkle index, {events:,} events"
    )


def verify(events: int) -> None:
    config, _ = _store(events)
    app = build(config)
    index = open_merkle_index(config)
    try:
        index.catch_up(app.ledger)
        key = SigningKey.generate()
        Checkpointer(app.ledger, index, key).issue(Reason.ON_DEMAND)
        bundle = export_bundle(app.ledger, index, key).data
    finally:
        index.close()
        app.ledger.close()
    profiler = Profiler(interval=0.002)
    profiler.start()
    report = verify_bundle(bundle)
    profiler.stop()
    assert report.verified
    _write("verify", profiler, f"offline verify_bundle of a full export, {events:,} events")


def export(events: int) -> None:
    """A whole-log export to a file, as `eportfolio export` writes it."""
    config, _ = _store(events)
    app = build(config)
    index = open_merkle_index(config)
    try:
        index.catch_up(app.ledger)
        key = SigningKey.generate()
        Checkpointer(app.ledger, index, key).issue(Reason.ON_DEMAND)
        profiler = Profiler(interval=0.002)
        with tempfile.TemporaryFile() as out:
            profiler.start()
            write_bundle(out, app.ledger, index, key)
            profiler.stop()
    finally:
        index.close()
        app.ledger.close()
    _write("export", profiler, f"write_bundle of a full export to a file, {events:,} events")


def travel(events: int) -> None:
    """Figure 5's portfolio (observations mapped to criteria, work products between), then
    coverage as known at every 5th moment of its history, in random order."""
    config, made = _store(3_000)
    app = build(config)
    try:
        first = made.portfolios[0]
        learner = c.Actor(id=first.learner_id, role=Role.LEARNER)
        assessor = c.Actor(id=first.assessor_id, role=Role.ASSESSOR)
        spec = app.spec_of(app.portfolio(first.portfolio_id))
        performance = [x.id for x in spec.criteria if x.kind is CriterionKind.PERFORMANCE]
        today = datetime.now(UTC).date()
        for n in range(events - app.portfolio(first.portfolio_id).version):
            if n % 2:
                observation = c.RecordObservation(
                    evidence_id=uuid4(),
                    occasion=f"shift {n}",
                    customer_ref=f"cust-{n % 900 + 100}",
                    environment=Environment.WORKPLACE,
                    criteria=tuple(performance[n % 3 :: 3][:4]),
                    effective_on=today,
                )
                app.execute(assessor, observation, target=first.portfolio_id)
                continue
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
            app.execute(learner, command, target=first.portfolio_id)
        moments = [e.recorded_at for e in app.ledger.portfolio_events(first.portfolio_id)]
        asked = moments[::5]
        random.Random(5).shuffle(asked)
        queries = Queries(app)
        profiler = Profiler(interval=0.001)
        profiler.start()
        for moment in asked:
            queries.coverage(first.portfolio_id, as_known_at=moment)
        profiler.stop()
    finally:
        app.ledger.close()
    _write("travel", profiler, f"coverage as_known_at on a {len(moments):,}-event portfolio")


def server(commands: int) -> None:
    """Figure 1 on SQLite with py-spy attached to the server; the stacks summarised."""
    raw = Path(tempfile.mkdtemp(prefix="bench-pyspy-"))
    os.environ["BENCH_PROFILE_DIR"] = str(raw)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as directory:
        ingest.run(
            "sqlite", Path(directory), "", commands=commands, concurrency=8, centres=4, learners=8
        )
    PROFILES.mkdir(parents=True, exist_ok=True)
    text = summarise((raw / "ingest-sqlite.txt").read_text())
    (PROFILES / "ingest-server.txt").write_text(
        f"py-spy --gil on the server during figure 1 (SQLite, {commands} commands, 8 clients)\n"
        f"share of samples in which the GIL-holding thread was inside each function\n\n{text}"
    )
    log(f"wrote {PROFILES / 'ingest-server.txt'}")


def summarise(raw: str, top: int = 60) -> str:
    """Inclusive and self shares per function from py-spy's raw (collapsed) stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    skip = re.compile(r"threading\.py|runpy|contextlib|thread\.py|base_events|runners\.py")
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [
        f"{n / total:6.1%}  {frame}"
        for frame, n in inclusive.most_common()
        if not skip.search(frame)
    ][:top]
    lines += ["", "self:"]
    lines += [f"{n / total:6.1%}  {frame}" for frame, n in own.most_common(25)]
    return "\n".join(lines) + "\n"


def _frame(frame: str) -> str:
    """`func (path/to/file.py:12)` as `func (file.py)`: lines of one function merge."""
    return re.sub(r" \((?:.*/)?([^/:]+)(?::\d+)?\)$", r" (\1)", frame)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("what", choices=["ingest", "rebuild", "verify", "export", "travel"])
    parser.add_argument(
        "--size", type=int, help="events (rebuild, verify, export) or commands (ingest)"
    )
    args = parser.parse_args()
    if args.what == "ingest":
        server(args.size or 1_000)
    elif args.what == "rebuild":
        rebuild(args.size or 50_000)
    elif args.what == "verify":
        verify(args.size or 50_000)
    elif args.what == "export":
        export(args.size or 20_000)
    else:
        travel(args.size or 1_000)


if __name__ == "__main__":
    main()
