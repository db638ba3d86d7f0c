"""`eportfolio audit-pack`: the audit pack of a portfolio or a centre, as PDF or HTML."""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path
from uuid import UUID

from rich.console import Console
from rich.markup import escape

from adapters.audit.pack.pack import live_pack
from adapters.audit.pack.render import PdfUnavailable, to_pdf
from adapters.bootstrap import open_system
from adapters.config import Config
from domain.errors import DomainError
from projections.portfolio_view import PortfolioStateProjection

console = Console(highlight=False)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pack = commands.add_parser("audit-pack", help="write an audit pack (PDF or HTML)")
    scope = pack.add_mutually_exclusive_group(required=True)
    scope.add_argument("--portfolio", type=UUID, help="the pack of this portfolio")
    scope.add_argument("--centre", type=UUID, help="the pack of this centre")
    pack.add_argument(
        "--as-known-at",
        type=_instant,
        default=None,
        metavar="INSTANT",
        help="as the records stood at this instant, with its offset (default: now)",
    )
    pack.add_argument(
        "--effective-at",
        type=date.fromisoformat,
        default=None,
        metavar="DAY",
        help="count only what was effective on or before this day (default: all)",
    )
    pack.add_argument("--format", choices=("pdf", "html"), default=None, help="default: by OUT")
    pack.add_argument("out", type=Path, metavar="OUT.pdf|OUT.html", help="the file to write")


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.utcoffset() is None:
        msg = f"{text}: give a time zone offset (e.g. 2026-11-03T14:05:00Z)"
        raise argparse.ArgumentTypeError(msg)
    return value


def run(config: Config, args: argparse.Namespace) -> int:
    """Write the pack; an unknown scope or a missing PDF renderer exits 2, saying why."""
    fmt = args.format or ("html" if args.out.suffix.lower() in {".html", ".htm"} else "pdf")
    try:
        with open_system(config) as system:
            system.projections[PortfolioStateProjection.name].catch_up()
            html = live_pack(
                system.queries,
                system.audit,
                portfolio_id=args.portfolio,
                centre_id=args.centre,
                as_known_at=args.as_known_at,
                effective_at=args.effective_at,
                made_by="eportfolio audit-pack",
            )
        args.out.write_bytes(html.encode() if fmt == "html" else to_pdf(html))
    except (DomainError, PdfUnavailable, OSError) as error:
        console.print(f"[red]{escape(str(error))}[/red]")
        return 2
    console.print(f"Wrote {args.out} ({fmt})")
    return 0
