"""`eportfolio retention report`: every learner's records, what is due for erasure and why."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from uuid import UUID

from rich.console import Console
from rich.table import Table

from adapters.bootstrap import open_system
from adapters.config import Config
from domain.events import CentreRegistered
from domain.retention import Status
from service.erasure import retention_report

console = Console()
STYLE = {
    Status.DUE: "bold yellow",
    Status.HELD: "red",
    Status.ERASED: "dim",
    Status.RETAINED: "",
    Status.IN_PROGRESS: "",
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retention = commands.add_parser("retention", help="retention of personal data")
    actions = retention.add_subparsers(dest="action", required=True)
    report = actions.add_parser("report", help="what is due for erasure, and why")
    report.add_argument("--centre-id", type=UUID, help="only this centre")
    report.add_argument(
        "--on", type=date.fromisoformat, help="as it will stand on this date (default: today)"
    )
    report.add_argument("--due", action="store_true", help="only learners due for erasure")


def run(config: Config, args: argparse.Namespace) -> int:
    today = args.on or datetime.now(UTC).date()
    with open_system(config) as system:
        app = system.app
        centres = (
            [args.centre_id]
            if args.centre_id
            else [e.centre_id for e in app.ledger.of_topic(CentreRegistered)]
        )
        rows = retention_report(app, centres, today)
    table = Table(title=f"Retention of personal data on {today}")
    for column in ("centre", "learner", "status", "why", "evidence files deletable"):
        table.add_column(column)
    shown = [r for r in rows if not args.due or r.retention.status is Status.DUE]
    for row in shown:
        status = row.retention.status
        table.add_row(
            row.centre_name,
            f"{row.learner_name} ({str(row.retention.learner_id)[:8]})",
            f"[{STYLE[status]}]{status}[/]" if STYLE[status] else str(status),
            row.retention.why,
            ", ".join(row.artefacts_deletable),
        )
    console.print(table)
    due = sum(r.retention.status is Status.DUE for r in rows)
    console.print(f"{due} of {len(rows)} learners due for erasure (POST /learners/{{id}}/erasure)")
    return 0
