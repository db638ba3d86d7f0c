"""Fixtures: every store-backed test runs on a SQLite file and on PostgreSQL.

PostgreSQL tests get a schema of their own, dropped afterwards. Without a server they
skip, naming why — unless EPORTFOLIO_REQUIRE_SERVICES=1 (CI), where they fail instead.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import msgspec
import psycopg
import pytest

from adapters.bootstrap import build
from adapters.config import Config
from adapters.store.kek import ensure_kek
from service.handlers import Eportfolio

POSTGRES_URL = os.environ.get(
    "EPORTFOLIO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
NATS_ADDRESS = ("127.0.0.1", 4222)


def services_required() -> bool:
    return os.environ.get("EPORTFOLIO_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (CI) when a server the test needs is not listening."""
    if _reachable(host, port):
        return
    message = f"{name} is not listening on {host}:{port}"
    if services_required():
        pytest.fail(f"{message}, and EPORTFOLIO_REQUIRE_SERVICES=1 requires it")
    pytest.skip(f"{message}; start it to run this test (CI requires it)")


def require_postgres() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A fresh, empty schema in the test database, dropped on exit; its URL carries ?schema=."""
    require_postgres()
    schema = f"t_{uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    with fresh_schema() as schema:
        yield schema


def with_kek(config: Config, kek_file: Path | None = None) -> Config:
    """The store with a key-encryption key, as an operator sets one up before first use.

    SQLite: by default beside the data directory; PostgreSQL: give `kek_file`.
    """
    if kek_file is not None:
        config = msgspec.structs.replace(config, kek_file=kek_file)
    ensure_kek(config)
    return config


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def config(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """A store configuration: a SQLite file, or a PostgreSQL schema of its own; with a KEK."""
    if request.param == "sqlite":
        return with_kek(Config(data_dir=tmp_path_factory.mktemp("data")))
    schema = request.getfixturevalue("postgres_schema")
    kek = tmp_path_factory.mktemp("kek") / "kek"
    return with_kek(Config(database_url=f"{POSTGRES_URL}?schema={schema}"), kek)


@pytest.fixture
def app(config: Config) -> Iterator[Eportfolio]:
    """The application service on that store, closed afterwards."""
    app = build(config)
    yield app
    app.ledger.close()
