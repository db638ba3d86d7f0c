"""Keys at rest: nothing in the data directory is readable by anyone but its owner.

A server on a SQLite data directory (its attachments inside it, as by default) builds a
centre, takes an upload and a webhook, checkpoints and exports; then every folder there is
0700 and every file 0600 — the SQLite files with their `-wal` and `-shm` files, the keys,
tokens, views, blobs and the signing key. A webhook's secret, which the server must keep to
sign with, is in no stored byte: it is wrapped under the key-encryption key.
"""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from adapters.config import Config
from adapters.http.app import create_app
from tests.conftest import POSTGRES_URL, with_kek
from tests.e2e.http.conftest import HttpCentre, settings, sha256, with_signing_key
from tests.pg_files import schema_files


def modes(root: Path) -> dict[str, int]:
    return {
        str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode)
        for path in [root, *root.rglob("*")]
    }


def test_a_webhook_secret_is_in_no_stored_byte(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPORTFOLIO_WEBHOOKS_ALLOW_PRIVATE", "1")
    with TestClient(create_app(config, settings(tmp_path / "blobs"))) as client:
        centre = HttpCentre.create(client, "Northgate College")
        made = centre.as_("integrator").ok("POST", "/webhooks", {"url": "http://127.0.0.1:9/h"})
    secret = made["secret"]
    assert secret.startswith("whsec_")
    raw = secret.removeprefix("whsec_").encode()
    if config.uses_postgres:
        schema = (config.database_url or "").split("schema=")[1]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            stored = schema_files(conn, schema)
    else:
        stored = {p.name: p.read_bytes() for p in config.data_dir.glob("webhooks.sqlite*")}
    assert stored
    assert not [name for name, data in stored.items() if raw in data or secret.encode() in data]


def test_the_data_directory_is_0700_and_every_file_in_it_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPORTFOLIO_WEBHOOKS_ALLOW_PRIVATE", "1")
    data = tmp_path / "data"
    config = with_signing_key(with_kek(Config(data_dir=data)), data)
    blob = b"a complaint form"
    app = create_app(config, settings(data / "blobs"))
    with TestClient(app) as client:
        centre = HttpCentre.create(client, "Northgate College")
        learner = centre.as_("learner")
        assert learner.put(f"/blobs/{sha256(blob)}", content=blob).status_code in (200, 201)
        pid = centre.enrol()
        evidence = {
            "method": "WP",
            "title": "Complaint log",
            "environment": "workplace",
            "authenticity_declared": True,
            "attachments": [{"sha256": sha256(blob), "media_type": "text/plain", "size": 16}],
        }
        learner.ok("POST", f"/portfolios/{pid}/evidence", evidence, params={"wait": "true"})
        integrator = centre.as_("integrator")
        integrator.ok("POST", "/webhooks", {"url": "http://127.0.0.1:9/hook"})
        centre.api.ok("POST", "/audit/checkpoints")
        assert centre.api.get("/audit/export").status_code == 200
        found = modes(data)  # while everything is open: the -wal and -shm files exist
    assert {"eportfolio.sqlite-wal", "keys.sqlite-wal", "tokens.sqlite-wal"} <= set(found)
    assert any(name.startswith("blobs/objects/") for name in found)
    loose = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (data / name).is_dir() else 0o600)
    }
    assert not loose, f"readable by others: {loose}"
