"""The tree math agrees with RFC 9162, with pymerkle and with a reference written differently.

pymerkle's `InmemoryTree` hashes entries as SHA-256(0x00 ‖ entry) and nodes as
SHA-256(0x01 ‖ left ‖ right) (its default "security" mode), so appending our leaf data d
gives our leaves. Its inclusion proofs are [leaf, RFC 9162 PATH…]; its consistency proofs
have another layout, so ours are checked against the recursive reference below instead,
and pymerkle's own consistency proofs are checked against our roots.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pymerkle  # type: ignore[import-untyped]  # ships no type information
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.merkle import (
    EMPTY_ROOT,
    Frontier,
    Span,
    Tree,
    event_leaf,
    leaf_data,
    leaf_hash,
    node_hash,
    recorded_time,
    verify_consistency,
    verify_inclusion,
)

logs = st.lists(st.binary(max_size=24), min_size=1, max_size=40, unique=True)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written straight from the text."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF, written straight from the text."""
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof(m, leaves[:k], complete), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def pymerkle_tree(data: list[bytes]) -> pymerkle.InmemoryTree:
    tree = pymerkle.InmemoryTree(algorithm="sha256")
    for entry in data:
        tree.append_entry(entry)
    return tree


def test_the_empty_tree_has_the_hash_of_nothing_as_its_root() -> None:
    assert Tree().root() == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert Frontier().root() == EMPTY_ROOT == pymerkle.InmemoryTree().get_root(0)


def test_roots_match_the_certificate_transparency_test_vectors() -> None:
    data = [
        bytes.fromhex(h)
        for h in (
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        )
    ]
    roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    tree = Tree(leaf_hash(d) for d in data)
    assert [tree.root(n).hex() for n in range(1, 9)] == roots


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_a_later_range_hashed_apart_joins_the_earlier_frontier_at_every_size(
    count: int, data: st.DataObject
) -> None:
    """What the verifier's second process hashes of the rows from `start` on (a `Span`),
    appended to the frontier of the rows before, is the tree of all of them."""
    leaves = [hashlib.sha256(i.to_bytes(4)).digest() for i in range(count)]
    start = data.draw(st.integers(min_value=0, max_value=count - 1))
    before = Frontier()
    for leaf in leaves[:start]:
        before.append(leaf)
    span = Span(start)
    for size in range(start + 1, count + 1):
        span.append(leaves[size - 1])
        joined = Frontier(before.size, before.hashes)
        for height, node in span.subtrees():
            joined.append_subtree(node, height)
        assert joined.size == size
        assert joined.root() == mth(leaves[:size])


def test_a_subtree_that_does_not_start_where_it_belongs_is_refused() -> None:
    frontier = Frontier()
    frontier.append(leaf_hash(b"a"))
    with pytest.raises(ValueError, match="does not start at leaf 1"):
        frontier.append_subtree(leaf_hash(b"b"), 1)


@settings(max_examples=60, deadline=None)
@given(logs)
def test_roots_agree_with_pymerkle_and_the_reference_for_every_size(data: list[bytes]) -> None:
    leaves = [leaf_hash(d) for d in data]
    ours, theirs = Tree(leaves[:1]), pymerkle_tree(data)
    ours.extend(leaves[1:])  # built incrementally, as the index grows
    frontier = Frontier()
    for size in range(1, len(data) + 1):
        frontier.append(leaves[size - 1])
        expected = mth(leaves[:size])
        assert ours.root(size) == theirs.get_root(size) == frontier.root() == expected
    assert Frontier.from_bytes(frontier.to_bytes()).root() == frontier.root()


@settings(max_examples=60, deadline=None)
@given(logs, st.data())
def test_inclusion_proofs_are_pymerkles_paths_and_verify_both_ways(
    data: list[bytes], draw: st.DataObject
) -> None:
    size = draw.draw(st.integers(1, len(data)))
    index = draw.draw(st.integers(0, size - 1))
    leaves = [leaf_hash(d) for d in data]
    ours, theirs = Tree(leaves), pymerkle_tree(data)
    path, root = ours.inclusion_proof(index, size), ours.root(size)
    proof = theirs.prove_inclusion(index + 1, size)
    assert [bytes.fromhex(h) for h in proof.serialize()["path"]] == [leaves[index], *path]
    pymerkle.verify_inclusion(leaves[index], root, proof)
    assert verify_inclusion(leaves[index], index, size, path, root)
    assert not verify_inclusion(leaf_hash(b"forged"), index, size, path, root)
    if size > 1:
        assert not verify_inclusion(leaves[index], (index + 1) % size, size, path, root)
        assert not verify_inclusion(leaves[index], index, size, path[:-1], root)


@settings(max_examples=60, deadline=None)
@given(logs, st.data())
def test_consistency_proofs_match_the_reference_and_pymerkle_accepts_our_roots(
    data: list[bytes], draw: st.DataObject
) -> None:
    new = draw.draw(st.integers(1, len(data)))
    old = draw.draw(st.integers(1, new))
    leaves = [leaf_hash(d) for d in data]
    ours = Tree(leaves)
    proof = ours.consistency_proof(old, new)
    assert proof == subproof(old, leaves[:new], True)
    assert verify_consistency(old, new, ours.root(old), ours.root(new), proof)
    pymerkle.verify_consistency(
        ours.root(old), ours.root(new), pymerkle_tree(data).prove_consistency(old, new)
    )
    if old < new:
        forged = Tree([*leaves[: old - 1], leaf_hash(b"rewritten"), *leaves[old:new]])
        assert not verify_consistency(old, new, ours.root(old), forged.root(new), proof)
        assert not verify_consistency(old, new, forged.root(old), ours.root(new), proof)


def test_the_leaf_encoding_is_fixed_and_length_prefixed() -> None:
    fields: dict[str, Any] = {
        "position": 5,
        "originator_id": UUID(int=1),
        "originator_version": 2,
        "topic": "t.x",
        "recorded_at": "2026-01-02T03:04:05.000006Z",
        "state_sha256": hashlib.sha256(b"{}").digest(),
    }
    data = leaf_data(**fields)
    assert data == (
        b"\x01"
        + (5).to_bytes(8, "big")
        + (16).to_bytes(4, "big")
        + UUID(int=1).bytes
        + (2).to_bytes(8, "big")
        + (3).to_bytes(4, "big")
        + b"t.x"
        + (27).to_bytes(4, "big")
        + b"2026-01-02T03:04:05.000006Z"
        + (32).to_bytes(4, "big")
        + hashlib.sha256(b"{}").digest()
    )
    assert (
        pymerkle_tree([data]).get_root() == leaf_hash(data) == hashlib.sha256(b"\0" + data).digest()
    )
    moved = event_leaf(
        position=6,
        originator_id=UUID(int=1),
        originator_version=2,
        topic="t.x",
        recorded_at="2026-01-02T03:04:05.000006Z",
        state=b"{}",
    )
    assert moved != leaf_hash(data)  # the position is bound into the leaf
    assert moved == leaf_hash(leaf_data(**{**fields, "position": 6}))


@settings(max_examples=200)
@given(
    st.integers(0, 2**64 - 1),
    st.uuids(),
    st.integers(0, 2**64 - 1),
    st.sampled_from(["t.x", "t.y", "é.topic", ""]) | st.text(max_size=12),
    st.sampled_from(["", "2026-01-02T03:04:05.000006Z"]),
    st.binary(max_size=64),
)
def test_an_event_leaf_is_the_leaf_hash_of_its_data_whatever_the_topics_seen_before(  # noqa: PLR0917
    position: int, stream: UUID, version: int, topic: str, when: str, state: bytes
) -> None:
    """The leaf keeps each topic's encoded prefix for the next event: it must not change d."""
    expected = hashlib.sha256(
        b"\0"
        + b"\x01"
        + position.to_bytes(8, "big")
        + (16).to_bytes(4, "big")
        + stream.bytes
        + version.to_bytes(8, "big")
        + len(topic.encode()).to_bytes(4, "big")
        + topic.encode()
        + len(when).to_bytes(4, "big")
        + when.encode()
        + (32).to_bytes(4, "big")
        + hashlib.sha256(state).digest()
    ).digest()
    for _ in range(2):  # the second time the topic's prefix is the one kept
        assert expected == event_leaf(
            position=position,
            originator_id=stream,
            originator_version=version,
            topic=topic,
            recorded_at=when,
            state=state,
        )


def test_the_recorded_time_is_utc_with_microseconds_or_empty() -> None:
    aware = datetime(2026, 1, 2, 4, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
    assert recorded_time(aware) == "2026-01-02T03:04:05.000006Z"
    assert recorded_time(None) == ""
