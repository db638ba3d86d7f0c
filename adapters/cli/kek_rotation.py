"""`eportfolio keys rotate-kek`: every wrapped key and secret under a new KEK; the log untouched.

With a KEK file the new key is generated and put first in the file (the old one stays, so
every process can still unwrap while the stores move), each store rewraps everything
under it in one transaction that also makes it the store's current KEK, and only then is
the old key dropped from the file. A crash anywhere leaves a file that opens every row;
running the command again finishes the job. With `EPORTFOLIO_KEK` the operator puts the
new key first in the variable themselves; the command rewraps under it and says which
keys are then unused and may be removed.
"""

from __future__ import annotations

from typing import NamedTuple

from adapters.config import Config
from adapters.store.kek import KekError, generate, kek_id, load_ring, write_kek_file
from adapters.store.subject_keys import open_subject_keys
from adapters.streams.lrs_store import open_lrs_store
from adapters.streams.webhook_store import open_webhook_store


class Rotation(NamedTuple):
    kek_id: str  # the KEK everything is wrapped under now
    keys: int  # subject keys rewrapped
    secrets: int  # webhook secrets and LRS credentials rewrapped
    retired: tuple[str, ...]  # KEKs nothing is wrapped under any more


def rotate_kek(config: Config) -> Rotation:
    ring = load_ring(config)
    if ring.from_environment:
        target = ring.newest
    else:
        new = generate()
        held = [ring.key(wanted) for wanted in ring.ids]
        write_kek_file(config.kek_path, [new, *held], replace=True)
        ring.reload()
        target = kek_id(new)
    keys = open_subject_keys(config, ring)
    try:
        webhooks = open_webhook_store(config, ring)
        lrs = open_lrs_store(config, ring)
        try:
            secrets = webhooks.rewrap(target) + lrs.rewrap(target)
            rotated = Rotation(target, keys.rewrap(target), secrets, ())
            left = (keys.kek_ids() | webhooks.kek_ids() | lrs.kek_ids()) - {target}
        finally:
            lrs.close()
            webhooks.close()
    finally:
        keys.close()
    if left:  # pragma: no cover - rewrap moves every row in its transaction
        msg = f"after rewrapping, something is still wrapped under {', '.join(sorted(left))}"
        raise KekError(msg)
    if not ring.from_environment:
        write_kek_file(config.kek_path, [ring.key(target)], replace=True)
    return rotated._replace(retired=tuple(i for i in ring.ids if i != target))
