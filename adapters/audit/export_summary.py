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
import logging
import multiprocessing
import shutil
import sqlite3
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import NamedTuple
from uuid import UUID

import msgspec

from adapters.audit.bundle_summary import render_summary
from adapters.cores import usable_cores
from domain.events import (
    CentreEvent,
    CentreRegistered,
    CheckpointIssued,
    Event,
    LearnerEnrolled,
    PortfolioEvent,
)
from service.codec import TYPES

log = logging.getLogger(__name__)
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
            self.flush()

    @property
    def path(self) -> Path:
        """The file, for the processes that render pages from it (after `flush`)."""
        return self._folder / "by-centre.sqlite"

    def events(self, centre: UUID) -> Iterator[tuple[int, Event]]:
        self.flush()
        return _events(self._db, centre)

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def flush(self) -> None:
        """Write what is pending and commit it (other connections then read it)."""
        if self._pending:
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", self._pending)
            self._pending.clear()
        self._db.commit()


def _events(db: sqlite3.Connection, centre: UUID) -> Iterator[tuple[int, Event]]:
    rows = db.execute(
        "SELECT position, topic, body FROM events WHERE centre = ? ORDER BY position",
        (str(centre),),
    )
    for position, topic, body in rows:
        event = msgspec.json.decode(body, type=TYPES[topic])
        if isinstance(event, Event):
            yield position, event


def write_pages(
    by_centre: ByCentre,
    add: Callable[[str, bytes], None],
    *,
    checkpoint: CheckpointIssued,
    covered_up_to: int,
    vkey: str,
    jobs: int | None = None,
) -> bytes:
    """Write a page per centre through `add`; the index page (summary.html) is returned.

    The pages are folded and rendered by `jobs` processes (None: one per core, up to two,
    once there are enough pages to repay starting them), each reading its centres' events
    from the file set aside; they are written in the same order, with the same bytes.
    """
    centres = list(by_centre.names)
    page = _Page(checkpoint, covered_up_to, vkey)
    workers = _workers(len(centres)) if jobs is None else jobs
    if workers > 1 and centres and _FORKSERVER:
        by_centre.flush()
        pages: Iterable[bytes] = _in_processes(by_centre, page, centres, workers)
    else:
        pages = (page.render(centre, by_centre.events(centre)) for centre in centres)
    for centre, made in zip(centres, pages, strict=True):
        add(f"{PAGES}{centre}.html", made)
    return _index(by_centre, checkpoint, vkey).encode()


class _Page(NamedTuple):
    """What every centre's page of one bundle shares."""

    checkpoint: CheckpointIssued
    covered_up_to: int
    vkey: str

    def render(self, centre: UUID, events: Iterable[tuple[int, Event]]) -> bytes:
        return render_summary(
            list(events),
            scope=f"centre {centre}",
            checkpoint=self.checkpoint,
            covered_up_to=self.covered_up_to,
            vkey=self.vkey,
        ).encode()


_PARALLEL_FROM = 128  # pages: fewer are rendered sooner than processes are started
_MAX_WORKERS = 2  # each is ~35 MB (PSS) more: two keep an export near 150 MB in all
_AHEAD = 2  # pages each process may have made before the zip takes them


def _workers(pages: int) -> int:
    if pages < _PARALLEL_FROM:
        return 1
    return min(_MAX_WORKERS, usable_cores())


# Processes started from a clean server, never forked from this one (Linux, macOS).
_FORKSERVER = "forkserver" in multiprocessing.get_all_start_methods()


def _in_processes(
    by_centre: ByCentre, page: _Page, centres: list[UUID], workers: int
) -> Iterator[bytes]:
    """The centres' pages in order, made by `workers` processes, a few pages ahead at most
    (memory stays that of a few pages, however many there are). Should the processes not
    start or die (a program without the `__main__` guard multiprocessing needs, say), the
    pages still to make are made here."""
    context = multiprocessing.get_context("forkserver")  # no fork of this process's threads
    context.set_forkserver_preload([__name__])
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(str(by_centre.path), page)
    )
    pending: deque[Future[bytes]] = deque()
    done = 0
    try:
        for centre in centres:
            pending.append(pool.submit(_render_in_worker, centre))
            if len(pending) >= _AHEAD * workers:
                yield pending.popleft().result()
                done += 1
        while pending:
            yield pending.popleft().result()
            done += 1
    except BrokenProcessPool:
        log.warning("the page-making processes stopped; making the remaining pages here")
        for centre in centres[done:]:
            yield page.render(centre, by_centre.events(centre))
    finally:
        pool.shutdown(cancel_futures=True)


_WORKER: tuple[sqlite3.Connection, _Page] | None = None


def _start_worker(path: str, page: _Page) -> None:
    global _WORKER  # noqa: PLW0603 - one connection per rendering process
    _WORKER = (sqlite3.connect(f"file:{path}?mode=ro", uri=True), page)


def _render_in_worker(centre: UUID) -> bytes:
    assert _WORKER is not None
    db, page = _WORKER
    return page.render(centre, _events(db, centre))


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
