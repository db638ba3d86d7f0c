"""The proof beside a sheet: the latest signed checkpoint and whether it covers the scope."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from adapters.audit.pack.sheet import Proof
from adapters.audit.signing import SigningKeyError
from domain.events import CheckpointIssued
from service.checkpoints import latest_checkpoint

if TYPE_CHECKING:
    from adapters.audit.parts import Audit


def proof_of(audit: Audit, positions: Iterable[int]) -> Proof | None:
    """Against the latest checkpoint (None before the first): an event is in the signed tree
    when its log position is at or before the position of the tree's last leaf."""
    latest = latest_checkpoint(audit.ledger)
    if latest is None:
        return None
    return proof_at(latest, last_position(audit, latest), positions)


def proof_at(latest: CheckpointIssued, covered_up_to: int, positions: Iterable[int]) -> Proof:
    scope = list(positions)
    return Proof(
        origin=latest.origin,
        tree_size=latest.tree_size,
        root_hash=latest.root_hash,
        key_id=latest.key_id,
        issued_at=latest.recorded_at,
        signed_note=latest.signed_note,
        covered_up_to=covered_up_to,
        events=len(scope),
        included=sum(1 for p in scope if p <= covered_up_to),
    )


def last_position(audit: Audit, checkpoint: CheckpointIssued) -> int:
    if checkpoint.tree_size == 0:
        return 0
    try:
        return audit.index.position_of_leaf(checkpoint.tree_size - 1)
    except LookupError:  # the index follows the log; bring it up to the checkpoint
        audit.index.catch_up(audit.ledger)
        return audit.index.position_of_leaf(checkpoint.tree_size - 1)


def verifier_key(audit: Audit) -> str | None:
    """The log's public key text, to check the checkpoint offline (None without a key)."""
    try:
        return audit.key.verifier.to_text()
    except SigningKeyError:
        return None
