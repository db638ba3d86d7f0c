"""The verifier's checks of the exported events themselves, before any tree math.

Each stored row becomes a `Row`, one at a time: its bytes, its recomputed leaf, its row of
the decoded view and, only where a check needs it, the event decoded from the stored bytes.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
from collections.abc import Callable, Generator, Iterator, Mapping
from functools import cache
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import MapperDeserialisationError

from adapters.audit import bundle as b
from adapters.audit.bundle_io import ZipIn, decode_page, items, pages
from adapters.audit.findings import Report
from domain.events import Event
from service.codec import TYPES, Stored, decode
from service.merkle import event_leaf, recorded_time
from service.personal_data import SEALED


class Row:
    """One stored row as the verifier reads it; the event is decoded only if asked for."""

    __slots__ = ("_decoded", "_event", "_leaf", "_view", "raw_view", "state", "stored")

    def __init__(self, stored: StoredBytes, state: bytes) -> None:
        self.stored = stored
        self.state = state
        self._leaf: bytes | None = None
        self.raw_view: RawView | None = None  # the decoded view's row for the same position
        self._view: b.DecodedRow | bool | None = False
        self._event: Stored | None = None
        self._decoded = False

    @property
    def view(self) -> b.DecodedRow | None:
        """The view's row with its event read (None if it is missing or no JSON object)."""
        if self._view is False:
            self._view = None
            raw = self.raw_view
            if raw is not None:
                try:
                    event = msgspec.json.decode(raw.event, type=dict[str, Any] | None)
                except msgspec.DecodeError:
                    return None
                self._view = b.DecodedRow(
                    position=raw.position,
                    originator_id=raw.originator_id,
                    originator_version=raw.originator_version,
                    topic=raw.topic,
                    event=event,
                )
        return self._view if isinstance(self._view, b.DecodedRow) else None

    @property
    def leaf(self) -> bytes:
        """The leaf recomputed from the stored bytes and columns (when a check asks: a
        whole-log bundle's tree may be hashed by another process)."""
        if self._leaf is None:
            item = self.stored
            self._leaf = event_leaf(
                position=item.position,
                originator_id=item.originator_id,
                originator_version=item.originator_version,
                topic=item.topic,
                recorded_at=item.recorded_at,
                state=self.state,
            )
        return self._leaf

    @property
    def event(self) -> Stored | None:
        """Decoded from the stored bytes, when they decode (and only when a check asks)."""
        if not self._decoded:
            try:
                self._event = decode(self.stored.topic, self.state)
            except MapperDeserialisationError:
                self._event = None
            self._decoded = True
        return self._event

    @property
    def position(self) -> int:
        return self.stored.position

    @property
    def stream(self) -> UUID:
        return self.stored.originator_id

    @property
    def version(self) -> int:
        return self.stored.originator_version

    @property
    def event_id(self) -> UUID | None:
        if isinstance(self.event, Event):
            return self.event.event_id
        claimed = (self.view.event or {}).get("event_id") if self.view else None
        try:  # only to say where: the stored bytes no longer say
            return UUID(str(claimed)) if claimed else None
        except ValueError:
            return None


class StoredBytes(msgspec.Struct, frozen=True, kw_only=True):
    """A stored row read with its state as bytes: msgspec checks and decodes the base64."""

    position: int
    leaf_index: int
    originator_id: UUID
    originator_version: int
    topic: str
    recorded_at: str
    state: bytes


def read_rows(zin: ZipIn, report: Report, lines: Iterator[bytes] | None = None) -> Generator[Row]:
    """The stored rows in bundle order, checked to be in log order (leaves on demand).

    Read a page of lines per decoder call (see `_stored_rows`); from `lines` if given (a
    range of the file, for a second process), else from the start of the file.
    """
    last: int | None = None
    try:
        for item in _stored_rows(zin.lines(b.STORED) if lines is None else lines, report):
            row = Row(item, item.state)
            if last is not None and item.position <= last:
                report.fail(f"comes after position {last}: events are out of order", row)
            last = item.position
            yield row
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        report.fail(f"the events cannot be read: {error}")


_PAGE = msgspec.json.Decoder(list[StoredBytes]).decode
_ONE = msgspec.json.Decoder(StoredBytes).decode
_TEXT = msgspec.json.Decoder(b.StoredRow).decode


def _stored_rows(lines: Iterator[bytes], report: Report) -> Iterator[StoredBytes]:
    """The stored rows, their base64 decoded by msgspec a page of lines at a time; a row
    whose state is not base64 is read as text to name it (its bytes then read as b"")."""
    for lines_or_whole in pages(lines):
        if isinstance(lines_or_whole, bytes):
            for item in msgspec.json.decode(lines_or_whole, type=list[b.StoredRow]):
                yield _as_bytes(item, report)
        else:
            yield from decode_page(lines_or_whole, _PAGE, lambda line: _line(line, report))


def _line(line: bytes, report: Report) -> StoredBytes:
    try:
        return _ONE(line)
    except msgspec.ValidationError:
        return _as_bytes(_TEXT(line), report)  # raises if the row itself does not read


def _as_bytes(item: b.StoredRow, report: Report) -> StoredBytes:
    try:
        state = base64.b64decode(item.state, validate=True)
    except binascii.Error:
        report.fail("its stored bytes are not valid base64", item.position)
        state = b""
    return StoredBytes(
        position=item.position,
        leaf_index=item.leaf_index,
        originator_id=item.originator_id,
        originator_version=item.originator_version,
        topic=item.topic,
        recorded_at=item.recorded_at,
        state=state,
    )


class RawView(msgspec.Struct, frozen=True, kw_only=True):
    """A row of the decoded view, its event left as the JSON text it is."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    event: msgspec.Raw


class _Timed(msgspec.Struct):
    recorded_at: str | None = None


_timed = msgspec.json.Decoder(_Timed).decode
_object = msgspec.json.Decoder(dict[str, Any] | None).decode
_json = msgspec.json.Decoder().decode


class Views:
    """The decoded view's rows, taken by position as the stored rows come: in a bundle as
    exported they come in the same order, so only a tampered one makes this hold more."""

    def __init__(self, zin: ZipIn, report: Report, lines: Iterator[bytes] | None = None) -> None:
        self._items = items(zin.lines(b.DECODED) if lines is None else lines, RawView)
        self._ahead: dict[int, RawView] = {}
        self._report = report
        self._done = False

    @property
    def held(self) -> int:
        """Views read ahead and not yet taken (none, for a bundle as exported)."""
        return len(self._ahead)

    def close(self) -> None:
        """Stop reading (the rest of the file is left to another process)."""
        self._items.close()

    def take(self, position: int) -> RawView | None:
        found = self._ahead.pop(position, None) if self._ahead else None
        while found is None and (view := self._next()) is not None:
            if view.position == position:
                return view
            self._ahead[view.position] = view
        return found

    def strays(self) -> list[int]:
        """Positions in the view with no stored row."""
        while (view := self._next()) is not None:
            self._ahead[view.position] = view
        return sorted(self._ahead)

    def _next(self) -> RawView | None:
        if self._done:
            return None
        try:
            return next(self._items)
        except StopIteration:
            pass
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            self._report.fail(f"the events cannot be read: {error}")
        self._done = True
        return None


_PERSONAL = {
    topic: cls.PERSONAL for topic, cls in TYPES.items() if issubclass(cls, Event) and cls.PERSONAL
}


_UNTIMED = frozenset(
    topic
    for topic, cls in TYPES.items()
    if "recorded_at" not in {field.name for field in msgspec.structs.fields(cls)}
)


def check_view(row: Row, report: Report) -> None:
    """The decoded view and the recorded-time column say what the stored bytes say.

    Most rows are settled without decoding the event: the stored JSON, sealed personal
    fields taken as the view shows them, is the view, and its recorded time is the column,
    as text. Anything else (upcasts, defaults, a newer writer, a mismatch) is decided by
    decoding the event, as a finding must be.
    """
    if _is_stored(row) or _same_as_stored(row):
        return
    view = row.view
    if view is None and row.raw_view is not None:
        report.fail(f"{b.DECODED} cannot be read here: its event is not a JSON object", row)
    event = row.event
    if event is None:
        if view is not None and view.event is not None:
            report.fail(f"its stored bytes do not decode as a {row.stored.topic} event", row)
        return
    expected = msgspec.json.decode(msgspec.json.encode(event))
    if view is not None and view.event is not None and isinstance(event, Event):
        expected = _as_shown_where_sealed(expected, view.event, type(event).PERSONAL)
    if view is None or view.event is None or not _agrees(view.event, expected, row):
        report.fail(f"{b.DECODED} does not say what its stored bytes say", row)
    when = recorded_time(getattr(event, "recorded_at", None))
    if when != row.stored.recorded_at:
        report.fail(
            f"its recorded-time column says {row.stored.recorded_at!r}, "
            f"but the stored event was recorded at {when!r}",
            row,
        )


def _same_time(stored: object, column: str) -> bool:
    """The stored time (msgspec drops a zero fraction) is the column's UTC text."""
    if not isinstance(stored, str) or not stored.endswith("Z"):
        return False
    head, _, fraction = stored[:-1].partition(".")
    return len(fraction) <= 6 and f"{head}.{fraction.ljust(6, '0')}Z" == column


def _is_stored(row: Row) -> bool:
    """The view's event is the stored bytes themselves, and the time column is theirs."""
    raw = row.raw_view
    if raw is None or bytes(raw.event) != row.state:
        return False
    state = row.state
    if row.stored.topic in _UNTIMED and state[:1] == b"{" and b'"recorded_at"' not in state:
        return not row.stored.recorded_at  # a JSON object (as the view read it), untimed
    try:
        stored = _timed(row.state).recorded_at
    except msgspec.DecodeError:
        return False
    if row.stored.topic in _UNTIMED:
        return stored is None and not row.stored.recorded_at
    return _same_time(stored, row.stored.recorded_at)


def _same_as_stored(row: Row) -> bool:
    """The view is the stored JSON itself (sealed fields as shown), recorded time as text."""
    if row.raw_view is None or row.stored.topic not in TYPES:
        return False
    try:
        shown = _object(row.raw_view.event)
        raw = _json(row.state)
    except msgspec.DecodeError:
        return False
    if shown is None:
        return False
    if not isinstance(raw, dict):
        return False
    if row.stored.topic in _UNTIMED:  # receipts, claims: their leaves carry no time
        if row.stored.recorded_at or "recorded_at" in raw:
            return False
    elif not _same_time(raw.get("recorded_at"), row.stored.recorded_at):
        return False
    for field in _PERSONAL.get(row.stored.topic, ()):
        value = raw.get(field)
        if isinstance(value, dict) and "sealed" in value:
            raw[field] = shown.get(field)
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            opened = shown.get(field)
            if not isinstance(opened, list) or len(opened) != len(value):
                return False
            raw[field] = [
                o if isinstance(v, dict) and "sealed" in v else v
                for v, o in zip(value, opened, strict=True)
            ]
    return bool(raw == shown)


def _agrees(shown: dict[str, Any], expected: dict[str, Any], row: Row) -> bool:
    """The view says what the stored bytes say, whichever release wrote each: a field the
    view leaves out is one its writer did not know yet (so it must read as its default), and
    a field it has that this release does not know must be in the stored bytes as shown."""
    defaults = _defaults(row.stored.topic)
    for name, value in expected.items():
        if name in shown:
            if shown[name] != value:
                return False
        elif defaults.get(name, _MISSING) != value:
            return False
    newer = set(shown) - set(expected)
    if not newer:
        return True
    raw = msgspec.json.decode(row.state)
    return isinstance(raw, dict) and all(raw.get(name) == shown[name] for name in newer)


_MISSING = object()


@cache
def _defaults(topic: str) -> dict[str, Any]:
    """Each field's default as it reads in JSON (fields without one are left out)."""
    out: dict[str, Any] = {}
    for field in msgspec.structs.fields(TYPES[topic]):
        if field.default is not msgspec.NODEFAULT:
            out[field.name] = msgspec.to_builtins(field.default)
        elif field.default_factory is not msgspec.NODEFAULT:
            out[field.name] = msgspec.to_builtins(field.default_factory())
    return out


def _as_shown_where_sealed(
    expected: dict[str, Any], shown: dict[str, Any], personal: frozenset[str]
) -> dict[str, Any]:
    """Sealed personal fields can't be read without the key store: for those alone the
    view's text is taken as shown (plain text, or ERASED). The stored bytes, ciphertext
    included, are still bound by the leaf; every clear field is still compared.
    """
    for field in personal:
        value, view = expected.get(field), shown.get(field)
        if value == SEALED:
            expected[field] = view
        elif isinstance(value, list) and isinstance(view, list) and len(value) == len(view):
            expected[field] = [v if e == SEALED else e for e, v in zip(value, view, strict=True)]
    return expected


class Streams:
    """Each stream's versions run 1, 2, 3… in log order; none cut off the signed length.

    Fed row by row; a stream that runs 1, 2, 3 costs its last version, and only one that
    skips or goes back is remembered version by version, to name what is missing. The last
    versions are kept in a dict of up to `hot` streams; past that they are set aside in a
    temporary SQLite file (a whole-log bundle has a stream per claimed id: 458k at 1M
    events, 40 MB as a dict), read back for a stream the dict no longer holds.
    """

    def __init__(self, hot: int = 50_000, opened: Callable[[int, int], None] | None = None) -> None:
        # Keyed by the id's 128-bit number, not the UUID object: half the memory.
        self.last: dict[int, int] = {}
        self.irregular: dict[int, set[int]] = {}
        self._hot = hot
        self._cold: _Cold | None = None
        # A later range of the log: a stream first seen here may go on from earlier rows;
        # `opened(stream, version)` is told, for the earlier range to check (see `joins`).
        self._opened = opened

    def add(self, row: Row, report: Report) -> None:
        stored = row.stored
        stream, version = stored.originator_id.int, stored.originator_version
        last = self.last.get(stream)
        if last is None and self._cold is not None:
            last = self._cold.get(stream)
        if last is None and self._opened is not None:
            self._opened(stream, version)
            last = version - 1
        known, last = last is not None, last or 0
        if version == last + 1 and not self.irregular:  # as exported: nothing else to note
            self._set(stream, version)
            return
        seen = self.irregular.get(stream)
        if version != last + 1 or seen is not None:
            if seen is None:
                seen = self.irregular[stream] = set(range(1, last + 1))
            seen.add(version)
            if known and version <= last:
                report.fail(f"version {version} comes after version {last}", row)
        self._set(stream, version)

    def _set(self, stream: int, version: int) -> None:
        self.last[stream] = version
        if len(self.last) > self._hot:
            if self._cold is None:
                self._cold = _Cold()
            self._cold.put(self.last)

    def _every(self) -> Iterator[tuple[int, int]]:
        """(stream, last version) of every stream, in the order first seen."""
        if self._cold is None:
            yield from self.last.items()
            return
        self._cold.put(self.last)
        yield from self._cold.every()
        yield from self.last.items()  # what would not fit a SQLite integer

    def joins(self, opened: Iterator[tuple[int, int]]) -> int | None:
        """Whether the streams a later range of the log opened go on from these rows: each
        first seen there at version v ran here to v - 1 (0: not seen). How many were new
        there (v = 1); None if any does not join (the caller then checks the log whole)."""
        new = 0
        for stream, version in opened:
            last = self.last.get(stream)
            if last is None and self._cold is not None:
                last = self._cold.get(stream)
            if (last or 0) != version - 1:
                return None
            new += version == 1
        return new

    def close(self) -> None:
        if self._cold is not None:
            self._cold.close()

    def finish(self, lengths: Mapping[UUID, int] | None, report: Report, more: int = 0) -> None:
        """Name each gap; `more`: streams a later range of the log checked (see `joins`)."""
        signed = {stream.int: length for stream, length in (lengths or {}).items()}
        seen_streams = 0
        every = self._every() if lengths is not None else self._irregular_last()
        for key, last in every:
            seen_streams += 1
            stream = UUID(int=key)
            seen = self.irregular.get(key)
            top = max(seen) if seen else last
            missing = sorted(set(range(1, top + 1)) - seen) if seen else []
            if missing:
                plural = "versions {} are" if len(missing) > 1 else "version {} is"
                report.fail(f"{plural.format(_spans(missing))} missing", stream=stream)
            if lengths is None:
                continue
            length = signed.pop(key, None)
            if length is None:
                report.fail("this stream is not in the export's signed scope", stream=stream)
            elif top != length:
                cut = _spans(list(range(top + 1, length + 1))) or "none"
                report.fail(
                    f"the signed manifest says {length} events but the bundle ends at version "
                    f"{top}: versions {cut} are cut off",
                    stream=stream,
                )
        for key in sorted(signed, key=lambda k: UUID(int=k)):
            report.fail("every event of this stream is missing", stream=UUID(int=key))
        count = (seen_streams if lengths is not None else self._count()) + more
        if count and not report.problems:
            report.ok(f"{count} streams run without gaps from version 1")
        if self._cold is not None:
            self._cold.close()

    def _irregular_last(self) -> Iterator[tuple[int, int]]:
        """(stream, last version) of the streams that skipped or went back, in the order
        the full pass first saw them (all that a whole-log bundle's check needs)."""
        if self._cold is None:
            yield from ((k, v) for k, v in self.last.items() if k in self.irregular)
            return
        self._cold.put(self.last)
        cold = [(self._cold.seen(key), key) for key in self.irregular if key not in self.last]
        for (_, last), key in sorted(cold):
            yield key, last
        yield from ((k, v) for k, v in self.last.items() if k in self.irregular)

    def _count(self) -> int:
        if self._cold is None:
            return len(self.last)
        self._cold.put(self.last)
        return self._cold.count() + len(self.last)


_INT64 = 1 << 63


class _Cold:
    """Streams' last versions set aside in a temporary SQLite file (deleted on close)."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a private temporary file, gone when closed
        self._db.execute(
            "CREATE TABLE last (id BLOB PRIMARY KEY, version INTEGER, seq INTEGER) WITHOUT ROWID"
        )
        self._seq = 0

    def get(self, stream: int) -> int | None:
        found = self._db.execute(
            "SELECT version FROM last WHERE id = ?", (stream.to_bytes(16),)
        ).fetchone()
        return int(found[0]) if found else None

    def seen(self, stream: int) -> tuple[int, int]:
        """(when the stream was first set aside, its last version)."""
        found = self._db.execute(
            "SELECT seq, version FROM last WHERE id = ?", (stream.to_bytes(16),)
        ).fetchone()
        return (int(found[0]), int(found[1])) if found else (-1, 0)

    def put(self, hot: dict[int, int]) -> None:
        """Move the dict's streams here (but versions no SQLite integer holds), row by
        row: a list of them would cost at once what the dict did."""
        kept = {k: v for k, v in hot.items() if not -_INT64 <= v < _INT64}
        first = self._seq
        self._seq += len(hot)
        self._db.executemany(
            "INSERT INTO last VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET version ="
            " excluded.version",
            (
                (k.to_bytes(16), v, first + i)
                for i, (k, v) in enumerate(hot.items())
                if -_INT64 <= v < _INT64
            ),
        )
        self._db.executemany("DELETE FROM last WHERE id = ?", [(k.to_bytes(16),) for k in kept])
        hot.clear()
        hot.update(kept)

    def every(self) -> Iterator[tuple[int, int]]:
        for key, version in self._db.execute("SELECT id, version FROM last ORDER BY seq"):
            yield int.from_bytes(key), int(version)

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM last").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def _spans(numbers: list[int]) -> str:
    """1, 2, 3, 5 -> '1-3, 5'."""
    spans: list[str] = []
    start = previous = None
    for n in [*numbers, None]:
        if start is not None and (n is None or n != (previous or 0) + 1):
            spans.append(str(start) if start == previous else f"{start}-{previous}")
            start = None
        if n is not None and start is None:
            start = n
        previous = n
    return ", ".join(spans)
