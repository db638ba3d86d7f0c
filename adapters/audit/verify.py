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
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec

from adapters.audit import bundle as b
from adapters.audit.bundle_io import ProofsIn, ZipIn
from adapters.audit.findings import Problem, Report
from adapters.audit.signing import NoteError, SigningKeyError, VerifierKey, split_note
from adapters.audit.verify_attachments import Attachments
from adapters.audit.verify_rows import Row, Streams, Views, check_view, read_rows
from adapters.audit.verify_split import Split, check_split
from adapters.audit.verify_tree import TreeElsewhere
from domain.events import Event, EvidenceSubmitted, LearnerEnrolled, SubjectErased
from service.checkpoints import CheckpointBody, parse_checkpoint_text
from service.merkle import EMPTY_ROOT, Frontier, verify_consistency, verify_inclusion

__all__ = ["Problem", "Progress", "Report", "verify_bundle", "verify_bundle_reporting"]
T = TypeVar("T")
MAX_UNZIPPED = 64 << 30  # read as a stream, but a zip bomb would still take hours
REQUIRED = (b.MANIFEST, b.PUBLIC_KEY, b.CHECKPOINTS, b.STORED, b.DECODED, b.PROOFS)
Progress = Callable[[int, int], None]  # (rows read, rows expected)
_NOTED = frozenset({EvidenceSubmitted.TOPIC, LearnerEnrolled.TOPIC, SubjectErased.TOPIC})
_EVERY = 2_000  # rows between progress calls


def verify_bundle(
    bundle: bytes | Path, *, trusted_checkpoint: str | None = None, trusted_key: str | None = None
) -> Report:
    """Everything that does and does not verify in the bundle (zip bytes, or its file)."""
    return verify_bundle_reporting(
        bundle, trusted_checkpoint=trusted_checkpoint, trusted_key=trusted_key, progress=None
    )


def verify_bundle_reporting(
    bundle: bytes | Path,
    *,
    trusted_checkpoint: str | None,
    trusted_key: str | None,
    progress: Progress | None,
) -> Report:
    """`verify_bundle`, telling `progress` how many rows it has read as it goes.

    Read as a stream: memory does not grow with the bundle's size (a tampered bundle may
    take more, to name what differs).
    """
    report = Report()
    try:
        archive = zipfile.ZipFile(io.BytesIO(bundle) if isinstance(bundle, bytes) else bundle)
    except (zipfile.BadZipFile, OSError) as error:
        report.fail(f"the bundle is not a readable zip file: {error}")
        return report
    with archive:
        zin = ZipIn(archive)
        try:
            path = bundle if isinstance(bundle, Path) else None
            _verify(zin, path, trusted_checkpoint, trusted_key, progress, report)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            report.fail(f"the bundle is not a readable zip file: {error}")
        finally:
            zin.close()
    return report


def _verify(  # noqa: PLR0917 - the one caller passes what the user gave
    zin: ZipIn,
    path: Path | None,
    trusted_checkpoint: str | None,
    trusted_key: str | None,
    progress: Progress | None,
    report: Report,
) -> None:
    names = _open(zin.archive, report)
    if names is None:
        return
    key = _key(zin, trusted_key, report)
    if key is None:
        return
    manifest = _manifest(zin, key, report)
    verified = _checkpoints(zin, key, report)
    if manifest is None:
        return
    target = _target(manifest, verified, report)
    read = {b.STORED, b.DECODED} | (set() if manifest.full else {b.PROOFS})
    zin.digest_ahead(n for n in manifest.files if n in set(names) - read)  # while rows run
    trusted = _trusted(trusted_checkpoint, key, report) if trusted_checkpoint else None
    proofs = _proofs(zin, report)
    expected = manifest.tree_size if manifest.full else sum(manifest.streams.values())
    sizes = {body.tree_size for body in verified[:-1]} | ({trusted.tree_size} if trusted else set())
    told = (lambda done: progress(done, expected)) if progress else None
    attachments = manifest.attachments or any(n.startswith(b.ATTACHMENTS) for n in names)
    halves = (  # a whole-log bundle file as exported: checked in two processes, if it pays
        _halves(zin, path, manifest, sizes | {target.tree_size}, told, report)
        if manifest.full and not attachments
        else None
    )
    passed = halves or _rows(
        zin,
        path,
        manifest,
        proofs,
        target,
        sizes=sizes,
        progress=told,
        attachments=attachments,
        report=report,
    )
    _check_attachments(passed.attachments, zin, names, manifest, report)
    if manifest.full and proofs is not None:
        _check_full(zin, passed, proofs=proofs, verified=verified, target=target, report=report)
    elif proofs is not None:
        _check_partial(passed, proofs, verified, target, report)
    if trusted is not None:
        _check_trusted(
            trusted, passed, proofs=proofs, full=manifest.full, target=target, report=report
        )
    _check_files(zin, names, manifest, report)


def _open(archive: zipfile.ZipFile, report: Report) -> list[str] | None:
    """The bundle's file names, if every required file is there."""
    # A folder entry holds nothing: `zip -r` of an unzipped bundle writes them.
    entries = [i for i in archive.infolist() if not (i.is_dir() and i.file_size == 0)]
    names = [info.filename for info in entries]
    if sum(info.file_size for info in entries) > MAX_UNZIPPED:
        report.fail(f"the bundle unzips to more than {MAX_UNZIPPED:,} bytes: not read")
        return None
    if len(set(names)) != len(names):
        report.fail("the zip holds two files under one name: one could hide the other")
    missing = [name for name in REQUIRED if name not in names]
    for name in missing:
        report.fail(f"{name} is missing from the bundle")
    return None if missing else sorted(set(names))


def _key(zin: ZipIn, trusted: str | None, report: Report) -> VerifierKey | None:
    bundled: VerifierKey | None = None
    try:
        bundled = VerifierKey.from_text(zin.read(b.PUBLIC_KEY).decode())
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


def _manifest(zin: ZipIn, key: VerifierKey, report: Report) -> b.Manifest | None:
    note = zin.read(b.MANIFEST).decode(errors="replace")
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
        return b.parse_manifest(text)
    except ValueError as error:
        report.fail(f"{b.MANIFEST}: {error}")
        return None


def _check_files(zin: ZipIn, names: list[str], manifest: b.Manifest, report: Report) -> None:
    """Every file the signed manifest lists is there with its hash, and no other is."""
    present = set(names)
    for name, digest in sorted(manifest.files.items()):
        if name not in present:
            report.fail(f"{name} is listed in the signed manifest but missing from the bundle")
        elif zin.digest(name) != digest:
            report.fail(f"{name} was changed after export: its SHA-256 is not the manifest's")
    for name in sorted(present - set(manifest.files) - {b.MANIFEST}):
        report.fail(f"{name} is not listed in the signed manifest: it was added after export")


def _checkpoints(zin: ZipIn, key: VerifierKey, report: Report) -> list[CheckpointBody]:
    """The checkpoints whose signatures verify, in issue order."""
    entries = _decode(zin.read(b.CHECKPOINTS), b.CHECKPOINTS, list[b.CheckpointEntry], report)
    verified: list[CheckpointBody] = []
    for number, entry in enumerate(entries or [], start=1):
        label = f"checkpoint {number} of {len(entries or [])} (tree size {entry.tree_size})"
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
        report.ok(f"{len(verified)} of {len(entries or [])} checkpoint signatures verify")
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


def _proofs(zin: ZipIn, report: Report) -> ProofsIn | None:
    try:
        return ProofsIn(zin.lines(b.PROOFS))
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        report.fail(f"{b.PROOFS} cannot be read: {error}")
        return None


class _Inclusion:
    """The inclusion proofs, taken by leaf index as the rows come (in order, as exported)."""

    def __init__(self, proofs: ProofsIn, report: Report) -> None:
        self.proofs = proofs
        self.report = report
        self.ahead: dict[int, b.InclusionEntry] = {}
        self.done = False

    def take(self, leaf_index: int) -> b.InclusionEntry | None:
        found = self.ahead.pop(leaf_index, None)
        while found is None and (entry := self._next()) is not None:
            if entry.leaf_index == leaf_index:
                return entry
            self.ahead[entry.leaf_index] = entry
        return found

    def unclaimed(self) -> list[b.InclusionEntry]:
        while (entry := self._next()) is not None:
            self.ahead[entry.leaf_index] = entry
        return list(self.ahead.values())

    def _next(self) -> b.InclusionEntry | None:
        if self.done:
            return None
        try:
            entry = self.proofs.next_inclusion()
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            self.report.fail(f"{b.PROOFS} cannot be read: {error}")
            entry = None
        self.done = entry is None
        return entry


class _Passed:
    """What one pass over the rows found, for the checks that need all of them."""

    def __init__(self) -> None:
        self.count = 0
        self.roots: dict[int, bytes] = {0: EMPTY_ROOT}  # full: the root at each size asked
        self.proven = 0
        self.attachments = Attachments()
        self.inclusion: _Inclusion | None = None


def _rows(
    zin: ZipIn,
    path: Path | None,
    manifest: b.Manifest,
    proofs: ProofsIn | None,
    target: CheckpointBody,
    *,
    sizes: set[int],
    progress: Callable[[int], None] | None,
    attachments: bool,
    report: Report,
) -> _Passed:
    """One pass over the stored rows: each checked against its view, its stream and its
    proof as it is read; the tree's root taken at each size a check will ask for."""
    passed = _Passed()
    views, streams, frontier = Views(zin, report), Streams(), Frontier()
    full = manifest.full
    if not full and proofs is not None:
        passed.inclusion = _Inclusion(proofs, report)
    sizes = sizes | {target.tree_size}
    noted = _NOTED if attachments else frozenset()  # who enrolled where: only to check files
    take, add, append = views.take, streams.add, frontier.append
    tree = TreeElsewhere.start(zin, path, sizes) if full else None
    here = full and tree is None  # the tree hashed in this process, row by row
    try:
        for row in read_rows(zin, report):
            row.raw_view = take(row.stored.position)
            check_view(row, report)
            add(row, report)
            if noted and row.stored.topic in noted and isinstance(event := row.event, Event):
                passed.attachments.note(row.position, event)
            if here:
                append(row.leaf)
                if frontier.size in sizes:
                    passed.roots[frontier.size] = frontier.root()
            elif passed.inclusion is not None:
                passed.proven += _proven(row, passed.inclusion, target, report)
            passed.count += 1
            if progress is not None and passed.count % _EVERY == 0:
                progress(passed.count)
    except BaseException:
        if tree is not None:
            tree.cancel()
        raise
    if tree is not None:
        passed.roots.update(tree.roots(zin, passed.count))
    if progress is not None:
        progress(passed.count)
    for position in views.strays():
        report.fail(f"{b.DECODED} holds an event that is not among the stored ones", position)
    streams.finish(None if full else manifest.streams, report)
    return passed


def _halves(  # noqa: PLR0917 - _rows's own arguments
    zin: ZipIn,
    path: Path | None,
    manifest: b.Manifest,
    sizes: set[int],
    progress: Callable[[int], None] | None,
    report: Report,
) -> _Passed | None:
    """A whole-log bundle file checked in two processes, if it pays and passes (else None:
    checked whole, here)."""
    split = Split.start(zin, path, manifest.tree_size, sizes)
    checked = check_split(zin, split, frozenset(sizes), progress, report) if split else None
    if checked is None:
        return None
    passed = _Passed()
    passed.count, passed.roots = checked.rows, checked.roots
    if progress is not None:
        progress(passed.count)
    return passed


def _proven(row: Row, inclusion: _Inclusion, target: CheckpointBody, report: Report) -> int:
    entry = inclusion.take(row.stored.leaf_index)
    if entry is None or entry.position != row.position:
        report.fail("has no inclusion proof in the bundle", row)
        return 0
    if verify_inclusion(
        row.leaf, entry.leaf_index, target.tree_size, _hashes(entry.path), target.root
    ):
        return 1
    report.fail(
        "its inclusion proof fails: its stored bytes or columns were changed, or it was moved",
        row,
    )
    return 0


def _check_attachments(
    attachments: Attachments, zin: ZipIn, names: list[str], manifest: b.Manifest, report: Report
) -> None:
    """The bundle's attachments: each named by an exported event, and hashing to its name."""
    carried = {n.removeprefix(b.ATTACHMENTS) for n in names if n.startswith(b.ATTACHMENTS)}
    if not manifest.attachments and not carried:
        return  # exported without them: nothing to check

    def digest(sha256: str) -> str | None:
        return zin.digest(b.ATTACHMENTS + sha256) if sha256 in carried else None

    attachments.check(digest, "the bundle", report)
    for name in attachments.unnamed(carried):
        report.fail(f"{b.ATTACHMENTS}{name} is not an attachment of any exported evidence")


def _check_full(
    zin: ZipIn,
    passed: _Passed,
    *,
    proofs: ProofsIn,
    verified: list[CheckpointBody],
    target: CheckpointBody,
    report: Report,
) -> None:
    """Every leaf recomputed and the root of each checkpoint; if any differs, name what."""
    size = target.tree_size
    intact = passed.count == size and passed.roots.get(size) == target.root
    if passed.count != size:
        report.fail(f"the checkpoint covers {size} events but the bundle holds {passed.count}")
    elif intact:
        report.ok(f"all {size} leaves recomputed from the stored bytes hash to the signed root")
    else:
        report.fail(f"the {size} events do not hash to the root of the checkpoint they claim")
    for body in verified[:-1]:
        if body.tree_size <= passed.count and passed.roots.get(body.tree_size) != body.root:
            report.fail(f"the events up to tree size {body.tree_size} do not match its checkpoint")
            intact = False
    if intact:
        return  # the leaves match the signed ones, so none differs from the listed leaves
    try:
        authentic = [(entry.position, bytes.fromhex(entry.hash)) for entry in proofs.leaves()]
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
        report.fail(f"{b.PROOFS} cannot be read: {error}")
        return
    listed = Frontier()
    for _, leaf in authentic:
        listed.append(leaf)
    if listed.root() == target.root:
        _name_differences(zin, authentic, report)


def _name_differences(zin: ZipIn, authentic: list[tuple[int, bytes]], report: Report) -> None:
    """Align the recomputed leaves with the (root-authenticated) listed ones; name each gap.

    Only for a bundle that does not verify: it holds every leaf, and reads the rows again.
    """
    found: list[bytes] = []
    positions: list[int] = []
    for row in read_rows(zin, Report()):
        found.append(row.leaf)
        positions.append(row.position)
    expected = [leaf for _, leaf in authentic]
    at_leaf = {leaf: i for i, leaf in enumerate(found)}
    at_position = {position: i for i, position in enumerate(positions)}
    known = {position for position, _ in authentic}
    listed = set(expected)
    findings: list[tuple[str, int | None, int | None]] = []  # what, row index, position
    matcher = difflib.SequenceMatcher(None, expected, found, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for position, leaf in authentic[i1:i2]:
            if leaf in at_leaf:
                findings.append(
                    ("is out of place: the checkpoint has it elsewhere", at_leaf[leaf], None)
                )
            elif position in at_position:
                findings.append(
                    (
                        "its stored bytes or columns are not what the checkpoint covers",
                        at_position[position],
                        None,
                    )
                )
            else:
                findings.append(("the event the checkpoint covers here is missing", None, position))
        for j in range(j1, j2):
            if found[j] not in listed and positions[j] not in known:
                findings.append(("this event is not in the checkpoint: it was added", j, None))
    wanted = {index for _, index, _ in findings if index is not None}
    rows = {i: row for i, row in enumerate(read_rows(zin, Report())) if i in wanted}
    for what, index, where in findings:
        report.fail(what, rows[index] if index is not None else where)


def _check_partial(
    passed: _Passed,
    proofs: ProofsIn,
    verified: list[CheckpointBody],
    target: CheckpointBody,
    report: Report,
) -> None:
    """Each event's inclusion proof (checked as the rows were read), and each earlier
    checkpoint's consistency proof."""
    if passed.inclusion is not None:
        for entry in passed.inclusion.unclaimed():
            report.fail(
                "an inclusion proof is for an event missing from the bundle", entry.position
            )
    if passed.count and passed.proven == passed.count:
        report.ok(
            f"all {passed.proven} events are proven included in the checkpoint of size "
            f"{target.tree_size}"
        )
    earlier = verified[:-1]
    consistent = [_consistent(body, target, proofs, report) for body in earlier]  # name each
    if earlier and all(consistent):
        report.ok(f"the {len(earlier)} earlier checkpoints are consistent with the latest")


def _consistent(
    old: CheckpointBody, new: CheckpointBody, proofs: ProofsIn | None, report: Report
) -> bool:
    if old.tree_size in {new.tree_size, 0}:
        path: list[bytes] = []
    else:
        entries = proofs.head.consistency if proofs is not None else []
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


def _trusted(note: str, key: VerifierKey, report: Report) -> CheckpointBody | None:
    """The checkpoint the caller kept, if it is one this key signed."""
    note = trusted_note(note)
    try:
        split_note(note)
    except NoteError as error:
        report.fail(
            f"the trusted checkpoint is not a signed checkpoint note ({error}): pass the note "
            "exactly as `eportfolio checkpoint` prints it, or the `signed_note` of "
            "GET /audit/checkpoints/latest (e.g. `jq -r .signed_note`)"
        )
        return None
    try:
        return parse_checkpoint_text(key.open(note))
    except (NoteError, ValueError) as error:
        report.fail(f"the trusted checkpoint does not verify with the bundle's key: {error}")
        return None


def _check_trusted(
    trusted: CheckpointBody,
    passed: _Passed,
    *,
    proofs: ProofsIn | None,
    full: bool,
    target: CheckpointBody,
    report: Report,
) -> None:
    if trusted.tree_size > target.tree_size:
        report.fail(
            f"the trusted checkpoint (tree size {trusted.tree_size}) is newer than this "
            f"bundle's ({target.tree_size}): the bundle is stale, or the log was rolled back"
        )
    elif full and passed.count >= trusted.tree_size:
        if passed.roots.get(trusted.tree_size) == trusted.root:
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


def _decode(data: bytes, name: str, kind: type[T], report: Report) -> T | None:
    try:
        return msgspec.json.decode(data, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        report.fail(f"{name} cannot be read: {error}")
        return None
