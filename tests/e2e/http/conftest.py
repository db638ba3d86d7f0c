"""The HTTP API under litestar's test client, on SQLite and on PostgreSQL.

`Api` speaks as one token at a time; `HttpCentre` builds a centre's people through the API
alone (the admin makes the centre and its first centre admin, who registers the rest), so
every token a test uses was issued the way a real client gets one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from adapters.audit.signing import SigningKey, write_signing_key
from adapters.config import Config
from adapters.http.app import create_app
from adapters.http.settings import HttpSettings

ADMIN_TOKEN = "test-admin-token"
SEED_000 = "CS-RCSP-H"
MAX_BLOB = 64 * 1024


def settings(tmp_path: Path) -> HttpSettings:
    return HttpSettings(
        admin_token=ADMIN_TOKEN,
        max_blob_bytes=MAX_BLOB,
        wait_seconds=10,
        blob_dir=tmp_path,
        rate_limit_writes=0,  # the limits have their own tests (test_rate_limits.py)
        rate_limit_uploads=0,
        rate_limit_failed_lookups=0,
    )


def with_signing_key(config: Config, directory: Path) -> Config:
    """The store with a fresh log key, as `serve --demo` sets it up: checkpoints are signed."""
    config = msgspec.structs.replace(config, signing_key_file=directory / "signing.key")
    write_signing_key(config.signing_key_path, SigningKey.generate())
    return config


@pytest.fixture
def app(config: Config, tmp_path: Path) -> Litestar:
    return create_app(with_signing_key(config, tmp_path), settings(tmp_path / "blobs"))


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app) as client:
        yield client


class Api:
    """Requests as one bearer token (or none)."""

    def __init__(self, client: httpx.Client | TestClient[Litestar], token: str | None) -> None:
        self.client = client
        self.token = token

    def as_(self, token: str | None) -> Api:
        return Api(self.client, token)

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        out = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        return out | dict(extra or {})

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.client.request(
            method,
            path,
            json=json,
            content=content,
            headers=self.headers(headers),
            params=params,
        )

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, json=json, **kw)

    def ok(self, method: str, path: str, json: Any = None, **kw: Any) -> Any:
        """A request that must succeed: its JSON body."""
        response = self.request(method, path, json=json, **kw)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json()


@dataclass
class Person:
    id: UUID
    token: str


@dataclass
class HttpCentre:
    """A centre with its people, every one registered through the API."""

    api: Api
    id: UUID
    admin: Person
    people: dict[str, Person] = field(default_factory=dict)
    witness_id: UUID | None = None

    @classmethod
    def create(cls, client: httpx.Client | TestClient[Litestar], name: str) -> HttpCentre:
        admin = Api(client, ADMIN_TOKEN)
        centre_id = UUID(admin.ok("POST", "/centres", {"name": name})["created_id"])
        centre = cls(admin, centre_id, Person(UUID(int=0), ADMIN_TOKEN))
        centre.staff("centre_admin", "centre_admin", by=admin)
        centre.staff("assessor", "assessor")
        centre.staff("other_assessor", "assessor")
        centre.staff("trainee", "assessor", qualification="trainee")
        centre.staff("iqa", "iqa")
        centre.learner("learner")
        centre.learner("other_learner")
        body = {"name": "Wendy Witness", "position": "Duty manager"}
        centre.witness_id = UUID(
            centre.as_("centre_admin").ok("POST", centre.path("witnesses"), body)["created_id"]
        )
        ev = admin.ok("POST", centre.path("ev-allocations"), {"name": "Evan Verifier"})
        centre.people["ev"] = Person(UUID(ev["created_id"]), ev["token"])
        integrator = admin.ok(
            "POST", "/tokens", {"role": "integrator", "centre_id": str(centre_id), "label": "MIS"}
        )
        centre.people["integrator"] = Person(UUID(integrator["subject_id"]), integrator["token"])
        return centre

    def path(self, tail: str) -> str:
        return f"/centres/{self.id}/{tail}"

    def as_(self, who: str) -> Api:
        return self.api.as_(self.people[who].token if who != "admin" else ADMIN_TOKEN)

    def staff(
        self, key: str, role: str, *, qualification: str = "qualified", by: Api | None = None
    ) -> Person:
        api = by or self.as_("centre_admin")
        body = {"name": key.replace("_", " ").title(), "role": role, "qualification": qualification}
        made = api.ok("POST", self.path("staff"), body)
        self.people[key] = Person(UUID(made["created_id"]), made["token"])
        return self.people[key]

    def learner(self, key: str) -> Person:
        made = self.as_("centre_admin").ok("POST", self.path("learners"), {"name": key.title()})
        self.people[key] = Person(UUID(made["created_id"]), made["token"])
        return self.people[key]

    def enrol(self, *, assessor: str = "assessor", learner: str = "learner", **extra: Any) -> UUID:
        body = {
            "centre_id": str(self.id),
            "learner_id": str(self.people[learner].id),
            "unit_code": SEED_000,
            "assessor_id": str(self.people[assessor].id),
            "iqa_id": str(self.people["iqa"].id),
            **extra,
        }
        return UUID(self.as_("centre_admin").ok("POST", "/portfolios", body)["created_id"])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def centre(client: TestClient[Litestar]) -> HttpCentre:
    return HttpCentre.create(client, "Northgate College")
