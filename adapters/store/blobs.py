"""Attachments: a content-addressed file store, with per-centre claims for isolation.

Bytes live once under `objects/ab/abcdef…` (named by their SHA-256, so an upload can be
checked and never changes); a centre may read a blob only if someone of that centre
uploaded it (`centres/{centre_id}/{sha256}`), so knowing a hash never reveals another
centre's file. Uploads stream into a temporary file and are renamed into place only
after the size and hash check, so a failed upload leaves nothing behind.

The name is also the check on the way out: a blob is hashed again whenever it is read
(`open`, `digest`), and one whose bytes no longer hash to its name is refused
(`BlobAltered`), never served as if it were the file the evidence refers to.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO
from uuid import UUID

from adapters.store.files import private_dir, private_file


class BlobTooLarge(Exception):
    rule = "blob_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"an attachment may be at most {limit} bytes")
        self.limit = limit


class BlobHashMismatch(Exception):
    rule = "blob_hash_mismatch"

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"the body's SHA-256 is {actual}, not {expected}")


class BlobAltered(Exception):
    """A stored attachment whose bytes no longer hash to its name: altered on disk."""

    rule = "blob_altered"

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(
            f"the stored attachment {expected} now hashes to {actual}: it was altered on disk; "
            "restore it from a backup"
        )
        self.expected, self.actual = expected, actual


CHUNK = 1 << 20


def sha256_of(file: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := file.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


class Upload:
    """One upload in progress: bytes go to a temporary file, hashed as they come."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._digest = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise BlobTooLarge(self.limit)
        self._digest.update(chunk)
        self._file.write(chunk)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> None:
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        for sub in ("objects", "centres", "tmp"):
            private_dir(root / sub)
        private_dir(root)

    def begin(self) -> Upload:
        return Upload(self.root / "tmp", self.max_bytes)

    def commit(self, upload: Upload, expected: str, centre_id: UUID) -> bool:
        """Keep the upload if its hash is `expected`; claim it for the centre.

        Returns whether the centre's claim is new.
        """
        try:
            upload.close()
            if upload.sha256 != expected:
                raise BlobHashMismatch(expected, upload.sha256)
            target = self._object(expected)
            target.parent.mkdir(exist_ok=True, mode=0o700)
            os.replace(upload.path, target)  # same bytes if already there: harmless
        finally:
            upload.discard()
        claim = self.root / "centres" / str(centre_id) / expected
        if claim.exists():
            return False
        private_file(claim)
        return True

    def size(self, sha256: str, centre_id: UUID) -> int | None:
        """The blob's size if the centre may read it, else None."""
        path = self.path(sha256, centre_id)
        return None if path is None else path.stat().st_size

    def path(self, sha256: str, centre_id: UUID) -> Path | None:
        if not (self.root / "centres" / str(centre_id) / sha256).exists():
            return None
        target = self._object(sha256)
        return target if target.exists() else None

    def open(self, sha256: str, centre_id: UUID) -> BinaryIO | None:
        """The blob for reading, from its start, once its bytes hash to its name.

        None if the centre may not read it (or it is gone); BlobAltered if it was altered.
        Renaming another file into place afterwards cannot swap what this handle reads.
        """
        path = self.path(sha256, centre_id)
        if path is None:
            return None
        file = path.open("rb")
        try:
            actual = sha256_of(file)
            if actual != sha256:
                raise BlobAltered(sha256, actual)
            file.seek(0)
        except BaseException:
            file.close()
            raise
        return file

    def digest(self, sha256: str) -> str | None:
        """What the stored bytes named `sha256` hash to now; None if there are none."""
        try:
            with self._object(sha256).open("rb") as file:
                return sha256_of(file)
        except FileNotFoundError:
            return None

    def read(self, sha256: str) -> bytes | None:
        """The blob's bytes, checked (BlobAltered); None if there are none (an exporter's)."""
        try:
            data = self._object(sha256).read_bytes()
        except FileNotFoundError:
            return None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise BlobAltered(sha256, actual)
        return data

    def forget(self, sha256: str, centre_id: UUID) -> bool:
        """Drop the centre's claim, and the bytes once no centre claims them (erasure).

        Returns whether the bytes are gone (they were there, and nobody else claims them).
        """
        (self.root / "centres" / str(centre_id) / sha256).unlink(missing_ok=True)
        if any((self.root / "centres").glob(f"*/{sha256}")):
            return False
        target = self._object(sha256)
        existed = target.exists()
        target.unlink(missing_ok=True)
        return existed

    def _object(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256
