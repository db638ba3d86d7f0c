"""A bundle's zip read and written one piece at a time, so memory does not grow with it.

The large files (`events/*.json`, `proofs.json`) are JSON laid out one item per line
(`[`, an item a line, `]`): still one JSON document that any tool reads, and one a reader
can take line by line. A file laid out otherwise (a bundle exported before this layout, or
edited by hand) is read whole, as it always was. Every file is hashed as it is read, for
the manifest; nothing is read twice unless a check needs it again.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, TypeVar

import msgspec

from adapters.audit import bundle as b

T = TypeVar("T")
CHUNK = 1 << 20
_FLUSH = 1 << 18
_EPOCH = (1980, 1, 1, 0, 0, 0)
_INCLUSION_OPEN = b'"inclusion":['
_LEAVES_OPEN = b'],"leaves":['
_PROOFS_CLOSE = b"]}"


class ZipIn:
    """The members of an open bundle, each hashed as it is read (`digests`)."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.digests: dict[str, str] = {}

    def read(self, name: str) -> bytes:
        """A small file whole (the manifest, the key, the checkpoints)."""
        data = self.archive.read(name)
        self.digests[name] = b.sha256_hex(data)
        return data

    def lines(self, name: str) -> Iterator[bytes]:
        """The file's lines without their ends; hashed once read to the end."""
        hasher = hashlib.sha256()
        pending = b""
        with self.archive.open(name) as member:
            while chunk := member.read(CHUNK):
                hasher.update(chunk)
                parts = (pending + chunk).split(b"\n")
                pending = parts.pop()
                yield from parts
        if pending:
            yield pending
        self.digests[name] = hasher.hexdigest()

    def digest(self, name: str) -> str:
        """The file's SHA-256: as already read, or read now in chunks."""
        if name not in self.digests:
            hasher = hashlib.sha256()
            with self.archive.open(name) as member:
                while chunk := member.read(CHUNK):
                    hasher.update(chunk)
            self.digests[name] = hasher.hexdigest()
        return self.digests[name]


def items(lines: Iterator[bytes], kind: type[T]) -> Iterator[T]:
    """The items of a JSON array, line by line when laid out so, else decoded whole.

    Raises msgspec.DecodeError (or ValidationError) where the file stops making sense.
    """
    first = next(lines, b"")
    second = next(lines, b"]") if first == b"[" else b""
    if first != b"[" or not (second == b"]" or second.startswith(b"{")):
        rest = b"\n".join([first, second, *lines]) if second else b"\n".join([first, *lines])
        yield from msgspec.json.decode(rest, type=list[kind])  # type: ignore[valid-type]
        return
    decoder = msgspec.json.Decoder(kind)
    line = second
    while line != b"]":
        yield decoder.decode(line.removesuffix(b","))
        line = next(lines, b"")
        if not line:
            msg = "the array ends before its closing ]"
            raise msgspec.DecodeError(msg)
    for extra in lines:
        if extra.strip():
            msg = "text after the end of the array"
            raise msgspec.DecodeError(msg)


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
