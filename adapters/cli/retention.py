"""`eportfolio retention report`: every learner's records, what is due for erasure and why.

A table for people; `--format csv` or `json` for a spreadsheet or a script, with whole ids.
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, date, datetime
from uuid import UUID

import msgspec
from rich.console import Console
from rich.table import Table

from adapters.bootstrap import open_system
from adapters.config import Config
from domain.events import CentreRegistered
from domain.retention import Status
from service.erasure import RetentionRow, retention_report

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
    report.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="a table for people (default), or CSV or JSON for spreadsheets and scripts",
    )


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
    shown = [r for r in rows if not args.due or r.retention.status is Status.DUE]
    if args.format == "table":
        _table(today, shown)
        due = sum(r.retention.status is Status.DUE for r in rows)
        console.print(
            f"{due} of {len(rows)} learners due for erasure (POST /learners/{{id}}/erasure)"
        )
    elif args.format == "csv":
        _csv(shown)
    else:
        report = Report(on=today, learners=[_line(row) for row in shown])
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    return 0


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """One learner as CSV and JSON give it: whole ids, dates as ISO 8601."""

    centre_id: UUID
    centre: str
    learner_id: UUID
    learner: str
    status: str
    why: str
    since: date | None
    until: date | None
    evidence_files_deletable: list[str]


class Report(msgspec.Struct, frozen=True, kw_only=True):
    on: date
    learners: list[Line]


def _line(row: RetentionRow) -> Line:
    retention = row.retention
    return Line(
        centre_id=row.centre_id,
        centre=row.centre_name,
        learner_id=retention.learner_id,
        learner=row.learner_name,
        status=str(retention.status),
        why=retention.why,
        since=retention.since,
        until=retention.until,
        evidence_files_deletable=list(row.artefacts_deletable),
    )


def _csv(rows: list[RetentionRow]) -> None:
    """One row per learner; several deletable units are separated by spaces in one cell."""
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(Line.__struct_fields__)
    for row in rows:
        line = msgspec.to_builtins(_line(row))
        line["evidence_files_deletable"] = " ".join(line["evidence_files_deletable"])
        out.writerow("" if line[name] is None else line[name] for name in Line.__struct_fields__)


def _table(today: date, rows: list[RetentionRow]) -> None:
    table = Table(title=f"Retention of personal data on {today}")
    for column in ("centre", "learner", "status", "why", "evidence files deletable"):
        table.add_column(column)
    for row in rows:
        status = row.retention.status
        table.add_row(
            row.centre_name,
            f"{row.learner_name} ({str(row.retention.learner_id)[:8]})",
            f"[{STYLE[status]}]{status}[/]" if STYLE[status] else str(status),
            row.retention.why,
            ", ".join(row.artefacts_deletable),
        )
    console.print(table)
