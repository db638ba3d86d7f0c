"""The verifier's checks of the exported events themselves, before any tree math.

Each stored row becomes a `Row`: its bytes, its recomputed leaf and, where the stored bytes
decode, the event (for its id, and to check the decoded view and the recorded-time column).
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Mapping
from functools import cache
from itertools import pairwise
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
from eventsourcing.persistence import MapperDeserialisationError

from adapters.audit import bundle as b
from adapters.audit.findings import Report
from domain.events import Event
from service.codec import TYPES, Stored, decode
from service.merkle import event_leaf, recorded_time
from service.personal_data import SEALED


class Row(NamedTuple):
    stored: b.StoredRow
    state: bytes
    leaf: bytes
    event: Stored | None  # decoded from the stored bytes, when they decode
    view: b.DecodedRow | None  # the decoded view's row for the same position

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


class Loaded(NamedTuple):
    rows: list[Row]
    strays: list[int]  # positions in the decoded view with no stored event


def load_rows(files: Mapping[str, bytes], report: Report) -> Loaded | None:
    """The stored rows with their leaves recomputed, checked to be in log order."""
    try:
        stored = msgspec.json.decode(files[b.STORED], type=list[b.StoredRow])
        decoded = msgspec.json.decode(files[b.DECODED], type=list[b.DecodedRow])
    except msgspec.DecodeError as error:
        report.fail(f"the events cannot be read: {error}")
        return None
    views = {view.position: view for view in decoded}
    rows: list[Row] = []
    for item in stored:
        try:
            state = base64.b64decode(item.state, validate=True)
        except binascii.Error:
            report.fail("its stored bytes are not valid base64", item.position)
            state = b""
        try:
            event: Stored | None = decode(item.topic, state)
        except MapperDeserialisationError:
            event = None
        leaf = event_leaf(
            position=item.position,
            originator_id=item.originator_id,
            originator_version=item.originator_version,
            topic=item.topic,
            recorded_at=item.recorded_at,
            state=state,
        )
        row = Row(item, state, leaf, event, views.pop(item.position, None))
        if rows and row.position <= rows[-1].position:
            report.fail(f"comes after position {rows[-1].position}: events are out of order", row)
        rows.append(row)
    return Loaded(rows, sorted(views))


def check_decoded(loaded: Loaded, report: Report) -> None:
    """The decoded view and the recorded-time column say what the stored bytes say."""
    for row in loaded.rows:
        view = row.view
        if row.event is None:
            if view is not None and view.event is not None:
                report.fail(f"its stored bytes do not decode as a {row.stored.topic} event", row)
            continue
        expected = msgspec.json.decode(msgspec.json.encode(row.event))
        if view is not None and view.event is not None and isinstance(row.event, Event):
            expected = _as_shown_where_sealed(expected, view.event, type(row.event).PERSONAL)
        if view is None or view.event is None or not _agrees(view.event, expected, row):
            report.fail(f"{b.DECODED} does not say what its stored bytes say", row)
        when = recorded_time(getattr(row.event, "recorded_at", None))
        if when != row.stored.recorded_at:
            report.fail(
                f"its recorded-time column says {row.stored.recorded_at!r}, "
                f"but the stored event was recorded at {when!r}",
                row,
            )
    for position in loaded.strays:
        report.fail(f"{b.DECODED} holds an event that is not among the stored ones", position)


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


def check_streams(rows: list[Row], lengths: Mapping[UUID, int] | None, report: Report) -> None:
    """Each stream's versions run 1, 2, 3… in log order; none cut off the signed length."""
    streams: dict[UUID, list[Row]] = defaultdict(list)
    for row in rows:
        streams[row.stream].append(row)
    for stream, items in streams.items():
        versions = [row.version for row in items]
        for previous, row in pairwise(items):
            if row.version <= previous.version:
                report.fail(f"version {row.version} comes after version {previous.version}", row)
        missing = sorted(set(range(1, max(versions) + 1)) - set(versions))
        if missing:
            plural = "versions {} are" if len(missing) > 1 else "version {} is"
            report.fail(f"{plural.format(_spans(missing))} missing", stream=stream)
        if lengths is None:
            continue
        length = lengths.get(stream)
        if length is None:
            report.fail("this stream is not in the export's signed scope", stream=stream)
        elif max(versions) != length:
            cut = _spans(list(range(max(versions) + 1, length + 1))) or "none"
            report.fail(
                f"the signed manifest says {length} events but the bundle ends at version "
                f"{max(versions)}: versions {cut} are cut off",
                stream=stream,
            )
    for stream in sorted(set(lengths or {}) - set(streams)):
        report.fail("every event of this stream is missing", stream=stream)
    if rows and not report.problems:
        report.ok(f"{len(streams)} streams run without gaps from version 1")


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
