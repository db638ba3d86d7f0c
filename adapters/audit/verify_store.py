"""`eportfolio verify --store`: recompute the tree from the live store, check the checkpoints.

Every leaf is recomputed from the rows as they are now and the root at each issued
checkpoint's size compared with what was signed. Where one differs, the Merkle index's
stored leaves (what the checkpoints were computed from, and shown to be so by matching
their roots) name the first position that changed; without them, the span between two
checkpoints is the best that can be said.

With the blob store, every attachment the evidence refers to is hashed and compared with
the hash the (signed) event names: an altered file or a missing one is a finding; one that
went with an erased learner is not.
"""

from __future__ import annotations

from typing import NamedTuple
from uuid import UUID

from eventsourcing.persistence import Notification

from adapters.audit.findings import Report
from adapters.audit.merkle_index import IndexedLeaf, MerkleIndex
from adapters.audit.signing import NoteError, VerifierKey
from adapters.audit.verify_attachments import Attachments
from adapters.store.blobs import BlobStore
from domain.events import CheckpointIssued, Event
from service.checkpoints import (
    CheckpointBody,
    decoded,
    notification_leaf,
    parse_checkpoint_text,
)
from service.codec import Stored
from service.ledger import Ledger
from service.merkle import Tree


class LiveLeaf(NamedTuple):
    position: int
    stream: UUID
    version: int
    event_id: UUID | None
    hash: bytes


def verify_store(
    ledger: Ledger, index: MerkleIndex, key: VerifierKey, blobs: BlobStore | None = None
) -> Report:
    """Does the store still hold what every issued checkpoint signed, and every attachment
    the evidence names? Reads, never writes."""
    report = Report()
    live: list[LiveLeaf] = []
    signed: list[CheckpointBody] = []
    attachments = Attachments()
    for notification in ledger.notifications():
        event = decoded(ledger, notification)
        live.append(_leaf(notification, event))
        if isinstance(event, Event):
            attachments.note(notification.id, event)
        if isinstance(event, CheckpointIssued):
            body = _checkpoint(event, key, live[-1], report)
            if body is not None:
                signed.append(body)
        elif notification.topic == CheckpointIssued.TOPIC:
            report.fail("a checkpoint event whose stored bytes do not decode", live[-1])
    if blobs is not None:
        attachments.check(blobs.digest, "the blob store", report)
    tree = Tree(leaf.hash for leaf in live)
    broken = [c for c in signed if c.tree_size > len(live) or tree.root(c.tree_size) != c.root]
    if not broken:
        covered = signed[-1].tree_size if signed else 0
        report.ok(f"the store matches all {len(signed)} checkpoints; {covered} events covered")
        if len(live) > covered:
            report.ok(f"{len(live) - covered} later events are not covered by a checkpoint yet")
        return report
    first = broken[0]
    report.fail(
        f"the store no longer matches {len(broken)} of {len(signed)} checkpoints, "
        f"from the one of tree size {first.tree_size}"
    )
    _name_first_difference(live, index.leaves(), signed, first, report)
    return report


def _leaf(notification: Notification, event: Stored | None) -> LiveLeaf:
    event_id = event.event_id if isinstance(event, Event) else None
    return LiveLeaf(
        notification.id,
        UUID(str(notification.originator_id)),
        notification.originator_version,
        event_id,
        notification_leaf(notification, event),
    )


def _checkpoint(
    event: CheckpointIssued, key: VerifierKey, where: LiveLeaf, report: Report
) -> CheckpointBody | None:
    try:
        body = parse_checkpoint_text(key.open(event.signed_note))
    except (NoteError, ValueError) as error:
        report.fail(f"checkpoint (tree size {event.tree_size}): {error}", where)
        return None
    if (body.tree_size, body.root.hex()) != (event.tree_size, event.root_hash):
        report.fail("the checkpoint event's size or root is not what its signed note says", where)
    return body


def _name_first_difference(
    live: list[LiveLeaf],
    indexed: list[IndexedLeaf],
    signed: list[CheckpointBody],
    first: CheckpointBody,
    report: Report,
) -> None:
    size = first.tree_size
    index_tree = Tree(leaf.hash for leaf in indexed)
    if len(indexed) >= size and index_tree.root(size) == first.root:
        for i in range(size):
            was = indexed[i]
            now = live[i] if i < len(live) else None
            if now is not None and (now.position, now.hash) == (was.position, was.hash):
                continue
            if now is not None and now.position == was.position:
                what = f"the stored event differs from the one the checkpoint of size {size} signed"
                report.fail(f"first difference: {what}", now)
            elif now is None or now.position > was.position:
                what = f"the event that the checkpoint of size {size} signed here was deleted"
                report.fail(f"first difference: {what}", was.position)
            else:
                report.fail("first difference: an event was inserted into the signed log", now)
            return
    earlier = [c.tree_size for c in signed if c.tree_size < size]
    start = live[earlier[-1]].position if earlier and earlier[-1] < len(live) else 1
    end = live[min(size, len(live)) - 1].position if live else 0
    report.fail(
        f"the first difference is between positions {start} and {end} (the Merkle index does "
        "not match the checkpoints, so it cannot name the event)",
        position=start,
    )
