"""The Merkle index: every leaf hash by leaf index, kept up with the log like a view.

Stored in a view store (`view-merkle.sqlite`, or `merkle_docs`/`merkle_tracking` on
PostgreSQL): one `leaf` document per leaf (its position and hash) and one `head`
document with the frontier (the roots of the tree's perfect subtrees), committed with the
tracking position in one transaction. Catching up hashes only the new events, and the
root at the head costs O(log n) — so a checkpoint never rehashes the log. The stored
leaves are what checkpoints were computed from: `verify --store` compares the live store
with them to name the first position that changed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import NamedTuple

from eventsourcing.persistence import Notification

from adapters.config import Config
from adapters.store.views import Doc, TrackingConflict, ViewStore, open_view_store
from service.checkpoints import TreeHead, leaf_of, notification_leaf
from service.codec import Stored
from service.ledger import Ledger
from service.merkle import HASH_SIZE, Frontier, Tree

NAME = "merkle"
LEAF, HEAD = "leaf", "head"
_POSITION = struct.Struct(">Q")


class IndexedLeaf(NamedTuple):
    leaf_index: int
    position: int
    hash: bytes


def _leaf_key(index: int) -> str:
    return f"{index:012d}"


class MerkleIndex:
    """Implements `service.checkpoints.MerkleLog`; owns (and closes) its view store."""

    def __init__(self, store: ViewStore, *, batch_size: int = 5_000) -> None:
        self.store = store
        self.batch_size = batch_size

    def head(self) -> TreeHead:
        """The tree as indexed so far, without reading the log."""
        position, frontier = self._frontier()
        return TreeHead(size=frontier.size, root=frontier.root(), position=position)

    def catch_up(self, ledger: Ledger) -> TreeHead:
        """Index every event stored after the head, a batch per transaction."""
        while True:
            start, frontier = self._frontier()
            page = list(
                islice(ledger.notifications(after=start, batch=self.batch_size), self.batch_size)
            )
            if not page:
                return TreeHead(size=frontier.size, root=frontier.root(), position=start)
            leaves = [leaf_of(ledger, notification) for notification in page]
            self._commit(start, frontier, page, leaves)  # lost to another process: read again

    def extend(
        self, after: int, page: Sequence[Notification], events: Sequence[Stored | None]
    ) -> bool:
        """Index what another reader of the log read after `after` and decoded (as
        `decoded` does: None where it did not), from the head on: a rebuild of the views
        reads the log once for both. False, indexing nothing, if the page ends before the
        head or starts after it (`catch_up` then reads for itself), or another process
        indexed it first.
        """
        if len(page) != len(events):
            msg = f"{len(page)} notifications but {len(events)} events"
            raise ValueError(msg)
        start, frontier = self._frontier()
        if not page or not after <= start < page[-1].id:
            return False
        new = [(n, event) for n, event in zip(page, events, strict=True) if n.id > start]
        leaves = [notification_leaf(n, event) for n, event in new]
        return self._commit(start, frontier, [n for n, _ in new], leaves)

    def _commit(
        self, start: int, frontier: Frontier, page: Sequence[Notification], leaves: list[bytes]
    ) -> bool:
        """The page's leaves and the new head in one transaction, if the head is still at
        `start`; False if another process moved it first."""
        batch = self.store.begin(start)
        for notification, leaf in zip(page, leaves, strict=True):
            batch.put(LEAF, _leaf_key(frontier.size), _POSITION.pack(notification.id) + leaf)
            frontier.append(leaf)
        batch.put(HEAD, HEAD, _POSITION.pack(page[-1].id) + frontier.to_bytes())
        try:
            batch.commit(page[-1].id)
        except TrackingConflict:
            return False
        return True

    def leaves(self, size: int | None = None, page: int = 10_000) -> list[IndexedLeaf]:
        """The first `size` leaves (all by default), in leaf order."""
        return list(self.iter_leaves(size, page))

    def iter_leaves(self, size: int | None = None, page: int = 10_000) -> Iterator[IndexedLeaf]:
        """The first `size` leaves, a page at a time (an export of the whole log)."""
        limit = self.head().size if size is None else size
        read = 0
        after = ""
        while read < limit:
            docs = self.store.list(LEAF, after_key=after, limit=min(page, limit - read))
            if not docs:
                break
            for doc in docs:
                yield _leaf(doc)
            read += len(docs)
            after = docs[-1].key

    def tree(self, size: int | None = None) -> Tree:
        return Tree(leaf.hash for leaf in self.leaves(size))

    def position_of_leaf(self, index: int) -> int:
        body = self.store.get(LEAF, _leaf_key(index))
        if body is None:
            msg = f"leaf {index} is not indexed"
            raise LookupError(msg)
        return int(_POSITION.unpack_from(body)[0])

    def drop(self) -> None:
        """Forget every leaf; the next catch-up rehashes the log from the start."""
        self.store.drop()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> MerkleIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _frontier(self) -> tuple[int, Frontier]:
        body = self.store.get(HEAD, HEAD)
        if body is None:
            return self.store.position(), Frontier()
        return int(_POSITION.unpack_from(body)[0]), Frontier.from_bytes(body[8:])


def _leaf(doc: Doc) -> IndexedLeaf:
    body = doc.body
    if len(body) != 8 + HASH_SIZE:
        msg = f"merkle index: leaf {doc.key} is {len(body)} bytes, not {8 + HASH_SIZE}"
        raise ValueError(msg)
    return IndexedLeaf(int(doc.key), int(_POSITION.unpack_from(body)[0]), body[8:])


def open_merkle_index(config: Config) -> MerkleIndex:
    return MerkleIndex(open_view_store(config, NAME))
