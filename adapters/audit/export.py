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
import io
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, NamedTuple
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification

from adapters.audit import bundle as b
from adapters.audit.bundle_io import CHUNK, ZipOut, proofs_lines
from adapters.audit.bundle_summary import render_summary
from adapters.audit.export_summary import ByCentre, write_pages
from adapters.audit.merkle_index import MerkleIndex
from adapters.audit.signing import SigningKey
from adapters.store.blobs import BlobAltered, BlobStore
from domain.errors import NotFound
from domain.events import CheckpointIssued, Event, EvidenceSubmitted, LearnerEnrolled
from service.checkpoints import checkpoints, decoded, recorded_text
from service.codec import Stored
from service.ledger import Ledger

_README = """This is an eportfolio audit bundle ({format}).

  manifest.note        what the bundle holds, signed by the log's key (C2SP signed note)
  public-key.txt       the log's verifier key: compare it with the one the centre publishes
  checkpoints.json     every signed checkpoint (C2SP tlog-checkpoint notes)
  events/stored.json   each event exactly as stored: columns and base64 of its bytes
  events/decoded.json  the same events decoded, for reading
  proofs.json          inclusion/consistency proofs (RFC 9162), or every leaf hash
  summary.html         the audit pack: coverage, sufficiency, decisions, sampling
                       (of the whole log: an index of summary/, a page per centre)
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


class Written(NamedTuple):
    manifest: b.Manifest
    events: int


Progress = Callable[[int, int], None]  # (events scanned, events the checkpoint covers)
_EVERY = 2_000
_READ = 5_000  # stored events read at a time


def export_bundle(
    ledger: Ledger,
    index: MerkleIndex,
    key: SigningKey,
    *,
    centre: UUID | None = None,
    portfolio: UUID | None = None,
    blobs: BlobStore | None = None,
) -> Export:
    """The bundle (zip bytes) of the scope, cut at the latest checkpoint (see `write_bundle`).

    Its pages are made in this process (`jobs=1`): this is what the server answers with,
    and a server starts no processes for a request."""
    buffer = io.BytesIO()
    written = write_bundle(
        buffer, ledger, index, key, centre=centre, portfolio=portfolio, blobs=blobs, jobs=1
    )
    return Export(data=buffer.getvalue(), manifest=written.manifest, events=written.events)


def write_bundle(
    out: IO[bytes],
    ledger: Ledger,
    index: MerkleIndex,
    key: SigningKey,
    *,
    centre: UUID | None = None,
    portfolio: UUID | None = None,
    blobs: BlobStore | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
) -> Written:
    """Write the bundle of the scope, cut at the latest checkpoint, to `out` as it is made.

    The events go into the zip one at a time (the decoded view through a temporary file),
    every file hashed as it is written, the signed manifest last. With `blobs`, the
    attachments of the exported evidence go in too (those of an erased learner are gone,
    and left out). A partial export's summary page is made from the scope's events held at
    once; a whole-log export's pages (one per centre) by `jobs` processes (None: one per
    core, up to two, for a log of many centres; see `write_pages`).
    """
    issued = checkpoints(ledger)
    if not issued:
        msg = "no checkpoint has been issued yet: run `eportfolio checkpoint` first"
        raise ExportError(msg)
    latest = issued[-1]
    index.catch_up(ledger)
    size = latest.tree_size
    last = index.position_of_leaf(size - 1) if size else 0
    scope, streams = _scope(ledger, centre, portfolio)
    zout = ZipOut(out)
    try:
        zout.add(b.README, _README.format(format=b.FORMAT).encode())
        zout.add(b.PUBLIC_KEY, (key.verifier.to_text() + "\n").encode())
        zout.add(b.CHECKPOINTS, b.encode_json([_entry(c) for c in issued]))
        leaf_at = (
            None
            if streams is None
            else {leaf.position: leaf.leaf_index for leaf in index.iter_leaves(size)}
        )
        rows = _Rows(ByCentre() if streams is None else None)
        try:
            with tempfile.TemporaryFile() as spool:
                with zout.member(b.STORED) as write:
                    _rows(ledger, last, streams, leaf_at, write, spool.write, progress, size, rows)
                spool.seek(0)
                with zout.member(b.DECODED) as write:
                    while chunk := spool.read(CHUNK):
                        write(chunk)
            with zout.member(b.PROOFS) as write:
                _proofs(index, latest, issued, rows.proven, full=streams is None, write=write)
            if blobs is not None:
                _attachments(rows.attachments, blobs, zout)
            vkey = key.verifier.to_text()
            if rows.by_centre is not None:
                summary = write_pages(
                    rows.by_centre,
                    zout.add,
                    checkpoint=latest,
                    covered_up_to=last,
                    vkey=vkey,
                    jobs=jobs,
                )
            else:
                summary = render_summary(
                    rows.events, scope=scope, checkpoint=latest, covered_up_to=last, vkey=vkey
                ).encode()
            zout.add(b.SUMMARY, summary)
        finally:
            if rows.by_centre is not None:
                rows.by_centre.close()
        manifest = b.Manifest(
            origin=latest.origin,
            tree_size=size,
            root_hash=latest.root_hash,
            scope=scope,
            streams=rows.lengths if streams is not None else {},
            files=dict(zout.digests),
            attachments=blobs is not None,
        )
        zout.add(b.MANIFEST, key.sign(b.manifest_text(manifest)).encode())
    finally:
        zout.close()
    return Written(manifest=manifest, events=rows.count)


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


def _covered(ledger: Ledger, last: int) -> Iterator[Notification]:
    """The stored events up to the checkpoint's last leaf, as the store holds them now."""
    for notification in ledger.notifications(batch=_READ):
        if notification.id > last:
            return
        yield notification


class _Rows:
    """What the pass over the events keeps for the files written after it."""

    def __init__(self, by_centre: ByCentre | None) -> None:
        self.count = 0
        self.by_centre = by_centre  # whole-log exports: the summary's events, on disk
        self.events: list[tuple[int, Event]] = []  # partial exports: the summary's events
        self.lengths: dict[UUID, int] = {}
        self.proven: list[tuple[int, int]] = []  # partial exports: (leaf index, position)
        self.attachments: dict[str, UUID] = {}  # SHA-256 -> the first evidence naming it


# Fields in their declared order: a view's event then reads as its stored bytes, where it
# has nothing sealed, and the verifier can compare the two as bytes.
_ENCODER = msgspec.json.Encoder()


class _DecodedOut(msgspec.Struct, frozen=True, kw_only=True):
    """`b.DecodedRow` as written: its event the JSON already encoded once (the same bytes
    `to_builtins` then encoding make), kept for the summary's pages too."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    event: msgspec.Raw | None


def _rows(  # noqa: PLR0917 - one pass writes both files
    ledger: Ledger,
    last: int,
    streams: set[UUID] | None,
    leaf_at: dict[int, int] | None,
    stored: Callable[[bytes], object],
    decoded_view: Callable[[bytes], object],
    progress: Progress | None,
    size: int,
    found: _Rows,
) -> None:
    """Write the scope's events in log order, each as stored and decoded, one a line;
    a centre's portfolios join the scope at their enrolment."""
    centre_scope = streams is not None and len(streams) == 1
    encode = _ENCODER.encode
    stored(b"[")
    decoded_view(b"[")
    separator = b"\n"
    for scanned, notification in enumerate(_covered(ledger, last), start=1):
        if progress is not None and scanned % _EVERY == 0:
            progress(scanned, size)
        originator = notification.originator_id
        stream = originator if isinstance(originator, UUID) else UUID(str(originator))
        event = decoded(ledger, notification)
        if centre_scope and streams is not None and _enrolled_at(event, streams):
            streams.add(stream)
        if streams is not None and stream not in streams:
            continue
        if streams is not None:  # a whole-log export states no stream lengths
            found.lengths[stream] = notification.originator_version
        leaf_index = _leaf_index(leaf_at, notification.id, scanned - 1)
        if leaf_at is not None and leaf_index >= 0:
            found.proven.append((leaf_index, notification.id))
        row = _stored(notification, event, stream, leaf_index)
        body = encode(event) if event is not None else None
        view = _DecodedOut(
            position=notification.id,
            originator_id=stream,
            originator_version=notification.originator_version,
            topic=notification.topic,
            event=msgspec.Raw(body) if body is not None else None,
        )
        stored(separator + encode(row))
        decoded_view(separator + encode(view))
        separator = b",\n"
        found.count += 1
        if isinstance(event, EvidenceSubmitted):
            for attachment in event.attachments:
                found.attachments.setdefault(attachment.sha256, event.evidence_id)
        if found.by_centre is not None and isinstance(event, Event) and body is not None:
            found.by_centre.add(notification.id, event, body)
        elif isinstance(event, Event):
            found.events.append((notification.id, event))
    stored(b"\n]\n")
    decoded_view(b"\n]\n")
    if progress is not None:
        progress(size, size)


def _leaf_index(leaf_at: dict[int, int] | None, position: int, scanned: int) -> int:
    """The event's leaf index: its place in the log (whole exports), else as indexed."""
    return scanned if leaf_at is None else leaf_at.get(position, -1)


def _attachments(named: dict[str, UUID], blobs: BlobStore, zout: ZipOut) -> None:
    """Every attachment the events name that is still stored, one at a time."""
    for sha256, evidence in named.items():
        try:
            data = blobs.read(sha256)
        except BlobAltered as error:
            msg = f"{error} (evidence {evidence}); nothing was exported"
            raise ExportError(msg, error.rule) from None
        if data is not None:
            zout.add(b.ATTACHMENTS + sha256, data)


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
    index: MerkleIndex,
    latest: CheckpointIssued,
    issued: list[CheckpointIssued],
    proven: list[tuple[int, int]],
    *,
    full: bool,
    write: Callable[[bytes], None],
) -> None:
    """Every leaf (whole exports, read a page at a time), or an inclusion proof per event
    and a consistency proof per earlier checkpoint (partial exports)."""
    size = latest.tree_size
    head = b.Proofs(tree_size=size, root_hash=latest.root_hash)
    encode = _ENCODER.encode
    if full:
        leaves = (
            encode(b.LeafEntry(position=leaf.position, hash=leaf.hash.hex()))
            for leaf in index.iter_leaves(size)
        )
        proofs_lines(head, (), leaves, write)
        return
    tree = index.tree(size)
    inclusion = (
        encode(
            b.InclusionEntry(
                leaf_index=leaf_index,
                position=position,
                path=[node.hex() for node in tree.inclusion_proof(leaf_index, size)],
            )
        )
        for leaf_index, position in proven
        if 0 <= leaf_index < size
    )
    sizes = sorted({c.tree_size for c in issued if 0 < c.tree_size < size})
    consistency = [
        b.ConsistencyEntry(
            old_size=old,
            new_size=size,
            path=[node.hex() for node in tree.consistency_proof(old, size)],
        )
        for old in sizes
    ]
    head = b.Proofs(tree_size=size, root_hash=latest.root_hash, consistency=consistency)
    proofs_lines(head, inclusion, (), write)


def _entry(checkpoint: CheckpointIssued) -> b.CheckpointEntry:
    return b.CheckpointEntry(
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash,
        reason=checkpoint.reason,
        issued_at=checkpoint.recorded_at.isoformat(),
        note=checkpoint.signed_note,
    )
