"""The audit bundle's format: what files a zip holds and what each one says.

Shared by the exporter and the offline verifier, so neither can drift from the other.
Every file is deterministic (rows in log order, fixed zip timestamps), so exporting the
same checkpoint twice gives the same bytes. `manifest.note` is a signed note listing the
scope, the tree it was cut at, each exported stream's length and every file's SHA-256:
what makes a partial export's completeness (nothing cut off a stream's end) checkable.
An export may carry the evidence's attachments (`attachments/<sha256>`, opt-in); its
manifest then says `attachments included`, so a missing one can be told from one left out.
A verifier that predates the line ignores it, and still checks those files' hashes.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import msgspec

FORMAT = "eportfolio-audit-bundle/1"
MANIFEST = "manifest.note"
PUBLIC_KEY = "public-key.txt"
CHECKPOINTS = "checkpoints.json"
STORED = "events/stored.json"
DECODED = "events/decoded.json"
PROOFS = "proofs.json"
SUMMARY = "summary.html"
README = "README.txt"
ATTACHMENTS = "attachments/"  # + the SHA-256 of the file, which is also its content's hash
_EPOCH = (1980, 1, 1, 0, 0, 0)


class StoredRow(msgspec.Struct, frozen=True, kw_only=True):
    """One stored event, exactly as stored: its columns and base64 of its state bytes."""

    position: int
    leaf_index: int
    originator_id: UUID
    originator_version: int
    topic: str
    recorded_at: str  # the leaf's recorded-time text ('' when the event has none)
    state: str


class DecodedRow(msgspec.Struct, frozen=True, kw_only=True):
    """The same event decoded, for people; checked against the stored bytes."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    event: dict[str, Any] | None  # None when the exporter could not decode it


class CheckpointEntry(msgspec.Struct, frozen=True, kw_only=True):
    tree_size: int
    root_hash: str
    reason: str
    issued_at: str
    note: str


class LeafEntry(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    hash: str  # hex


class InclusionEntry(msgspec.Struct, frozen=True, kw_only=True):
    leaf_index: int
    position: int
    path: list[str]  # hex, bottom-up (RFC 9162 PATH)


class ConsistencyEntry(msgspec.Struct, frozen=True, kw_only=True):
    old_size: int
    new_size: int
    path: list[str]  # hex (RFC 9162 PROOF)


class Proofs(msgspec.Struct, frozen=True, kw_only=True):
    tree_size: int
    root_hash: str
    inclusion: list[InclusionEntry] = []  # partial exports: one per exported event
    consistency: list[ConsistencyEntry] = []  # partial exports: each checkpoint to the last
    leaves: list[LeafEntry] = []  # full exports: every leaf, to name what differs


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    origin: str
    tree_size: int
    root_hash: str
    scope: str  # "all", "centre <id>" or "portfolio <id>"
    streams: dict[UUID, int]  # partial exports: each exported stream's length at tree_size
    files: dict[str, str]  # name -> SHA-256 hex
    attachments: bool = False  # the evidence's attachments are in the bundle

    @property
    def full(self) -> bool:
        return self.scope == "all"


def manifest_text(manifest: Manifest) -> str:
    """The manifest as note text: one fact per line, in a fixed order."""
    lines = [
        FORMAT,
        f"origin {manifest.origin}",
        f"tree {manifest.tree_size} {manifest.root_hash}",
        f"scope {manifest.scope}",
        *(["attachments included"] if manifest.attachments else []),
        *(f"stream {stream} {length}" for stream, length in sorted(manifest.streams.items())),
        *(f"file {digest} {name}" for name, digest in sorted(manifest.files.items())),
    ]
    return "\n".join(lines) + "\n"


def parse_manifest(text: str) -> Manifest:
    lines = text.rstrip("\n").split("\n")
    if lines[0] != FORMAT:
        msg = f"the manifest is not {FORMAT} (it starts {lines[0][:40]!r})"
        raise ValueError(msg)
    fields: dict[str, str] = {}
    streams: dict[UUID, int] = {}
    files: dict[str, str] = {}
    try:
        for line in lines[1:]:
            word, _, rest = line.partition(" ")
            if word == "stream":
                stream, length = rest.split(" ")
                streams[UUID(stream)] = int(length)
            elif word == "file":
                digest, name = rest.split(" ", 1)
                files[name] = digest
            else:
                fields[word] = rest
        size, root = fields["tree"].split(" ")
        return Manifest(
            origin=fields["origin"],
            tree_size=int(size),
            root_hash=root,
            scope=fields["scope"],
            streams=streams,
            files=files,
            attachments=fields.get("attachments") == "included",
        )
    except (KeyError, ValueError) as error:
        msg = f"the manifest is malformed: {error}"
        raise ValueError(msg) from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_json(value: object) -> bytes:
    """Indented JSON, so a person can read it and a diff can show a change."""
    return msgspec.json.format(msgspec.json.encode(value, order="deterministic"), indent=1)


def write_zip(files: Mapping[str, bytes]) -> bytes:
    """A zip of `files` in name order with fixed timestamps: same input, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
