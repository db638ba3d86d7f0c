"""A whole-log bundle's rows checked by two processes, each a range of the log.

Every row costs Python work in several checks (its row and view decoded and compared, its
stream's version, its leaf and the tree): one process checks the first rows, a second
(a plain child interpreter, as for `verify_tree`) the rest, from the same file. The child
hands back what joins the halves: the number of rows, the first position it read, the
manifest hashes of the two events files it read to the end, the aligned subtrees of its
leaves at each size a check asks (`Span`), and, in a file, each stream it first saw with
the version it first saw (which the first half must have reached just before).

This is the fast path of a bundle as exported. Anything else (a finding in either half,
halves that do not join, a child that fails or cannot start) discards both halves and
the bundle is checked whole in one process, so the findings, their order and their words
are never the split's.
"""

from __future__ import annotations

import itertools
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from adapters.audit import bundle as b
from adapters.audit import bundle_io
from adapters.audit.bundle_io import ZipIn
from adapters.audit.findings import Report
from adapters.audit.verify_rows import Streams, Views, check_view, read_rows
from adapters.cores import spare_core
from service.merkle import EMPTY_ROOT, Frontier, Span

# Rows from which a second process pays for its start and the rows it skips: with the
# verifier at raised priority (an idle machine's stand-in), two halves took 1.17 s for 50k
# rows against 0.72-0.88 s whole, and 3.6-5.9 s for 300k against 4.6-6.5 s.
SPLIT_FROM = 100_000
# The first half's share of the rows: it also hashes the files no check reads (the summary
# pages, proofs.json) and joins the halves; the second starts (~0.2 s CPU) and inflates the
# rows it skips. Balanced by the CPU of each, measured at 50k and 300k rows.
FIRST_SHARE = 0.45
_OPENED = struct.Struct(">16sq")  # a stream's id, the version it was first seen at
_OPENED_READ = _OPENED.size * 4_096
_LINES = b"[\n{"  # how an events file laid out one row a line begins


class Checked(NamedTuple):
    """What both halves found of a bundle as exported: its rows and the roots asked."""

    rows: int
    roots: dict[int, bytes]


class Half(NamedTuple):
    """What the second process found of its range."""

    rows: int
    first_position: int
    digests: dict[str, str]
    subtrees: dict[int, list[tuple[int, bytes]]]  # size asked -> the span's subtrees there


class Split:
    """The second process, checking the rows from `first` on while this one checks the
    rows before."""

    def __init__(self, path: Path, rows: int, sizes: frozenset[int]) -> None:
        self.rows = rows
        # On a page boundary: each half then decodes the very pages a whole pass decodes,
        # so the two read the rows it reads, however a crafted file lays them out.
        page = bundle_io.PAGE
        self.first = first = max(1, round(rows * FIRST_SHARE / page)) * page
        handle, name = tempfile.mkstemp(prefix="eportfolio-verify-", suffix=".streams")
        os.close(handle)
        self.opened_path = Path(name)
        command = [
            sys.executable,
            "-m",
            __name__,
            str(path),
            str(first),
            str(page),
            name,
            *map(str, sorted(sizes)),
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self._child = subprocess.Popen(  # noqa: S603 - this interpreter, this module
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
            )
        except OSError:
            self.opened_path.unlink(missing_ok=True)
            raise

    @classmethod
    def start(cls, zin: ZipIn, path: Path | None, rows: int, sizes: Iterable[int]) -> Split | None:
        """Start the second process on a bundle file of `rows` rows, if it pays: big
        enough, a core idle for it, both events files laid out one row a line."""
        if path is None or rows < SPLIT_FROM or not spare_core():
            return None
        if not all(_laid_out_in_lines(zin.archive, name) for name in (b.STORED, b.DECODED)):
            return None
        try:
            return cls(path, rows, frozenset(sizes))
        except OSError:  # no process to be had: check the rows here
            return None

    def half(self) -> Half | None:
        """What the second process found, or None if it failed or found anything."""
        try:
            out, _ = self._child.communicate()
            if self._child.returncode != 0:
                return None
            found: dict[str, Any] = json.loads(out)
            return Half(
                rows=int(found["rows"]),
                first_position=int(found["first_position"]),
                digests={str(k): str(v) for k, v in found["digests"].items()},
                subtrees={
                    int(size): [(int(h), bytes.fromhex(node)) for h, node in nodes]
                    for size, nodes in found["subtrees"].items()
                },
            )
        except (ValueError, KeyError, TypeError, AttributeError, OSError):
            return None

    def opened(self) -> Iterator[tuple[int, int]]:
        """(stream, version) of each stream the second process first saw, in its order."""
        with self.opened_path.open("rb") as records:
            while chunk := records.read(_OPENED_READ):
                for stream, version in _OPENED.iter_unpack(chunk):
                    yield int.from_bytes(stream), version

    def cancel(self) -> None:
        self._child.kill()
        self._child.wait()

    def close(self) -> None:
        self.opened_path.unlink(missing_ok=True)


def _laid_out_in_lines(archive: zipfile.ZipFile, name: str) -> bool:
    with archive.open(name) as member:
        return member.read(len(_LINES)) == _LINES


def check_split(
    zin: ZipIn,
    split: Split,
    sizes: frozenset[int],
    progress: Callable[[int], None] | None,
    report: Report,
) -> Checked | None:
    """The rows before `split.first` checked here and the rest by the second process;
    None unless every check of both halves passed and they join (`report` is then told
    what the whole pass would tell it of a bundle as exported)."""
    try:
        return _check_split(zin, split, sizes, progress, report)
    finally:
        split.close()


def _check_split(
    zin: ZipIn,
    split: Split,
    sizes: frozenset[int],
    progress: Callable[[int], None] | None,
    report: Report,
) -> Checked | None:
    found = Report()  # the first half's findings: any at all, and the log is checked whole
    views, streams, frontier = Views(zin, found), Streams(), Frontier()
    roots = {0: EMPTY_ROOT}
    first, count, last = split.first, 0, 0
    rows = read_rows(zin, found)
    take, add, append = views.take, streams.add, frontier.append
    try:
        for row in rows:
            row.raw_view = take(row.stored.position)
            check_view(row, found)
            add(row, found)
            append(row.leaf)
            count += 1
            if count in sizes:
                roots[count] = frontier.root()
            if progress is not None and count % 2_000 == 0:
                progress(count * split.rows // first)  # both halves, about as far on
            if count == first:
                last = row.position
                break
        half = split.half()
    except BaseException:
        split.cancel()
        raise
    finally:
        rows.close()
        views.close()
    try:
        joined = count == first and not (found.problems or streams.irregular or views.held)
        if half is None or not joined or half.first_position <= last:
            return None
        new = streams.joins(split.opened())
        if new is None:
            return None
        streams.finish(None, report, more=new)
        for size, subtrees in half.subtrees.items():
            whole = Frontier(frontier.size, frontier.hashes)
            for height, node in subtrees:
                whole.append_subtree(node, height)
            roots[size] = whole.root()
        zin.digests.update(half.digests)
        return Checked(rows=first + half.rows, roots=roots)
    finally:
        streams.close()


def _after(zin: ZipIn, name: str, first: int) -> Iterator[bytes] | None:
    """An events file's lines from its row `first` on, as an array of its own (the file
    begins `[` a line, as `Split.start` saw); None unless they go on one row a line, as a
    whole pass would read them."""
    lines = zin.lines(name, skip=first + 1)
    line = next(lines, b"")
    if not line.startswith(b"{"):
        return None
    return itertools.chain((b"[", line), lines)


def check_range(
    zin: ZipIn, first: int, sizes: frozenset[int], opened: BinaryIO
) -> dict[str, Any] | None:
    """Check the rows from `first` on (run in the second process); None at any finding."""
    report = Report()
    stored, decoded = _after(zin, b.STORED, first), _after(zin, b.DECODED, first)
    if stored is None or decoded is None:
        return None
    pack, write = _OPENED.pack, opened.write
    fits = -(1 << 63), 1 << 63

    def record(stream: int, version: int) -> None:
        if not fits[0] <= version < fits[1]:
            raise _Unjoinable
        write(pack(stream.to_bytes(16), version))

    views, streams, span = Views(zin, report, decoded), Streams(opened=record), Span(first)
    take, add, append = views.take, streams.add, span.append
    wanted = {size for size in sizes if size > first}
    subtrees: dict[int, list[tuple[int, bytes]]] = {}
    first_position: int | None = None
    try:
        for row in read_rows(zin, report, stored):
            if first_position is None:
                first_position = row.position
            row.raw_view = take(row.stored.position)
            check_view(row, report)
            add(row, report)
            append(row.leaf)
            if first + span.size in wanted:
                subtrees[first + span.size] = span.subtrees()
        strays = views.strays()
    except _Unjoinable:
        return None
    finally:
        streams.close()
    if report.problems or strays or streams.irregular or first_position is None:
        return None
    return {
        "rows": span.size,
        "first_position": first_position,
        "digests": {name: zin.digests[name] for name in (b.STORED, b.DECODED)},
        "subtrees": {
            str(size): [[height, node.hex()] for height, node in nodes]
            for size, nodes in subtrees.items()
        },
    }


class _Unjoinable(Exception):
    """A version no record holds: the halves cannot be joined (the log is checked whole)."""


def main(argv: list[str]) -> int:
    """`python -m adapters.audit.verify_split BUNDLE FIRST PAGE STREAMS [SIZE...]`: the
    range's result as JSON; the streams it opened to the file STREAMS. Exit 1 if none.
    PAGE: the lines a decoder call takes, as in the first half (FIRST is a multiple)."""
    path, first, page, out, *sizes = argv
    bundle_io.PAGE = int(page)
    with zipfile.ZipFile(path) as archive, Path(out).open("wb") as opened:
        zin = ZipIn(archive)
        try:
            found = check_range(zin, int(first), frozenset(map(int, sizes)), opened)
        finally:
            zin.close()
    if found is None:
        return 1
    sys.stdout.write(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
