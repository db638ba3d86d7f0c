"""Checkpoints: signed statements of the Merkle root over the log, kept in the log itself.

A checkpoint is a C2SP tlog-checkpoint note (origin, tree size, base64 root), signed by the
log's key and recorded as `CheckpointIssued` in a dedicated audit stream, as the system
actor. The tree comes from an incrementally maintained index (an adapter, behind
`MerkleLog`), the signature from a `NoteSigner` adapter: this module stays pure of files
and crypto libraries. An EV sample is covered by a checkpoint as soon as it is recorded.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import msgspec
from eventsourcing.persistence import IntegrityError, MapperDeserialisationError, Notification

from domain import commands as c
from domain.events import CheckpointIssued, Event, EvSampleRecorded, Role
from service.codec import Recorded, Stored
from service.errors import ConcurrencyConflict
from service.handlers import Eportfolio
from service.ledger import Ledger
from service.merkle import event_leaf, recorded_time
from service.reactions import Reaction

AUDIT_STREAM = uuid5(NAMESPACE_URL, "urn:eportfolio:audit-log")
SYSTEM_ACTOR = c.Actor(id=uuid5(NAMESPACE_URL, "urn:eportfolio:system"), role=Role.SYSTEM)
RETRIES = 20


class Reason(StrEnum):
    SCHEDULED = "scheduled"
    ON_DEMAND = "on_demand"
    EV_SAMPLE = "ev_sample"


class TreeHead(msgspec.Struct, frozen=True, kw_only=True):
    """The tree over the log up to `position`: `size` leaves with this root."""

    size: int
    root: bytes
    position: int


class MerkleLog(Protocol):
    """The incrementally maintained leaf index (adapters.audit.merkle_index)."""

    def catch_up(self, ledger: Ledger) -> TreeHead: ...

    def position_of_leaf(self, index: int) -> int: ...


class NoteSigner(Protocol):
    """Signs C2SP notes with the log's key; the key name is the checkpoint origin."""

    @property
    def origin(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    def sign(self, text: str) -> str: ...


class CheckpointBody(msgspec.Struct, frozen=True, kw_only=True):
    origin: str
    tree_size: int
    root: bytes


def checkpoint_text(origin: str, tree_size: int, root: bytes) -> str:
    """The note text of a checkpoint: origin, size and base64 root, one per line."""
    return f"{origin}\n{tree_size}\n{base64.b64encode(root).decode()}\n"


def parse_checkpoint_text(text: str) -> CheckpointBody:
    """The checkpoint a (verified) note text states; ValueError saying what is wrong."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        msg = "a checkpoint is an origin, a tree size and a root hash, one per line"
        raise ValueError(msg)
    origin, size, root = lines[:3]
    if not origin or not size.isdigit() or (size != "0" and size.startswith("0")):
        msg = f"malformed checkpoint header: origin {origin!r}, size {size!r}"
        raise ValueError(msg)
    try:
        root_hash = base64.b64decode(root, validate=True)
    except binascii.Error as error:
        msg = f"the checkpoint's root hash is not base64: {root!r}"
        raise ValueError(msg) from error
    if len(root_hash) != 32:
        msg = f"the checkpoint's root hash has {len(root_hash)} bytes, not 32"
        raise ValueError(msg)
    return CheckpointBody(origin=origin, tree_size=int(size), root=root_hash)


def decoded(ledger: Ledger, notification: Notification) -> Stored | None:
    """The stored event decoded, or None if its bytes no longer decode."""
    try:
        return ledger.decode(notification).event
    except MapperDeserialisationError:
        return None


def recorded_text(event: Stored | None) -> str:
    """The leaf's recorded time: the event's `recorded_at`, else '' (receipts, undecodable).

    An undecodable payload still gets a leaf: it binds the stored bytes all the same.
    """
    value: Any = getattr(event, "recorded_at", None)
    return recorded_time(value if isinstance(value, datetime) else None)


def notification_leaf(notification: Notification, event: Stored | None) -> bytes:
    """The leaf hash of a stored event, from its columns, stored bytes and recorded time."""
    originator_id = notification.originator_id
    return event_leaf(
        position=notification.id,
        originator_id=originator_id
        if isinstance(originator_id, UUID)
        else UUID(str(originator_id)),
        originator_version=notification.originator_version,
        topic=notification.topic,
        recorded_at=recorded_text(event),
        state=notification.state,
    )


def leaf_of(ledger: Ledger, notification: Notification) -> bytes:
    return notification_leaf(notification, decoded(ledger, notification))


def checkpoints(ledger: Ledger) -> list[CheckpointIssued]:
    """Every checkpoint issued, oldest first (the audit stream as the ledger holds it:
    read again on every EV sample, so only what was added since is fetched)."""
    return [r.event for r in ledger.facts(AUDIT_STREAM) if isinstance(r.event, CheckpointIssued)]


def latest_checkpoint(ledger: Ledger) -> CheckpointIssued | None:
    issued = checkpoints(ledger)
    return issued[-1] if issued else None


class Checkpointer:
    """Issues checkpoints: catch the index up, sign its root, record the note."""

    def __init__(
        self,
        ledger: Ledger,
        log: MerkleLog,
        signer: NoteSigner,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self.ledger = ledger
        self.log = log
        self.signer = signer
        self.clock = clock
        self.new_id = new_id

    def issue(self, reason: Reason) -> CheckpointIssued:
        """Sign the tree over everything stored now and record the checkpoint.

        Racing issuers conflict on the audit stream's version; the loser signs again.
        """
        for _ in range(RETRIES):
            head = self.log.catch_up(self.ledger)
            version = len(self.ledger.facts(AUDIT_STREAM))
            event = self._checkpoint(head, reason)
            try:
                self.ledger.save(Recorded(AUDIT_STREAM, version + 1, event))
            except IntegrityError:
                continue
            return event
        raise ConcurrencyConflict(f"gave up issuing a checkpoint after {RETRIES} conflicts")

    def issue_if_changed(self, reason: Reason = Reason.SCHEDULED) -> CheckpointIssued | None:
        """As `issue`, but None when nothing but the last checkpoint was stored since it."""
        head = self.log.catch_up(self.ledger)
        version = len(self.ledger.facts(AUDIT_STREAM))
        if version and self.ledger.position_of(AUDIT_STREAM, version) == head.position:
            return None
        return self.issue(reason)

    def covering(self, position: int, reason: Reason = Reason.EV_SAMPLE) -> CheckpointIssued:
        """The latest checkpoint if it covers `position`, else a new one (idempotent)."""
        latest = latest_checkpoint(self.ledger)
        if latest is not None and latest.tree_size > 0:
            self.log.catch_up(self.ledger)
            if self.log.position_of_leaf(latest.tree_size - 1) >= position:
                return latest
        return self.issue(reason)

    def _checkpoint(self, head: TreeHead, reason: Reason) -> CheckpointIssued:
        now = self.clock()
        origin = self.signer.origin
        return CheckpointIssued(
            event_id=self.new_id(),
            actor_id=SYSTEM_ACTOR.id,
            actor_role=SYSTEM_ACTOR.role,
            recorded_at=now,
            effective_on=now.date(),
            origin=origin,
            tree_size=head.size,
            root_hash=head.root.hex(),
            signed_note=self.signer.sign(checkpoint_text(origin, head.size, head.root)),
            key_id=self.signer.key_id,
            reason=reason.value,
        )


def checkpoint_ev_samples(checkpointer: Checkpointer) -> Reaction:
    """The reaction that checkpoints the log as it stood at an EV's sample.

    The EV's sample is what an awarding body will later ask to see as it stood: a signed
    checkpoint covering it is made at once, not at the next scheduled tick.
    """

    def react(event: Event, position: int) -> None:
        if isinstance(event, EvSampleRecorded):
            checkpointer.covering(position, Reason.EV_SAMPLE)

    return react


def with_checkpoints(app: Eportfolio, checkpointer: Checkpointer) -> Eportfolio:
    """The same service, its EV samples now checkpointed."""
    app.reactions.on(EvSampleRecorded, checkpoint_ev_samples(checkpointer))
    return app
