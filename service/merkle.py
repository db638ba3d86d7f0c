"""RFC 9162 Merkle tree math over the event log: leaves, roots and proofs.

The leaf binds where an event sits (position, stream, version), what it is (topic), when it
was recorded and a SHA-256 of the bytes *as stored*, so a payload that is later encrypted or
shredded still verifies. Generation follows the recursive definitions of RFC 9162 §2.1
(MTH, PATH, PROOF); verification follows the iterative algorithms of §2.1.3.2 and §2.1.4.2,
so the two halves are written differently and check each other.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from uuid import UUID

HASH_SIZE = 32
LEAF_FORMAT = 1
EMPTY_ROOT = hashlib.sha256(b"").digest()
_HEAD = struct.Struct(">BQI16sQ")  # format, position, id length, id, version
_LENGTH = struct.Struct(">I")
_DIGEST_LENGTH = _LENGTH.pack(HASH_SIZE)
_sha256 = hashlib.sha256


def leaf_data(
    *,
    position: int,
    originator_id: UUID,
    originator_version: int,
    topic: str,
    recorded_at: str,
    state_sha256: bytes,
) -> bytes:
    """The leaf's d: fixed-width integers and length-prefixed fields, in a fixed order.

    0x01 ‖ u64 position ‖ u32 16 ‖ id (16 bytes) ‖ u64 version ‖ u32 len ‖ topic (UTF-8)
    ‖ u32 len ‖ recorded time (ASCII, `recorded_time`) ‖ u32 32 ‖ SHA-256(stored bytes).
    All integers are unsigned big-endian.
    """
    if len(state_sha256) != HASH_SIZE:
        msg = f"a SHA-256 has {HASH_SIZE} bytes, not {len(state_sha256)}"
        raise ValueError(msg)
    return _encode(position, originator_id, originator_version, topic, recorded_at, state_sha256)


def _encode(  # noqa: PLR0917 - positional on the hot path: ~100k calls a second
    position: int, originator_id: UUID, version: int, topic: str, recorded: str, digest: bytes
) -> bytes:
    return b"".join(_parts(position, originator_id, version, topic, recorded, digest))


def _parts(  # noqa: PLR0917 - positional on the hot path
    position: int, originator_id: UUID, version: int, topic: str, recorded: str, digest: bytes
) -> tuple[bytes, ...]:
    """d's pieces; a topic's length-prefixed bytes are made once (a log has few topics)."""
    prefixed = _TOPICS.get(topic)
    if prefixed is None:
        encoded = topic.encode()
        prefixed = _LENGTH.pack(len(encoded)) + encoded
        if len(_TOPICS) < _TOPICS_KEPT:
            _TOPICS[topic] = prefixed
    time_bytes = recorded.encode("ascii")
    return (
        _HEAD.pack(LEAF_FORMAT, position, 16, originator_id.bytes, version),
        prefixed,
        _LENGTH.pack(len(time_bytes)),
        time_bytes,
        _DIGEST_LENGTH,
        digest,
    )


_TOPICS: dict[str, bytes] = {}
_TOPICS_KEPT = 1_000  # a bundle could name any number of made-up topics


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def event_leaf(
    *,
    position: int,
    originator_id: UUID,
    originator_version: int,
    topic: str,
    recorded_at: str,
    state: bytes,
) -> bytes:
    """The leaf hash of one stored event: leaf_hash(leaf_data(..., SHA-256(state)))."""
    digest = _sha256(state).digest()
    parts = _parts(position, originator_id, originator_version, topic, recorded_at, digest)
    return _sha256(b"".join((b"\x00", *parts))).digest()


def recorded_time(value: datetime | None) -> str:
    """The leaf's recorded-time text: UTC RFC 3339 with microseconds, or '' when unknown.

    A naive time (never stored by this service) is written without the zone, not guessed.
    """
    if value is None:
        return ""
    if value.tzinfo is None:
        return value.isoformat(timespec="microseconds")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _split(width: int) -> int:
    """The largest power of two smaller than `width` (> 1): RFC 9162's k."""
    return 1 << ((width - 1).bit_length() - 1)


class Tree:
    """A tree over leaf hashes; answers for any size up to the number of leaves.

    Keeps the hash of every perfect, aligned subtree (about one node per leaf), so a root,
    path or proof for any earlier size costs O(log n) node hashes, not a rehash of the log.
    """

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [list(leaves)]
        self._build()

    def __len__(self) -> int:
        return len(self.levels[0])

    def extend(self, leaves: Iterable[bytes]) -> None:
        self.levels[0].extend(leaves)
        self._build()

    def _build(self) -> None:
        """Hash the perfect subtrees that the leaves added since the last build complete."""
        level = 0
        while len(self.levels[level]) >= 2:
            if level + 1 == len(self.levels):
                self.levels.append([])
            below, above = self.levels[level], self.levels[level + 1]
            above.extend(
                node_hash(below[2 * i], below[2 * i + 1])
                for i in range(len(above), len(below) // 2)
            )
            level += 1

    def leaf(self, index: int) -> bytes:
        return self.levels[0][index]

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[0:size]); the empty tree's root is SHA-256 of nothing."""
        size = len(self) if size is None else self._check(size)
        return self._hash(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]), bottom-up (RFC 9162 §2.1.3.1)."""
        size = len(self) if size is None else self._check(size)
        if not 0 <= index < size:
            msg = f"leaf {index} is not in a tree of size {size}"
            raise ValueError(msg)
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                path.append(self._hash(start + k, end))
                end = start + k
            else:
                path.append(self._hash(start, start + k))
                start += k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1); empty when the sizes agree."""
        new_size = len(self) if new_size is None else self._check(new_size)
        if not 0 < old_size <= new_size:
            msg = f"no consistency proof from size {old_size} to {new_size}"
            raise ValueError(msg)
        return self._subproof(old_size, 0, new_size, complete=True)

    def _subproof(self, m: int, start: int, end: int, *, complete: bool) -> list[bytes]:
        if m == end - start:
            return [] if complete else [self._hash(start, end)]
        k = _split(end - start)
        if m <= k:
            return [
                *self._subproof(m, start, start + k, complete=complete),
                self._hash(start + k, end),
            ]
        return [
            *self._subproof(m - k, start + k, end, complete=False),
            self._hash(start, start + k),
        ]

    def _hash(self, start: int, end: int) -> bytes:
        width = end - start
        level = width.bit_length() - 1
        if width == 1 << level and start % width == 0:
            return self.levels[level][start >> level]
        k = _split(width)
        return node_hash(self._hash(start, start + k), self._hash(start + k, end))

    def _check(self, size: int) -> int:
        if not 0 <= size <= len(self):
            msg = f"size {size} is beyond the {len(self)} leaves known"
            raise ValueError(msg)
        return size


def root(leaves: Sequence[bytes]) -> bytes:
    return Tree(leaves).root()


class Frontier:
    """The roots of the perfect subtrees that make up a tree of `size` leaves, left first.

    Enough to append leaves and compute the root without reading earlier leaves again:
    what an incrementally maintained index stores next to its tracking position.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            msg = f"a frontier of size {size} has {size.bit_count()} hashes, not {len(hashes)}"
            raise ValueError(msg)
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> None:
        hashes, size = self.hashes, self.size
        while size & 1:  # the leaf completes a perfect subtree: fold it into its left twin
            leaf = _sha256(b"\x01" + hashes.pop() + leaf).digest()
            size >>= 1
        hashes.append(leaf)
        self.size += 1

    def append_subtree(self, node: bytes, height: int) -> None:
        """Append the root of a perfect subtree of 2**height leaves, aligned: the size must
        be a multiple of 2**height (a `Span`'s nodes, in order, satisfy this)."""
        if self.size % (1 << height):
            msg = f"a subtree of height {height} does not start at leaf {self.size}"
            raise ValueError(msg)
        hashes, size = self.hashes, self.size >> height
        while size & 1:
            node = _sha256(b"\x01" + hashes.pop() + node).digest()
            size >>= 1
        hashes.append(node)
        self.size += 1 << height

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            result = node_hash(left, result)
        return result

    def to_bytes(self) -> bytes:
        return struct.pack(">Q", self.size) + b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        (size,) = struct.unpack_from(">Q", data)
        body = data[8:]
        return cls(size, [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)])


class Span:
    """Leaves `start`, `start + 1`, … folded into the aligned perfect subtrees that cover
    them, left first: what another process hashes of a later range of the log. Appended
    to the `Frontier` of the leaves before `start` (`Frontier.append_subtree`), in order,
    they give the frontier, hence the root, of the whole."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.size = 0
        self.nodes: list[tuple[int, int, bytes]] = []  # (first leaf, height, hash)

    def append(self, leaf: bytes) -> None:
        nodes, first, height = self.nodes, self.start + self.size, 0
        # A right child whose left twin is in the span: fold the two.
        while nodes and nodes[-1][1] == height and (first >> height) & 1:
            first, _, left = nodes.pop()
            leaf = _sha256(b"\x01" + left + leaf).digest()
            height += 1
        nodes.append((first, height, leaf))
        self.size += 1

    def subtrees(self) -> list[tuple[int, bytes]]:
        """(height, hash) of each subtree, left first."""
        return [(height, node) for _, height, node in self.nodes]


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does `path` prove `leaf` at `index` in the tree `root_hash`?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root_hash


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree `new_root` an append-only extension of `old_root`?"""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    if old_size == 0:
        return not path and old_root == EMPTY_ROOT
    if not path:
        return False
    nodes = list(path)
    if old_size & (old_size - 1) == 0:
        nodes.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0
