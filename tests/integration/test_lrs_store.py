"""A centre's LRS credentials at rest: wrapped under the KEK, rewrapped by a rotation."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import msgspec
import psycopg

from adapters.cli.kek_rotation import rotate_kek
from adapters.config import Config, Secret
from adapters.store.kek import encode_ring, parse_ring
from adapters.streams.lrs_store import Lrs, Registration, Secrets, open_lrs_store
from tests.conftest import POSTGRES_URL
from tests.pg_files import table_files

PASSWORD = "lrs-password-3b1e9d"
KEY = b"pseudonym-key-0123456789abcdef!!"


def lrs() -> Lrs:
    registration = Registration(
        centre_id=uuid4(), owner_id=uuid4(), endpoint="https://lrs.example/xAPI/",
        username="centre", created_at=datetime.now(UTC),
    )  # fmt: skip
    return Lrs(
        id=uuid4(),
        registration=registration,
        secrets=Secrets(password=PASSWORD, pseudonym_key=KEY),
        position=0,
    )


def on_disk(config: Config) -> bytes:
    if not config.uses_postgres:
        return b"".join(p.read_bytes() for p in sorted(config.data_dir.glob("lrs.sqlite*")))
    schema = (config.database_url or "").split("schema=")[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        return table_files(conn, schema, "eportfolio_lrs")


def test_the_password_and_pseudonym_key_are_stored_wrapped_and_read_back(config: Config) -> None:
    store = open_lrs_store(config)
    made = lrs()
    try:
        store.add(made)
        assert store.get(made.id) == made
        assert store.of_centre(made.registration.centre_id) == [made]
    finally:
        store.close()
    stored = on_disk(config)
    assert b"lrs.example" in stored  # the registration itself is there
    assert PASSWORD.encode() not in stored
    assert KEY not in stored


def test_a_kek_rotation_rewraps_the_lrs_secrets(config: Config) -> None:
    store = open_lrs_store(config)
    made = lrs()
    store.add(made)
    store.close()
    old = parse_ring(config.kek_path.read_text(), "kek")

    rotation = rotate_kek(config)

    assert rotation.secrets == 1
    assert parse_ring(config.kek_path.read_text(), "kek") != old
    only_new = msgspec.structs.replace(config, kek=Secret(config.kek_path.read_text()))
    again = open_lrs_store(only_new)
    try:
        found = again.get(made.id)
        assert found is not None
        assert found.secrets == made.secrets
    finally:
        again.close()
    assert encode_ring(old) not in config.kek_path.read_text()
