"""The summary of a whole-log export: a page per centre, and an index page linking them.

One page of every portfolio in the log would have to hold every event at once, and no
reader could use a page of that size. So a whole-log export's events are put aside on disk
by centre as they are written (a temporary SQLite file, deleted afterwards), and each
centre's page is folded from that centre's events alone: memory grows with the largest
centre, not with the log. A partial export (one centre, or one portfolio) keeps its
single `summary.html`.
"""

from __future__ import annotations

import html
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import msgspec

from adapters.audit.bundle_summary import render_summary
from domain.events import (
    CentreEvent,
    CentreRegistered,
    CheckpointIssued,
    Event,
    LearnerEnrolled,
    PortfolioEvent,
)
from service.codec import TYPES

PAGES = "summary/"  # + the centre's id + ".html"
_BATCH = 5_000


class ByCentre:
    """A whole-log export's centre and portfolio events, set aside by centre."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="eportfolio-export-"))
        self._db = sqlite3.connect(self._folder / "by-centre.sqlite")
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE events (centre TEXT, position INTEGER, topic TEXT, body BLOB,"
            " PRIMARY KEY (centre, position)) WITHOUT ROWID;"
        )
        self._pending: list[tuple[str, int, str, bytes]] = []
        self.centre_of: dict[UUID, UUID] = {}  # portfolio -> centre
        self.names: dict[UUID, str] = {}  # centre -> name, in the order they appear
        self.portfolios: dict[UUID, int] = {}  # centre -> portfolios enrolled

    def add(self, position: int, event: Event, body: bytes | None = None) -> None:
        """Set the event aside under its centre; `body`: its JSON, if already encoded."""
        if isinstance(event, LearnerEnrolled):
            self.centre_of[event.portfolio_id] = event.centre_id
            self.portfolios[event.centre_id] = self.portfolios.get(event.centre_id, 0) + 1
        if isinstance(event, CentreEvent):
            centre: UUID | None = event.centre_id
            if isinstance(event, CentreRegistered) or event.centre_id not in self.names:
                self.names[event.centre_id] = getattr(event, "name", "")
        elif isinstance(event, PortfolioEvent):
            centre = self.centre_of.get(event.portfolio_id)
        else:
            return
        if centre is None:
            return  # a portfolio with no enrolment in the log: no page would show it
        if body is None:
            body = msgspec.json.encode(event)
        self._pending.append((str(centre), position, event.TOPIC, body))
        if len(self._pending) >= _BATCH:
            self._flush()

    def events(self, centre: UUID) -> Iterator[tuple[int, Event]]:
        self._flush()
        rows = self._db.execute(
            "SELECT position, topic, body FROM events WHERE centre = ? ORDER BY position",
            (str(centre),),
        )
        for position, topic, body in rows:
            event = msgspec.json.decode(body, type=TYPES[topic])
            if isinstance(event, Event):
                yield position, event

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _flush(self) -> None:
        if self._pending:
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", self._pending)
            self._pending.clear()


def write_pages(
    by_centre: ByCentre,
    add: Callable[[str, bytes], None],
    *,
    checkpoint: CheckpointIssued,
    covered_up_to: int,
    vkey: str,
) -> bytes:
    """Write a page per centre through `add`; the index page (summary.html) is returned."""
    for centre in by_centre.names:
        page = render_summary(
            list(by_centre.events(centre)),
            scope=f"centre {centre}",
            checkpoint=checkpoint,
            covered_up_to=covered_up_to,
            vkey=vkey,
        )
        add(f"{PAGES}{centre}.html", page.encode())
    return _index(by_centre, checkpoint, vkey).encode()


def _index(by_centre: ByCentre, checkpoint: CheckpointIssued, vkey: str) -> str:
    rows = "\n".join(
        f'<tr><td><a href="{PAGES}{centre}.html">{html.escape(name) or centre}</a></td>'
        f"<td>{centre}</td><td>{by_centre.portfolios.get(centre, 0)}</td></tr>"
        for centre, name in by_centre.names.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Bundle of the whole log</title>
<style>body{{font-family:sans-serif;margin:2rem}}
td,th{{padding:.2rem .8rem;text-align:left}}</style>
</head><body>
<h1>Bundle of the whole log</h1>
<p>Cut at the checkpoint of tree size {checkpoint.tree_size}, root
<code>{checkpoint.root_hash}</code>, signed by <code>{html.escape(vkey)}</code>.
Each centre's audit pack (coverage, sufficiency, decisions, sampling) is a page of its own,
folded from this bundle's events of that centre: what <code>eportfolio verify</code> checks.</p>
<table><thead><tr><th>centre</th><th>id</th><th>portfolios</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""
