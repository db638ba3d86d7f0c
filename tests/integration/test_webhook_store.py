"""The webhook store's managed endpoints, on SQLite and PostgreSQL.

A change (URL, filters, mode, rate, status, secret) moves the version and never the cursor;
a change against an old version is refused; a rotation's old secret is sealed under the KEK
like the current one (never in the document, rewrapped by a KEK rotation) and is read back.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import msgspec
import pytest

from adapters.config import Config
from adapters.store.kek import generate, kek_id, load_ring, parse_ring, write_kek_file
from adapters.streams.feed import Filters
from adapters.streams.webhook_store import (
    ContentMode,
    Registration,
    Stale,
    Status,
    Subscription,
    open_webhook_store,
)

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
OLD, NEW = "whsec_b2xkLW9sZC1vbGQ=", "whsec_bmV3LW5ldy1uZXc="


def subscription(position: int = 41) -> Subscription:
    registration = Registration(
        owner_id=uuid4(), url="https://mis.example/a", secret=OLD, created_at=NOW
    )
    return Subscription(id=uuid4(), registration=registration, position=position)


def rotated(s: Subscription) -> Subscription:
    r = msgspec.structs.replace(
        s.registration,
        url="https://mis.example/b",
        filters=Filters(types=frozenset({"uk.eportfolio.evidence.submitted.v1"})),
        content_mode=ContentMode.BINARY,
        rate_limit=2.5,
        secret=NEW,
        old_secret=s.registration.secret,
        old_secret_expires_at=NOW + timedelta(hours=1),
    )
    return msgspec.structs.replace(s, registration=r)


def test_a_change_keeps_the_cursor_moves_the_version_and_refuses_an_old_version(
    config: Config,
) -> None:
    store = open_webhook_store(config)
    try:
        made = subscription()
        store.add(made)
        assert store.advance(made.id, 41, 57)  # the worker moved on meanwhile

        changed = store.update(made.id, rotated, expected_version=1)
        assert changed is not None
        assert (changed.version, changed.position) == (2, 57)
        read = store.get(made.id)
        assert read == changed
        assert read.registration.url == "https://mis.example/b"
        assert read.registration.content_mode is ContentMode.BINARY
        assert read.registration.rate_limit == 2.5
        assert read.registration.secrets_at(NOW) == [NEW, OLD]
        assert read.registration.secrets_at(NOW + timedelta(hours=2)) == [NEW]

        with pytest.raises(Stale) as stale:
            store.update(made.id, rotated, expected_version=1)
        assert stale.value.current == 2
        assert store.update(uuid4(), rotated) is None

        disabled = store.update(
            made.id, lambda s: msgspec.structs.replace(s, status=Status.DISABLED), None
        )
        assert disabled is not None
        assert (disabled.version, disabled.position, disabled.status) == (3, 57, Status.DISABLED)
        store.set_status(made.id, Status.ACTIVE)  # the worker's own changes move it too
        again = store.get(made.id)
        assert again is not None
        assert again.version == 4
    finally:
        store.close()


def test_the_old_secret_is_sealed_apart_and_rewrapped_by_a_kek_rotation(config: Config) -> None:
    store = open_webhook_store(config)
    made = subscription()
    try:
        store.add(made)
        store.update(made.id, rotated)
        rows = store.db.execute("SELECT doc, secret_sealed, old_secret_sealed FROM {webhooks}")
        doc, sealed, old_sealed = (bytes(v) for v in rows[0])
        for secret in (OLD, NEW):
            for stored in (doc, sealed, old_sealed):
                assert secret.encode() not in stored
                assert secret.removeprefix("whsec_").encode() not in stored
    finally:
        store.close()

    old_ring = parse_ring(config.kek_path.read_text(), "kek")
    new = generate()
    write_kek_file(config.kek_path, [new, *old_ring], replace=True)
    store = open_webhook_store(config, load_ring(config))
    try:
        assert store.rewrap(kek_id(new)) == 1
    finally:
        store.close()
    write_kek_file(config.kek_path, [new], replace=True)  # the old KEK is gone
    store = open_webhook_store(config)
    try:
        read = store.get(made.id)
        assert read is not None
        assert read.registration.secrets_at(NOW) == [NEW, OLD]
    finally:
        store.close()


def test_two_changes_from_the_same_version_at_once_one_wins_the_other_is_stale(
    config: Config,
) -> None:
    store = open_webhook_store(config)
    try:
        made = subscription()
        store.add(made)
        results: list[bool] = []

        def change() -> None:
            try:
                results.append(store.update(made.id, rotated, expected_version=1) is not None)
            except Stale:
                results.append(False)

        threads = [threading.Thread(target=change) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(results) == [False, True]
        read = store.get(made.id)
        assert read is not None
        assert read.version == 2
    finally:
        store.close()
