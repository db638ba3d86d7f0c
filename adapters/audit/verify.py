"""The offline verifier: checks an audit bundle with no server and no database.

It trusts nothing in the bundle but the key (or a key or checkpoint the caller trusts):
signatures on the manifest and every checkpoint; every leaf recomputed from the stored
bytes and columns, then the root (full export) or each inclusion proof (partial export);
consistency between checkpoints and with a trusted earlier one; each stream's versions
running 1, 2, 3… with nothing cut off; the decoded view against the stored bytes; and,
when the bundle carries attachments, each one against the hash its evidence event names.
Every finding says what failed and where (position, event id, stream), in plain words.
"""

from __future__ import annotations

import difflib
import io
import zipfile
from collections.abc import Mapping
from typing import TypeVar

import msgspec

from adapters.audit import bundle as b
from adapters.audit.findings import Problem, Report
from adapters.audit.signing import NoteError, SigningKeyError, VerifierKey, split_note
from adapters.audit.verify_attachments import Attachments
from adapters.audit.verify_rows import Row, check_decoded, check_streams, load_rows
from domain.events import Event
from service.checkpoints import CheckpointBody, parse_checkpoint_text
from service.merkle import Tree, verify_consistency, verify_inclusion

__all__ = ["Problem", "Report", "verify_bundle"]
T = TypeVar("T")
MAX_UNZIPPED = 8 << 30  # a bundle is read into memory; refuse a zip bomb
REQUIRED = (b.MANIFEST, b.PUBLIC_KEY, b.CHECKPOINTS, b.STORED, b.DECODED, b.PROOFS)


def verify_bundle(
    data: bytes, *, trusted_checkpoint: str | None = None, trusted_key: str | None = None
) -> Report:
    """Everything that does and does not verify in the bundle `data` (zip bytes)."""
    report = Report()
    files = _open(data, report)
    key = _key(files, trusted_key, report) if files is not None else None
    if files is None or key is None:
        return report
    manifest = _manifest(files, key, report)
    verified = _checkpoints(files, key, report)
    if manifest is None:
        return report
    target = _target(manifest, verified, report)
    loaded = load_rows(files, report)
    rows = loaded.rows if loaded is not None else None
    proofs = _decode(files, b.PROOFS, b.Proofs, report)
    if loaded is not None and rows is not None:
        check_decoded(loaded, report)
        check_streams(rows, None if manifest.full else manifest.streams, report)
        _check_attachments(rows, files, manifest, report)
        if proofs is not None and manifest.full:
            _check_full(rows, proofs, verified, target, report)
        elif proofs is not None:
            _check_partial(rows, proofs, verified, target, report)
    if trusted_checkpoint is not None:
        _check_trusted(
            trusted_checkpoint,
            key,
            rows=rows,
            proofs=proofs,
            full=manifest.full,
            target=target,
            report=report,
        )
    return report


def _open(data: bytes, report: Report) -> dict[str, bytes] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # A folder entry holds nothing: `zip -r` of an unzipped bundle writes them.
            entries = [i for i in archive.infolist() if not (i.is_dir() and i.file_size == 0)]
            names = [info.filename for info in entries]
            if sum(info.file_size for info in entries) > MAX_UNZIPPED:
                report.fail(f"the bundle unzips to more than {MAX_UNZIPPED:,} bytes: not read")
                return None
            files = {name: archive.read(name) for name in names}
    except (zipfile.BadZipFile, OSError) as error:
        report.fail(f"the bundle is not a readable zip file: {error}")
        return None
    if len(files) != len(names):
        report.fail("the zip holds two files under one name: one could hide the other")
    missing = [name for name in REQUIRED if name not in files]
    for name in missing:
        report.fail(f"{name} is missing from the bundle")
    return None if missing else files


def _key(files: Mapping[str, bytes], trusted: str | None, report: Report) -> VerifierKey | None:
    bundled: VerifierKey | None = None
    try:
        bundled = VerifierKey.from_text(files[b.PUBLIC_KEY].decode())
    except (SigningKeyError, UnicodeDecodeError, ValueError) as error:
        report.fail(f"{b.PUBLIC_KEY} is not a verifier key: {error}")
    if trusted is None:
        return bundled
    try:
        key = VerifierKey.from_text(trusted)
    except (SigningKeyError, ValueError) as error:
        report.fail(f"the trusted key is not a verifier key: {error}")
        return None
    if bundled is None or bundled.to_text() != key.to_text():
        shown = bundled.to_text() if bundled else "unreadable"
        report.fail(f"{b.PUBLIC_KEY} ({shown}) is not the trusted key ({key.to_text()})")
    return key


def _manifest(files: Mapping[str, bytes], key: VerifierKey, report: Report) -> b.Manifest | None:
    note = files[b.MANIFEST].decode(errors="replace")
    try:
        text = key.open(note)
        report.ok(f"the manifest is signed by {key.name}+{key.key_id}")
    except NoteError as error:
        report.fail(f"{b.MANIFEST}: {error}")
        try:
            text, _ = split_note(note)
        except NoteError:
            return None
    try:
        manifest = b.parse_manifest(text)
    except ValueError as error:
        report.fail(f"{b.MANIFEST}: {error}")
        return None
    for name, digest in sorted(manifest.files.items()):
        if name not in files:
            report.fail(f"{name} is listed in the signed manifest but missing from the bundle")
        elif b.sha256_hex(files[name]) != digest:
            report.fail(f"{name} was changed after export: its SHA-256 is not the manifest's")
    for name in sorted(set(files) - set(manifest.files) - {b.MANIFEST}):
        report.fail(f"{name} is not listed in the signed manifest: it was added after export")
    return manifest


def _checkpoints(
    files: Mapping[str, bytes], key: VerifierKey, report: Report
) -> list[CheckpointBody]:
    """The checkpoints whose signatures verify, in issue order."""
    entries = _decode(files, b.CHECKPOINTS, list[b.CheckpointEntry], report) or []
    verified: list[CheckpointBody] = []
    for number, entry in enumerate(entries, start=1):
        label = f"checkpoint {number} of {len(entries)} (tree size {entry.tree_size})"
        try:
            body = parse_checkpoint_text(key.open(entry.note))
        except (NoteError, ValueError) as error:
            report.fail(f"{label}: {error}")
            continue
        if (body.tree_size, body.root.hex()) != (entry.tree_size, entry.root_hash):
            report.fail(f"{label}: its listed size or root is not what its signed note says")
        if verified and body.tree_size < verified[-1].tree_size:
            report.fail(f"{label} is smaller than an earlier checkpoint: the log was rolled back")
        verified.append(body)
    if entries and not verified:
        report.fail(
            f"{b.PUBLIC_KEY}: no checkpoint verifies with {key.name}+{key.key_id}: "
            "the public key was replaced, or every checkpoint was forged"
        )
    elif verified:
        report.ok(f"{len(verified)} of {len(entries)} checkpoint signatures verify")
    return verified


def _target(manifest: b.Manifest, verified: list[CheckpointBody], report: Report) -> CheckpointBody:
    """The checkpoint the bundle is cut at: the latest signed one, as the manifest says."""
    stated = (manifest.tree_size, manifest.root_hash)
    if verified and (verified[-1].tree_size, verified[-1].root.hex()) == stated:
        return verified[-1]
    report.fail(
        f"the bundle says it is cut at tree size {manifest.tree_size}, which is not the latest "
        "checkpoint whose signature verifies"
    )
    root = bytes.fromhex(manifest.root_hash) if len(manifest.root_hash) == 64 else b""
    return CheckpointBody(origin=manifest.origin, tree_size=manifest.tree_size, root=root)


def _check_attachments(
    rows: list[Row], files: Mapping[str, bytes], manifest: b.Manifest, report: Report
) -> None:
    """The bundle's attachments: each named by an exported event, and hashing to its name."""
    carried = {
        n.removeprefix(b.ATTACHMENTS): files[n] for n in files if n.startswith(b.ATTACHMENTS)
    }
    if not manifest.attachments and not carried:
        return  # exported without them: nothing to check
    attachments = Attachments()
    for row in rows:
        if isinstance(row.event, Event):
            attachments.note(row.position, row.event)

    def digest(sha256: str) -> str | None:
        data = carried.get(sha256)
        return None if data is None else b.sha256_hex(data)

    attachments.check(digest, "the bundle", report)
    for name in attachments.unnamed(carried):
        report.fail(f"{b.ATTACHMENTS}{name} is not an attachment of any exported evidence")


def _check_full(
    rows: list[Row],
    proofs: b.Proofs,
    verified: list[CheckpointBody],
    target: CheckpointBody,
    report: Report,
) -> None:
    """Recompute every leaf and the root of each checkpoint; then name what differs."""
    tree, size = Tree(row.leaf for row in rows), target.tree_size
    if len(rows) != size:
        report.fail(f"the checkpoint covers {size} events but the bundle holds {len(rows)}")
    elif tree.root(size) == target.root:
        report.ok(f"all {size} leaves recomputed from the stored bytes hash to the signed root")
    else:
        report.fail(f"the {size} events do not hash to the root of the checkpoint they claim")
    for body in verified[:-1]:
        if body.tree_size <= len(rows) and tree.root(body.tree_size) != body.root:
            report.fail(f"the events up to tree size {body.tree_size} do not match its checkpoint")
    authentic = [(entry.position, bytes.fromhex(entry.hash)) for entry in proofs.leaves]
    if Tree(leaf for _, leaf in authentic).root(len(authentic)) == target.root:
        _name_differences(rows, authentic, report)


def _name_differences(rows: list[Row], authentic: list[tuple[int, bytes]], report: Report) -> None:
    """Align the recomputed leaves with the (root-authenticated) listed ones; name each gap."""
    found = [row.leaf for row in rows]
    expected = [leaf for _, leaf in authentic]
    rows_by_leaf = {row.leaf: row for row in rows}
    rows_by_position = {row.position: row for row in rows}
    known = {position for position, _ in authentic}
    matcher = difflib.SequenceMatcher(None, expected, found, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for position, leaf in authentic[i1:i2]:
            if leaf in rows_by_leaf:
                report.fail("is out of place: the checkpoint has it elsewhere", rows_by_leaf[leaf])
            elif position in rows_by_position:
                report.fail(
                    "its stored bytes or columns are not what the checkpoint covers",
                    rows_by_position[position],
                )
            else:
                report.fail("the event the checkpoint covers here is missing", position)
        for row in rows[j1:j2]:
            if row.leaf not in set(expected) and row.position not in known:
                report.fail("this event is not in the checkpoint: it was added", row)


def _check_partial(
    rows: list[Row],
    proofs: b.Proofs,
    verified: list[CheckpointBody],
    target: CheckpointBody,
    report: Report,
) -> None:
    """Each event's inclusion proof, and each earlier checkpoint's consistency proof."""
    size, root = target.tree_size, target.root
    unclaimed = {entry.leaf_index: entry for entry in proofs.inclusion}
    proven = 0
    for row in rows:
        entry = unclaimed.pop(row.stored.leaf_index, None)
        if entry is None or entry.position != row.position:
            report.fail("has no inclusion proof in the bundle", row)
        elif verify_inclusion(row.leaf, entry.leaf_index, size, _hashes(entry.path), root):
            proven += 1
        else:
            report.fail(
                "its inclusion proof fails: its stored bytes or columns were changed, "
                "or it was moved",
                row,
            )
    for entry in unclaimed.values():
        report.fail("an inclusion proof is for an event missing from the bundle", entry.position)
    if rows and proven == len(rows):
        report.ok(f"all {proven} events are proven included in the checkpoint of size {size}")
    earlier = verified[:-1]
    consistent = [_consistent(body, target, proofs, report) for body in earlier]  # name each
    if earlier and all(consistent):
        report.ok(f"the {len(earlier)} earlier checkpoints are consistent with the latest")


def _consistent(
    old: CheckpointBody, new: CheckpointBody, proofs: b.Proofs | None, report: Report
) -> bool:
    if old.tree_size in {new.tree_size, 0}:
        path: list[bytes] = []
    else:
        entries = proofs.consistency if proofs is not None else []
        found = [e for e in entries if (e.old_size, e.new_size) == (old.tree_size, new.tree_size)]
        if not found:
            report.fail(f"the bundle has no consistency proof from tree size {old.tree_size}")
            return False
        path = _hashes(found[0].path)
    if verify_consistency(old.tree_size, new.tree_size, old.root, new.root, path):
        return True
    report.fail(
        f"the checkpoint of tree size {old.tree_size} is not consistent with the one of size "
        f"{new.tree_size}: events it covered were changed or removed"
    )
    return False


def _check_trusted(
    note: str,
    key: VerifierKey,
    *,
    rows: list[Row] | None,
    proofs: b.Proofs | None,
    full: bool,
    target: CheckpointBody,
    report: Report,
) -> None:
    note = trusted_note(note)
    try:
        split_note(note)
    except NoteError as error:
        report.fail(
            f"the trusted checkpoint is not a signed checkpoint note ({error}): pass the note "
            "exactly as `eportfolio checkpoint` prints it, or the `signed_note` of "
            "GET /audit/checkpoints/latest (e.g. `jq -r .signed_note`)"
        )
        return
    try:
        trusted = parse_checkpoint_text(key.open(note))
    except (NoteError, ValueError) as error:
        report.fail(f"the trusted checkpoint does not verify with the bundle's key: {error}")
        return
    if trusted.tree_size > target.tree_size:
        report.fail(
            f"the trusted checkpoint (tree size {trusted.tree_size}) is newer than this "
            f"bundle's ({target.tree_size}): the bundle is stale, or the log was rolled back"
        )
    elif full and rows is not None and len(rows) >= trusted.tree_size:
        if Tree(row.leaf for row in rows).root(trusted.tree_size) == trusted.root:
            report.ok(f"consistent with the trusted checkpoint of size {trusted.tree_size}")
        else:
            report.fail(
                f"the events up to tree size {trusted.tree_size} no longer hash to the trusted "
                "checkpoint's root: the log was rewritten since"
            )
    elif not full and _consistent(trusted, target, proofs, report):
        report.ok(f"consistent with the trusted checkpoint of size {trusted.tree_size}")


def trusted_note(text: str) -> str:
    """A note as a person saved it: Windows line ends and the blank lines an editor or
    `jq -r` adds at the end are not part of it (a signed note ends in one newline)."""
    return text.replace("\r\n", "\n").rstrip() + "\n"


def _hashes(path: list[str]) -> list[bytes]:
    try:
        return [bytes.fromhex(node) for node in path]
    except ValueError:
        return []


def _decode(files: Mapping[str, bytes], name: str, kind: type[T], report: Report) -> T | None:
    try:
        return msgspec.json.decode(files[name], type=kind)
    except (KeyError, msgspec.DecodeError) as error:
        report.fail(f"{name} cannot be read: {error}")
        return None
