"""The `eportfolio` command: load the demo centre, print the log."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from adapters.bootstrap import build
from adapters.config import Config
from service.demo import load_demo

console = Console()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eportfolio", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="load the seeded demo centre (if not there)")
    demo.add_argument("--seed", type=int, default=2026)
    events = commands.add_parser("events", help="print the event log")
    events.add_argument("--after", type=int, default=0, help="start after this position")
    events.add_argument("--limit", type=int, default=50)
    args = parser.parse_args(argv)
    config = Config.from_env()
    if args.command == "demo":
        return _demo(config, args.seed)
    return _events(config, args.after, args.limit)


def _demo(config: Config, seed: int) -> int:
    app = build(config)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Loading the demo centre", total=None)
        summary = load_demo(
            app.ledger,
            app.specs,
            seed=seed,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if not summary.created:
        console.print(f"The demo centre {summary.centre_id} is already loaded.")
        return 0
    table = Table(title=f"Demo centre {summary.centre_id}: {summary.events} events")
    for column in ("learner", "unit", "planned", "portfolio"):
        table.add_column(column)
    for learner, unit, complete, portfolio_id in summary.portfolios:
        table.add_row(learner, unit, "complete" if complete else "gaps", str(portfolio_id))
    console.print(table)
    return 0


def _events(config: Config, after: int, limit: int) -> int:
    app = build(config)
    table = Table(title="Event log")
    for column in ("position", "recorded", "effective", "type", "actor role", "stream"):
        table.add_column(column)
    for count, notification in enumerate(app.ledger.notifications(after=after), start=1):
        event = app.ledger.decode(notification).event
        recorded = getattr(event, "recorded_at", None)
        table.add_row(
            str(notification.id),
            recorded.strftime("%Y-%m-%d %H:%M") if recorded else "",
            str(getattr(event, "effective_on", "")),
            notification.topic.removeprefix("eportfolio."),
            str(getattr(event, "actor_role", "")),
            str(notification.originator_id)[:8],
        )
        if count >= limit:
            break
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
