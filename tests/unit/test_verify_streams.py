"""The verifier's stream check says the same whether it keeps every stream in memory or
sets most aside on disk (as it does for a whole-log bundle with many streams)."""

from __future__ import annotations

from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.audit.findings import Report
from adapters.audit.verify_rows import Row, StoredBytes, Streams

rows = st.lists(st.tuples(st.integers(1, 6), st.integers(-1, 5)), max_size=60)
lengths = st.none() | st.dictionaries(st.integers(1, 8), st.integers(1, 5), max_size=8)


def _row(position: int, stream: int, version: int) -> Row:
    stored = StoredBytes(
        position=position,
        leaf_index=position,
        originator_id=UUID(int=stream),
        originator_version=version,
        topic="t.unknown",
        recorded_at="",
        state=b"",
    )
    return Row(stored, b"")


def _check(events: list[tuple[int, int]], signed: dict[int, int] | None, hot: int) -> list[str]:
    report = Report()
    streams = Streams(hot=hot)
    for position, (stream, version) in enumerate(events, start=1):
        streams.add(_row(position, stream, version), report)
    named = None if signed is None else {UUID(int=k): v for k, v in signed.items()}
    streams.finish(named, report)
    return report.lines()


@settings(max_examples=300)
@given(rows, lengths)
def test_streams_set_aside_on_disk_are_checked_as_those_kept_in_memory(
    events: list[tuple[int, int]], signed: dict[int, int] | None
) -> None:
    assert _check(events, signed, hot=1) == _check(events, signed, hot=100_000)


def test_a_gap_a_repeat_and_a_cut_are_named_with_streams_on_disk() -> None:
    events = [(1, 1), (2, 1), (3, 1), (1, 2), (2, 3), (3, 1), (4, 1), (1, 3)]
    lines = _check(events, {1: 4, 2: 3, 3: 1, 4: 1}, hot=1)
    assert any("version 1 comes after version 1" in line for line in lines)
    assert any("version 2 is missing" in line for line in lines)
    assert any("versions 4 are cut off" in line for line in lines)
    assert _check([(1, 1), (1, 2), (2, 1)], None, hot=1) == [
        "ok    2 streams run without gaps from version 1"
    ]
