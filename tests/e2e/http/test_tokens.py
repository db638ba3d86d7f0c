"""Tokens expire and record their last use; `eportfolio tokens` manages them from the CLI.

A token stops working when it expires (401, saying so); its last use is kept to the minute
without a write per request; an operator lists, issues and revokes tokens from the command
line under the same rules as `POST /tokens`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from adapters.cli.main import main
from adapters.config import Config
from adapters.http.dependencies import Services
from adapters.store.tokens import open_token_store
from domain.events import Role
from tests.e2e.http.conftest import Api, HttpCentre


def services_of(client: TestClient[Litestar]) -> Services:
    services = client.app.state.services
    assert isinstance(services, Services)
    return services


def said(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().out.split())


@pytest.fixture
def cli(config: Config, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("EPORTFOLIO_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("EPORTFOLIO_DATABASE_URL", config.database_url or "")
    monkeypatch.setenv("EPORTFOLIO_KEK_FILE", str(config.kek_path))
    return config


def test_a_token_stops_working_when_it_expires(
    client: TestClient[Litestar], centre: HttpCentre
) -> None:
    learner = centre.people["learner"]
    record, secret = services_of(client).tokens.issue(
        subject_id=learner.id, role=Role.LEARNER, centre_id=centre.id, lifetime=timedelta(seconds=1)
    )
    assert record.expires_at is not None
    api = Api(client, secret)
    assert api.get("/me").status_code == 200
    time.sleep(max(0.0, (record.expires_at - datetime.now(UTC)).total_seconds()) + 0.05)
    expired = api.get("/me")
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]


def test_tokens_issued_over_http_expire_as_asked(centre: HttpCentre) -> None:
    body = {"role": "integrator", "centre_id": str(centre.id), "expires_in_days": 30}
    issued = centre.api.ok("POST", "/tokens", body)
    expires = datetime.fromisoformat(issued["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    default = centre.api.ok("POST", "/tokens", {"role": "integrator", "centre_id": str(centre.id)})
    assert datetime.fromisoformat(default["expires_at"]) - datetime.now(UTC) > timedelta(days=89)
    never = centre.api.post("/tokens", {**body, "expires_in_days": 0})
    assert (never.status_code, never.json()["field"]) == (400, "expires_in_days")


def test_the_last_use_is_kept_without_a_write_per_request(
    client: TestClient[Litestar], centre: HttpCentre
) -> None:
    tokens = services_of(client).tokens
    integrator = centre.people["integrator"]

    def last_used() -> datetime | None:
        found = [r for r in tokens.tokens(centre.id) if r.subject_id == integrator.id]
        return found[0].last_used_at

    before = datetime.now(UTC)
    api = centre.as_("integrator")
    assert api.get("/me").status_code == 200
    first = last_used()
    assert first is not None
    assert first >= before
    for _ in range(5):
        assert api.get("/me").status_code == 200
    assert last_used() == first  # within the minute: not written again


def test_the_cli_issues_lists_and_revokes_tokens(
    client: TestClient[Litestar],
    centre: HttpCentre,
    cli: Config,
    capsys: pytest.CaptureFixture[str],
) -> None:
    learner = centre.people["learner"]
    issue = ["tokens", "issue", "--role", "learner", "--subject", str(learner.id)]
    args = [*issue, "--centre", str(centre.id), "--label", "phone", "--days", "7"]
    assert main(args) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert Api(client, secret).ok("GET", "/me")["subject_id"] == str(learner.id)

    assert main([*issue, "--centre", str(centre.id), "--days", "0"]) == 2
    assert "--days is 1 to 3650" in said(capsys)
    stranger = ["tokens", "issue", "--role", "learner", "--subject", str(centre.id)]
    assert main([*stranger, "--centre", str(centre.id)]) == 2
    assert f"is not a learner of centre {centre.id}" in said(capsys)
    assert main(["tokens", "issue", "--role", "ev", "--centre", str(centre.id)]) == 2
    assert "omit centre_id" in said(capsys)

    assert main(["tokens", "list", "--centre", str(centre.id)]) == 0
    listed = said(capsys)
    assert "phone" in listed
    assert (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%d") in listed
    store = open_token_store(cli)
    try:
        phone = next(r for r in store.tokens(centre.id) if r.label == "phone")
    finally:
        store.close()
    assert main(["tokens", "revoke", str(phone.token_id)]) == 0
    assert Api(client, secret).get("/me").status_code == 401
    assert main(["tokens", "revoke", str(phone.token_id)]) == 2  # no live token any more
    assert main(["tokens", "list", "--centre", str(centre.id)]) == 0
    assert "revoked" in said(capsys)
    assert main(["tokens", "revoke", "--subject", str(learner.id)]) == 0
    assert "Revoked 1 tokens." in said(capsys)  # the one issued on registration
    assert centre.as_("learner").get("/me").status_code == 401
