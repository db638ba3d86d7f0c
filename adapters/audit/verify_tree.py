"""The tree of a whole-log bundle, hashed beside the row checks by a second process.

A whole-log bundle is checked against its signed roots by recomputing every leaf (two
SHA-256 and a pack per event) and folding them into the tree: about a third of the
verifier's time, and independent of every other check. For a bundle file large enough to
repay a process's start (about a second), and a core idle to run it, another process
reads the same file and hashes the tree while this one checks the rows; it hands back the
number of rows and the root at each size asked. If it fails for any reason, the tree is
hashed here, as for a small bundle, so the findings never depend on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

from adapters.audit import bundle as b
from adapters.audit.bundle_io import ZipIn
from adapters.audit.findings import Report
from adapters.audit.verify_rows import read_rows
from adapters.cores import spare_core
from service.merkle import EMPTY_ROOT, Frontier

ELSEWHERE_FROM = 64 << 20  # bytes of events/stored.json from which a second process pays
Roots = tuple[int, dict[int, bytes]]  # rows read, the root at each size asked (and 0)


def tree_roots(zin: ZipIn, sizes: Iterable[int]) -> Roots:
    """The stored rows' count and their tree's root at each of `sizes` it reaches."""
    wanted = frozenset(sizes)
    frontier = Frontier()
    append = frontier.append
    roots = {0: EMPTY_ROOT}
    for row in read_rows(zin, Report()):  # the row checks report; this only hashes
        append(row.leaf)
        if frontier.size in wanted:
            roots[frontier.size] = frontier.root()
    return frontier.size, roots


def _file_roots(path: str, sizes: frozenset[int]) -> Roots:
    """`tree_roots` of the bundle file at `path` (run in the second process)."""
    with zipfile.ZipFile(path) as archive:
        zin = ZipIn(archive)
        try:
            return tree_roots(zin, sizes)
        finally:
            zin.close()


class TreeElsewhere:
    """The tree hashed by a second process while the caller reads the rows.

    A plain child interpreter (`python -m adapters.audit.verify_tree`), not
    multiprocessing: spawning would re-run the caller's main script, forking would copy
    the reader threads' locks.
    """

    def __init__(self, path: Path, sizes: frozenset[int]) -> None:
        self._sizes = sizes
        command = [sys.executable, "-m", __name__, str(path), *map(str, sorted(sizes))]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._child = subprocess.Popen(  # noqa: S603 - this interpreter, this module
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )

    @classmethod
    def start(cls, zin: ZipIn, path: Path | None, sizes: Iterable[int]) -> TreeElsewhere | None:
        """Start hashing the tree of the bundle file at `path`, if it is big enough to pay."""
        if path is None or zin.archive.getinfo(b.STORED).file_size < ELSEWHERE_FROM:
            return None
        if not spare_core():
            return None
        try:
            return cls(path, frozenset(sizes))
        except OSError:  # no process to be had: hash here
            return None

    def roots(self, zin: ZipIn, rows: int) -> dict[int, bytes]:
        """The roots the other process found, for the `rows` the caller read; hashed here
        if that process failed, or read another number of rows (it cannot, unless the file
        changed under both)."""
        try:
            out, _ = self._child.communicate()
            found = json.loads(out) if self._child.returncode == 0 else {}
            count = int(found.get("rows", -1))
            roots = {int(size): bytes.fromhex(root) for size, root in found["roots"].items()}
        except (ValueError, KeyError, TypeError, AttributeError, OSError):
            count, roots = -1, {}
        if count != rows:
            count, roots = tree_roots(zin, self._sizes)
        return roots

    def cancel(self) -> None:
        self._child.kill()
        self._child.wait()


def main(argv: list[str]) -> None:
    """`python -m adapters.audit.verify_tree BUNDLE [SIZE...]`: rows and roots, as JSON."""
    count, roots = _file_roots(argv[0], frozenset(int(size) for size in argv[1:]))
    sys.stdout.write(
        json.dumps({"rows": count, "roots": {str(k): v.hex() for k, v in roots.items()}})
    )


if __name__ == "__main__":
    main(sys.argv[1:])
