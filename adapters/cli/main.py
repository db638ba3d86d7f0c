"""The `eportfolio` command: serve the API, load the demo, read, audit and look after the store."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, TaskID
from rich.table import Table

from adapters.bootstrap import open_system
from adapters.cli import audit as cli_audit
from adapters.cli import events as cli_events
from adapters.cli import pack as cli_pack
from adapters.cli import retention as cli_retention
from adapters.cli import serve as cli_serve
from adapters.cli import tokens as cli_tokens
from adapters.cli import worker as cli_worker
from adapters.cli.index_log import Indexing
from adapters.config import Config, SettingError, StoreUnreachable
from adapters.demo import load_demo
from adapters.store.kek import KekError
from adapters.store.projection_runner import Alongside, ProjectionRunner

console = Console()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; a setting or store that cannot be used is one line and exit code 2."""
    try:
        return _main(argv)
    except (SettingError, StoreUnreachable, KekError) as error:
        sys.stderr.write(f"eportfolio: {error}\n")
        return 2
    except BrokenPipeError:  # `eportfolio events --json | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand and option, each with its help (a test walks them all)."""
    parser = argparse.ArgumentParser(prog="eportfolio", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="load the seeded demo centre (if not there)")
    demo.add_argument(
        "--seed", type=int, default=2026, help="the demo's random seed (same seed, same centre)"
    )
    cli_events.register(commands)
    views = commands.add_parser("projections", help="rebuild or inspect the read-model views")
    actions = views.add_subparsers(dest="action", required=True)
    rebuild = actions.add_parser("rebuild", help="drop views and rebuild them from the log")
    rebuild.add_argument("--name", help="only this view (default: every view)")
    rebuild.add_argument(
        "--batch-size",
        type=int,
        default=5_000,
        help="events per transaction; bigger batches rewrite each document less often",
    )
    status = actions.add_parser("status", help="each view's tracked position and the log head")
    status.add_argument("--name", help="only this view (default: every view)")
    cli_serve.register(commands)
    cli_audit.register(commands)
    cli_retention.register(commands)
    cli_tokens.register(commands)
    cli_pack.register(commands)
    cli_worker.register(commands)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    return _run(Config.from_env(), args)


def _run(config: Config, args: argparse.Namespace) -> int:
    if args.command == "serve":
        return cli_serve.serve(config, args)
    if args.command == "worker":
        return cli_worker.run(config, args)
    if args.command in cli_audit.COMMANDS:
        return cli_audit.run(config, args)
    if args.command == "audit-pack":
        return cli_pack.run(config, args)
    if args.command == "retention":
        return cli_retention.run(config, args)
    if args.command == "tokens":
        return cli_tokens.run(config, args)
    if args.command == "demo":
        return _demo(config, args.seed)
    if args.command == "projections":
        return _projections(config, args.action, args.name, getattr(args, "batch_size", 0))
    return cli_events.run(config, args)


def _demo(config: Config, seed: int) -> int:
    cli_serve.ensure_demo_kek(config)
    with open_system(config) as system, Progress(console=console, transient=True) as progress:
        app = system.app
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


def _projections(config: Config, action: str, name: str | None, batch_size: int) -> int:
    with open_system(config) as system:
        views = system.projections
        runners = list(views)
        if name is not None:
            runners = [r for r in runners if r.name == name]
            if not runners:
                known = ", ".join(r.name for r in views)
                console.print(f"[red]No view named {name!r}[/red]; the views are: {known}")
                return 2
        if action == "rebuild":
            indexing = Indexing(config, system.audit.index, system.app.ledger)
            _rebuild(runners, batch_size, indexing.alongside)
            indexing.done()
        _status(runners)
    return 0


def _rebuild(runners: list[ProjectionRunner], batch_size: int, alongside: Alongside | None) -> None:
    """Each view from zero, `alongside` given every page (the Merkle index, if it is behind
    and no core is idle for it: a store restored without its index files needs both)."""
    columns = (*Progress.get_default_columns(), MofNCompleteColumn())
    with Progress(*columns, console=console) as progress:
        for runner in runners:
            task = progress.add_task(f"Rebuilding {runner.name}", total=None)
            started = time.perf_counter()

            def advance(done: int, total: int, task: TaskID = task) -> None:
                progress.update(task, completed=done, total=total)

            runner.rebuild(
                progress=advance, batch_size=batch_size, alongside=alongside, pause_gc=True
            )
            elapsed = time.perf_counter() - started
            done = f"Rebuilt {runner.name} in {elapsed:.1f}s"
            progress.update(
                task, description=done, completed=runner.position, total=runner.position
            )


def _status(runners: list[ProjectionRunner]) -> None:
    table = Table(title="Read-model views")
    for column in ("view", "tracked position", "log head", "behind"):
        table.add_column(column)
    for runner in runners:
        head = runner.head()
        table.add_row(runner.name, str(runner.position), str(head), str(head - runner.position))
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
