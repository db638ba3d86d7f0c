"""A bundle's zip read and written one piece at a time, so memory does not grow with it.

The large files (`events/*.json`, `proofs.json`) are JSON laid out one item per line
(`[`, an item a line, `]`): still one JSON document that any tool reads, and one a reader
can take line by line. A file laid out otherwise (a bundle exported before this layout, or
edited by hand) is read whole, as it always was. Every file is hashed as it is read, for
the manifest; nothing is read twice unless a check needs it again. Inflating and hashing
let go of the interpreter's lock, so both are done ahead in threads: the events' lines by
a reader thread each, the files no check reads (the summary pages) by one more, while the
checks run on the rows.
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import threading
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, TypeVar

import msgspec

from adapters.audit import bundle as b

T = TypeVar("T")
CHUNK = 1 << 20
# What a reader thread inflates at a time: under malloc's 128 KiB mmap threshold, so the
# chunks the threads make and this one frees are reused, not left in per-thread arenas.
_READ = 1 << 16
_FLUSH = 1 << 18
_EPOCH = (1980, 1, 1, 0, 0, 0)
_INCLUSION_OPEN = b'"inclusion":['
_LEAVES_OPEN = b'],"leaves":['
_PROOFS_CLOSE = b"]}"
_AHEAD = 16  # chunks a reader thread may inflate before they are taken


class ZipIn:
    """The members of an open bundle, each hashed as it is read (`digests`)."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.digests: dict[str, str] = {}
        self._hashing: threading.Thread | None = None
        self._pending: set[str] = set()
        self._failed: dict[str, BaseException] = {}
        self._stop = threading.Event()

    def read(self, name: str) -> bytes:
        """A small file whole (the manifest, the key, the checkpoints)."""
        data = self.archive.read(name)
        self.digests[name] = b.sha256_hex(data)
        return data

    def lines(self, name: str, skip: int = 0) -> Iterator[bytes]:
        """The file's lines without their ends, less its first `skip` (counted as they are
        inflated, not split: another process reads them); hashed once read to the end.

        With `skip`, the reading starts at once, not when the first line is asked for: the
        lines skipped are inflated while the caller waits on another file.
        """
        hasher = hashlib.sha256()
        chunks = self._taken(self._reader(name, hasher, skip)) if skip else None
        # Flattened in C: a generator resumed per chunk, not per line.
        return itertools.chain.from_iterable(self._line_lists(name, hasher, chunks))

    def _line_lists(
        self, name: str, hasher: hashlib._Hash, chunks: Iterator[bytes] | None
    ) -> Iterator[list[bytes]]:
        """`lines`, a chunk's worth at a time."""
        pending = b""
        for chunk in self._chunks(name, hasher) if chunks is None else chunks:
            parts = (pending + chunk).split(b"\n")
            pending = parts.pop()
            yield parts
        if pending:
            yield [pending]
        self.digests[name] = hasher.hexdigest()

    def digest(self, name: str) -> str:
        """The file's SHA-256: as already read (or being read ahead), or read now in chunks."""
        if name in self._pending and self._hashing is not None:
            self._hashing.join()
            self._pending.clear()
        if name in self._failed:
            raise self._failed.pop(name)
        if name not in self.digests:
            self.digests[name] = self._hash(name)
        return self.digests[name]

    def digest_ahead(self, names: Iterable[str]) -> None:
        """Start hashing `names` in a thread (files no check reads), for `digest` to take."""
        todo = [name for name in names if name not in self.digests]
        if not todo or self._hashing is not None:
            return
        self._pending = set(todo)

        def work() -> None:
            for name in todo:
                if self._stop.is_set():
                    return
                try:
                    self.digests[name] = self._hash(name)
                except BaseException as error:  # raised by `digest(name)`
                    self._failed[name] = error

        self._hashing = threading.Thread(target=work, name="bundle-digests", daemon=True)
        self._hashing.start()

    def close(self) -> None:
        """Stop and wait for the threads still reading (before the zip is closed)."""
        self._stop.set()
        if self._hashing is not None:
            self._hashing.join()

    def _hash(self, name: str) -> str:
        hasher = hashlib.sha256()
        with self.archive.open(name) as member:
            while not self._stop.is_set() and (chunk := member.read(_READ)):
                hasher.update(chunk)
        return hasher.hexdigest()

    def _chunks(self, name: str, hasher: hashlib._Hash) -> Iterator[bytes]:
        """The member's content a chunk at a time, inflated and hashed ahead by a thread
        (started when the first chunk is asked for).

        An error reading it (a corrupt zip) is raised here, where the chunk would be.
        """
        yield from self._taken(self._reader(name, hasher, 0))

    def _reader(self, name: str, hasher: hashlib._Hash, skip: int) -> _Reader:
        """Start a thread inflating and hashing the member ahead, less its first `skip`
        lines."""
        ahead: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=_AHEAD)
        stop = threading.Event()

        def put(item: bytes | BaseException | None) -> None:
            while not (stop.is_set() or self._stop.is_set()):
                try:
                    ahead.put(item, timeout=0.1)
                except queue.Full:
                    continue
                return

        def work() -> None:
            left = skip
            try:
                with self.archive.open(name) as member:
                    while not stop.is_set() and (chunk := member.read(_READ)):
                        hasher.update(chunk)
                        if left:
                            chunk, left = _past(chunk, left)
                            if left:
                                continue
                        put(chunk)
                put(None)
            except BaseException as error:  # raised in the reading thread
                put(error)

        thread = threading.Thread(target=work, name=f"bundle-read {name}", daemon=True)
        thread.start()
        return ahead, stop, thread

    @staticmethod
    def _taken(reader: _Reader) -> Iterator[bytes]:
        """The chunks a reader thread puts, until its end (an error is raised here)."""
        ahead, stop, thread = reader
        try:
            while (item := ahead.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()


_Reader = tuple["queue.Queue[bytes | BaseException | None]", threading.Event, threading.Thread]


def _past(chunk: bytes, lines: int) -> tuple[bytes, int]:
    """What of `chunk` follows its first `lines` line ends, and how many are still to pass
    after it."""
    ends = chunk.count(b"\n")
    if ends < lines:
        return b"", lines - ends
    at = -1
    for _ in range(lines):
        at = chunk.index(b"\n", at + 1)
    return chunk[at + 1 :], 0


def items(lines: Iterator[bytes], kind: type[T]) -> Generator[T]:
    """The items of a JSON array, line by line when laid out so, else decoded whole.

    Raises msgspec.DecodeError (or ValidationError) where the file stops making sense.
    """
    page = msgspec.json.Decoder(list[kind])  # type: ignore[valid-type]
    one = msgspec.json.Decoder(kind).decode
    for lines_or_whole in pages(lines):
        if isinstance(lines_or_whole, bytes):
            yield from page.decode(lines_or_whole)
        else:
            yield from decode_page(lines_or_whole, page.decode, one)


PAGE = 512  # item lines a decoder call takes


def pages(lines: Iterator[bytes], size: int | None = None) -> Iterator[list[bytes] | bytes]:
    """A JSON array's item lines, up to `size` (`PAGE`) a page, when laid out one item a
    line; else the whole document once (bytes). Raises msgspec.DecodeError if the array is
    cut short or followed by more text."""
    size = PAGE if size is None else size
    first = next(lines, b"")
    second = next(lines, b"]") if first == b"[" else b""
    if first != b"[" or not (second == b"]" or second.startswith(b"{")):
        yield b"\n".join([first, second, *lines]) if second else b"\n".join([first, *lines])
        return
    line = second
    pending: list[bytes] = []
    while line != b"]":
        pending.append(line)
        if len(pending) == size:
            yield pending
            pending = []
        line = next(lines, b"")
        if not line:
            if pending:
                yield pending
            msg = "the array ends before its closing ]"
            raise msgspec.DecodeError(msg)
    if pending:
        yield pending
    for extra in lines:
        if extra.strip():
            msg = "text after the end of the array"
            raise msgspec.DecodeError(msg)


def decode_page(
    lines: list[bytes], page: Callable[[bytes], list[T]], one: Callable[[bytes], T]
) -> Iterator[T]:
    """A page's items: one decoder call for the page if it reads as one item a line, else
    line by line (the items before a bad line come, then that line's error)."""
    try:
        found = page(b"[" + b"\n".join(lines).removesuffix(b",") + b"]")
    except (msgspec.DecodeError, msgspec.ValidationError):
        found = []
    if len(found) == len(lines):
        yield from found
        return
    for line in lines:
        yield one(line.removesuffix(b","))


class ProofsIn:
    """proofs.json: its head (sizes, root, consistency proofs), then its inclusion
    proofs and its leaves, each read as it is needed."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        first = next(lines, b"")
        self._lines: Iterator[bytes] | None = None
        if first.startswith(b"{") and first.endswith(_INCLUSION_OPEN):
            self.head = msgspec.json.decode(first + b"]}", type=b.Proofs)
            self._lines = lines
            self._leaves_open = False
        else:
            self.head = msgspec.json.decode(b"\n".join([first, *lines]), type=b.Proofs)
        self._inclusion = iter(self.head.inclusion)
        self._inclusion_decoder = msgspec.json.Decoder(b.InclusionEntry)

    def next_inclusion(self) -> b.InclusionEntry | None:
        if self._lines is None:
            return next(self._inclusion, None)
        if self._leaves_open:
            return None
        line = next(self._lines, _LEAVES_OPEN)
        if line == _LEAVES_OPEN:
            self._leaves_open = True
            return None
        return self._inclusion_decoder.decode(line.removesuffix(b","))

    def leaves(self) -> Iterator[b.LeafEntry]:
        if self._lines is None:
            yield from self.head.leaves
            return
        while self.next_inclusion() is not None:
            pass
        decoder = msgspec.json.Decoder(b.LeafEntry)
        for line in self._lines:
            if line == _PROOFS_CLOSE:
                return
            yield decoder.decode(line.removesuffix(b","))


class ZipOut:
    """Writes a bundle's files one after another into a zip, each hashed as it is written.

    Fixed timestamps and a fixed order: the same files give the same bytes.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.archive = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.digests: dict[str, str] = {}

    @contextmanager
    def member(self, name: str) -> Iterator[Callable[[bytes], None]]:
        """A writer of the file `name`; it is finished when the block ends."""
        info = zipfile.ZipInfo(name, date_time=_EPOCH)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        hasher = hashlib.sha256()
        buffered: list[bytes] = []
        size = 0
        with self.archive.open(info, "w", force_zip64=True) as member:

            def write(data: bytes) -> None:
                nonlocal size
                buffered.append(data)
                size += len(data)
                if size >= _FLUSH:
                    flush()

            def flush() -> None:
                nonlocal size
                chunk = b"".join(buffered)
                hasher.update(chunk)
                member.write(chunk)
                buffered.clear()
                size = 0

            yield write
            flush()
        self.digests[name] = hasher.hexdigest()

    def add(self, name: str, data: bytes) -> None:
        with self.member(name) as write:
            write(data)

    def close(self) -> None:
        self.archive.close()


def array_lines(encoded: Iterable[bytes], write: Callable[[bytes], None]) -> None:
    """Write compact JSON items as one array, one item a line."""
    write(b"[")
    separator = b"\n"
    for item in encoded:
        write(separator)
        write(item)
        separator = b",\n"
    write(b"\n]\n")


def proofs_lines(
    head: b.Proofs,
    inclusion: Iterable[bytes],
    leaves: Iterable[bytes],
    write: Callable[[bytes], None],
) -> None:
    """proofs.json with its inclusion proofs and its leaves one a line (see `ProofsIn`)."""
    encoded = msgspec.json.encode(
        {"tree_size": head.tree_size, "root_hash": head.root_hash, "consistency": head.consistency}
    )
    write(encoded[:-1] + b"," + _INCLUSION_OPEN)
    for section, close in ((inclusion, _LEAVES_OPEN), (leaves, _PROOFS_CLOSE)):
        separator = b"\n"
        for item in section:
            write(separator)
            write(item)
            separator = b",\n"
        write(b"\n" + close)
    write(b"\n")
