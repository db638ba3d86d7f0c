"""Export bundles for an EV or auditor: events as stored, proofs, checkpoints, summary.

A full export (no scope) holds every event the latest checkpoint covers, so a verifier
recomputes every leaf and the root; it also lists the indexed leaf hashes, so the verifier
can name *which* event differs. A partial export (a centre, or a portfolio with its centre)
holds those streams' events with an RFC 9162 inclusion proof each, and consistency proofs
from every earlier checkpoint to the latest. Either way a signed manifest states the scope,
each exported stream's length and every file's hash. With a blob store (opt-in) the
bundle also carries every attachment the exported evidence refers to, checked against its
hash as it is read: an attachment altered on disk stops the export. `export_bundle` is what
the CLI and GET /audit/export call.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import NamedTuple
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification

from adapters.audit import bundle as b
from adapters.audit.bundle_summary import render_summary
from adapters.audit.merkle_index import IndexedLeaf, MerkleIndex
from adapters.audit.signing import SigningKey
from adapters.store.blobs import BlobAltered, BlobStore
from domain.errors import NotFound
from domain.events import CheckpointIssued, Event, EvidenceSubmitted, LearnerEnrolled
from service.checkpoints import checkpoints, decoded, recorded_text
from service.codec import Stored
from service.ledger import Ledger
from service.merkle import Tree

_README = """This is an eportfolio audit bundle ({format}).

  manifest.note        what the bundle holds, signed by the log's key (C2SP signed note)
  public-key.txt       the log's verifier key: compare it with the one the centre publishes
  checkpoints.json     every signed checkpoint (C2SP tlog-checkpoint notes)
  events/stored.json   each event exactly as stored: columns and base64 of its bytes
  events/decoded.json  the same events decoded, for reading
  proofs.json          inclusion/consistency proofs (RFC 9162), or every leaf hash
  summary.html         the audit pack: coverage, sufficiency, decisions, sampling
  attachments/         the evidence's files, each named by its SHA-256 (if exported)

Check it offline with: eportfolio verify BUNDLE.zip [--trusted-checkpoint FILE]
"""


class ExportError(ValueError):
    """The export cannot be made (no checkpoint yet, an attachment altered on disk)."""

    def __init__(self, message: str, rule: str = "no_checkpoint") -> None:
        super().__init__(message)
        self.rule = rule


class Export(msgspec.Struct, frozen=True, kw_only=True):
    data: bytes
    manifest: b.Manifest
    events: int


def export_bundle(
    ledger: Ledger,
    index: MerkleIndex,
    key: SigningKey,
    *,
    centre: UUID | None = None,
    portfolio: UUID | None = None,
    blobs: BlobStore | None = None,
) -> Export:
    """The bundle (zip bytes) of the scope, cut at the latest checkpoint.

    With `blobs`, the attachments of the exported evidence go in too (those of an erased
    learner are gone, and left out).
    """
    issued = checkpoints(ledger)
    if not issued:
        msg = "no checkpoint has been issued yet: run `eportfolio checkpoint` first"
        raise ExportError(msg)
    latest = issued[-1]
    index.catch_up(ledger)
    leaves = index.leaves(latest.tree_size)
    scope, streams = _scope(ledger, centre, portfolio)
    rows = _rows(ledger, leaves, streams)
    proofs = _proofs(leaves, latest, issued, rows.stored, full=streams is None)
    files = {
        b.README: _README.format(format=b.FORMAT).encode(),
        b.PUBLIC_KEY: (key.verifier.to_text() + "\n").encode(),
        b.CHECKPOINTS: b.encode_json([_entry(c) for c in issued]),
        b.STORED: b.encode_json(rows.stored),
        b.DECODED: b.encode_json(rows.decoded),
        b.PROOFS: b.encode_json(proofs),
        b.SUMMARY: render_summary(
            rows.events,
            scope=scope,
            checkpoint=latest,
            covered_up_to=leaves[-1].position if leaves else 0,
            vkey=key.verifier.to_text(),
        ).encode(),
    }
    if blobs is not None:
        files |= _attachments(rows.events, blobs)
    manifest = b.Manifest(
        origin=latest.origin,
        tree_size=latest.tree_size,
        root_hash=latest.root_hash,
        scope=scope,
        streams=rows.lengths if streams is not None else {},
        files={name: b.sha256_hex(data) for name, data in files.items()},
        attachments=blobs is not None,
    )
    files[b.MANIFEST] = key.sign(b.manifest_text(manifest)).encode()
    return Export(data=b.write_zip(files), manifest=manifest, events=len(rows.stored))


def _scope(
    ledger: Ledger, centre: UUID | None, portfolio: UUID | None
) -> tuple[str, set[UUID] | None]:
    """A name for the scope and its streams (None: everything); centres grow during the scan."""
    if portfolio is not None:
        enrolment = next(iter(ledger.portfolio_events(portfolio)), None)
        if not isinstance(enrolment, LearnerEnrolled):
            raise NotFound(f"no portfolio {portfolio}", field="portfolio_id")
        if centre is not None and centre != enrolment.centre_id:
            raise NotFound(f"portfolio {portfolio} is not at centre {centre}", field="portfolio_id")
        return f"portfolio {portfolio}", {portfolio, enrolment.centre_id}
    if centre is not None:
        if not ledger.centre_events(centre):
            raise NotFound(f"no centre {centre}", field="centre_id")
        return f"centre {centre}", {centre}
    return "all", None


def _covered(ledger: Ledger, leaves: list[IndexedLeaf]) -> Iterator[Notification]:
    """The stored events up to the checkpoint's last leaf, as the store holds them now."""
    last = leaves[-1].position if leaves else 0
    for notification in ledger.notifications():
        if notification.id > last:
            return
        yield notification


class _Rows(NamedTuple):
    stored: list[b.StoredRow]
    decoded: list[b.DecodedRow]
    events: list[tuple[int, Event]]
    lengths: dict[UUID, int]


def _rows(ledger: Ledger, leaves: list[IndexedLeaf], streams: set[UUID] | None) -> _Rows:
    """The scope's events in log order; a centre's portfolios join it at their enrolment."""
    leaf_at = {leaf.position: leaf.leaf_index for leaf in leaves}
    centre_scope = streams is not None and len(streams) == 1
    found = _Rows([], [], [], {})
    for count, notification in enumerate(_covered(ledger, leaves)):
        stream = UUID(str(notification.originator_id))
        event = decoded(ledger, notification)
        if centre_scope and streams is not None and _enrolled_at(event, streams):
            streams.add(stream)
        if streams is not None and stream not in streams:
            continue
        found.lengths[stream] = notification.originator_version
        leaf_index = count if streams is None else leaf_at.get(notification.id, -1)
        found.stored.append(_stored(notification, event, stream, leaf_index))
        found.decoded.append(
            b.DecodedRow(
                position=notification.id,
                originator_id=stream,
                originator_version=notification.originator_version,
                topic=notification.topic,
                event=msgspec.to_builtins(event) if event is not None else None,
            )
        )
        if isinstance(event, Event):
            found.events.append((notification.id, event))
    return found


def _attachments(events: list[tuple[int, Event]], blobs: BlobStore) -> dict[str, bytes]:
    """Every attachment the events refer to that is still stored, by its bundle name."""
    found: dict[str, bytes] = {}
    for _, event in events:
        if not isinstance(event, EvidenceSubmitted):
            continue
        for attachment in event.attachments:
            name = b.ATTACHMENTS + attachment.sha256
            if name in found:
                continue
            try:
                data = blobs.read(attachment.sha256)
            except BlobAltered as error:
                msg = f"{error} (evidence {event.evidence_id}); nothing was exported"
                raise ExportError(msg, error.rule) from None
            if data is not None:
                found[name] = data
    return found


def _enrolled_at(event: Stored | None, centres: set[UUID]) -> bool:
    return isinstance(event, LearnerEnrolled) and event.centre_id in centres


def _stored(n: Notification, event: Stored | None, stream: UUID, leaf_index: int) -> b.StoredRow:
    return b.StoredRow(
        position=n.id,
        leaf_index=leaf_index,
        originator_id=stream,
        originator_version=n.originator_version,
        topic=n.topic,
        recorded_at=recorded_text(event),
        state=base64.b64encode(n.state).decode(),
    )


def _proofs(
    leaves: list[IndexedLeaf],
    latest: CheckpointIssued,
    issued: list[CheckpointIssued],
    rows: list[b.StoredRow],
    *,
    full: bool,
) -> b.Proofs:
    size = latest.tree_size
    if full:
        return b.Proofs(
            tree_size=size,
            root_hash=latest.root_hash,
            leaves=[b.LeafEntry(position=leaf.position, hash=leaf.hash.hex()) for leaf in leaves],
        )
    tree = Tree(leaf.hash for leaf in leaves)
    inclusion = [
        b.InclusionEntry(
            leaf_index=row.leaf_index,
            position=row.position,
            path=[node.hex() for node in tree.inclusion_proof(row.leaf_index, size)],
        )
        for row in rows
        if 0 <= row.leaf_index < size
    ]
    sizes = sorted({c.tree_size for c in issued if 0 < c.tree_size < size})
    consistency = [
        b.ConsistencyEntry(
            old_size=old,
            new_size=size,
            path=[node.hex() for node in tree.consistency_proof(old, size)],
        )
        for old in sizes
    ]
    return b.Proofs(
        tree_size=size, root_hash=latest.root_hash, inclusion=inclusion, consistency=consistency
    )


def _entry(checkpoint: CheckpointIssued) -> b.CheckpointEntry:
    return b.CheckpointEntry(
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash,
        reason=checkpoint.reason,
        issued_at=checkpoint.recorded_at.isoformat(),
        note=checkpoint.signed_note,
    )
