"""The audit trail's parts, built from configuration (for the CLI and the HTTP handlers).

`open_audit(config, ledger, blobs)` gives the Merkle index, the signing key (read when
first needed: verifying needs only the public half, exporting and checkpointing the
private) and a `Checkpointer`; close it to close the index's connections. With the blob
store, exports can carry the attachments and `verify --store` checks every one.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from typing import IO
from uuid import UUID

from adapters.audit.export import (
    Export,
    ExportError,
    Progress,
    Written,
    export_bundle,
    write_bundle,
)
from adapters.audit.findings import Report
from adapters.audit.merkle_index import MerkleIndex, open_merkle_index
from adapters.audit.signing import SigningKey, VerifierKey, load_signing_key
from adapters.audit.verify_store import verify_store
from adapters.config import Config
from adapters.store.blobs import BlobStore
from service.checkpoints import Checkpointer, Reason
from service.ledger import Ledger


class Audit:
    def __init__(self, config: Config, ledger: Ledger, blobs: BlobStore | None = None) -> None:
        self.config = config
        self.ledger = ledger
        self.blobs = blobs
        self.index: MerkleIndex = open_merkle_index(config)

    @cached_property
    def key(self) -> SigningKey:
        return load_signing_key(self.config)

    @cached_property
    def checkpointer(self) -> Checkpointer:
        return Checkpointer(self.ledger, self.index, self.key)

    def export(
        self,
        *,
        centre: UUID | None = None,
        portfolio: UUID | None = None,
        checkpoint: bool = True,
        attachments: bool = False,
    ) -> Export:
        """A bundle of the scope; first checkpoints whatever the latest checkpoint misses."""
        self._prepare(checkpoint=checkpoint, attachments=attachments)
        return export_bundle(
            self.ledger,
            self.index,
            self.key,
            centre=centre,
            portfolio=portfolio,
            blobs=self.blobs if attachments else None,
        )

    def _prepare(self, *, checkpoint: bool, attachments: bool) -> None:
        """Checkpoint what the latest checkpoint misses; refuse attachments with no blobs."""
        if checkpoint:
            self.checkpointer.issue_if_changed(Reason.ON_DEMAND)
        if attachments and self.blobs is None:
            msg = "this export has no blob store to take the attachments from"
            raise ExportError(msg, "no_blob_store")

    def write_export(
        self,
        out: IO[bytes],
        *,
        centre: UUID | None = None,
        portfolio: UUID | None = None,
        attachments: bool = False,
        checkpoint: bool = True,
        progress: Progress | None = None,
        jobs: int | None = None,
    ) -> Written:
        """`export`, written to `out` as it is made (the CLI's file): memory stays bounded."""
        self._prepare(checkpoint=checkpoint, attachments=attachments)
        return write_bundle(
            out,
            self.ledger,
            self.index,
            self.key,
            centre=centre,
            portfolio=portfolio,
            blobs=self.blobs if attachments else None,
            progress=progress,
            jobs=jobs,
        )

    def verify_store(self, key: VerifierKey | None = None) -> Report:
        """Check the live store against the checkpoints (with `key` or the configured one),
        and every attachment the evidence refers to against its hash."""
        return verify_store(self.ledger, self.index, key or self.key.verifier, self.blobs)

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> Audit:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_audit(config: Config, ledger: Ledger, blobs: BlobStore | None = None) -> Audit:
    return Audit(config, ledger, blobs)


log = logging.getLogger(__name__)


class CheckpointSchedule:
    """Issues a checkpoint every `seconds` while the server runs, if the log moved.

    A failure is logged and retried at the next tick: a missed checkpoint delays the proof,
    it loses nothing.
    """

    def __init__(self, checkpointer: Checkpointer, seconds: float) -> None:
        self.checkpointer = checkpointer
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start ticking; again after `stop()` too (a role taken over, docs/adr/0020)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.checkpointer.issue_if_changed(Reason.SCHEDULED)
            except Exception:
                log.exception("a scheduled checkpoint failed; retrying in %s s", self.seconds)
