"""Attachments are tamper-evident: checked when read, by `verify --store`, and in exports.

An attachment overwritten on disk is refused over HTTP (a problem, not the altered bytes
with 200) and named by `verify --store`, with the evidence that refers to it. An export can
carry the attachments (opt-in), each listed in the signed manifest; the offline verifier
checks each one against the hash its evidence event names, and tells one that went with an
erased learner from one that is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from adapters.audit import bundle as b
from adapters.audit.verify import verify_bundle
from adapters.cli.main import main
from adapters.config import Config
from adapters.http.dependencies import Services
from tests.e2e.http.conftest import ADMIN_TOKEN, Api, HttpCentre, sha256

ERASE = {"reason": "Art. 17 request; retention period over"}


def services_of(client: TestClient[Litestar]) -> Services:
    services = client.app.state.services
    assert isinstance(services, Services)
    return services


def attach(centre: HttpCentre, who: str, pid: UUID, data: bytes) -> str:
    """Upload `data` and submit it as evidence; the evidence id."""
    api = centre.as_(who)
    assert api.put(f"/blobs/{sha256(data)}", content=data).status_code in (200, 201)
    evidence = {
        "method": "WP",
        "title": "Complaint log",
        "environment": "workplace",
        "authenticity_declared": True,
        "attachments": [{"sha256": sha256(data), "media_type": "text/plain", "size": len(data)}],
    }
    created = api.ok("POST", f"/portfolios/{pid}/evidence", evidence, params={"wait": "true"})
    return str(created["created_id"])


def stored(tmp_path: Path, data: bytes) -> Path:
    digest = sha256(data)
    return tmp_path / "blobs" / "objects" / digest[:2] / digest


def problems(report: Any) -> str:
    return "\n".join(str(p) for p in report.problems)


FORM = b"Mrs Jones's signed complaint form"


def test_an_attachment_altered_on_disk_is_refused_over_http_and_named_by_verify_store(
    client: TestClient[Litestar], centre: HttpCentre, tmp_path: Path
) -> None:
    evidence_id = attach(centre, "learner", centre.enrol(), FORM)
    assessor = centre.as_("assessor")
    assert assessor.get(f"/blobs/{sha256(FORM)}").content == FORM
    audit = services_of(client).audit
    clean = audit.verify_store()
    assert clean.verified, clean.lines()
    assert "1 attachments in the blob store hash to the names their evidence gives" in clean.checked

    stored(tmp_path, FORM).write_bytes(b"Mrs Jones's signed complaint form, amended")
    refused = assessor.get(f"/blobs/{sha256(FORM)}")
    assert refused.status_code == 500
    assert refused.headers["content-type"].startswith("application/problem+json")
    body = refused.json()
    assert (body["rule"], body["field"]) == ("blob_altered", "sha256")
    assert "altered on disk" in body["detail"]
    assert b"amended" not in refused.content
    found = audit.verify_store()
    assert not found.verified
    assert f"attachment {sha256(FORM)} of evidence {evidence_id} now hashes to" in problems(found)

    stored(tmp_path, FORM).unlink()
    missing = audit.verify_store()
    assert f"of evidence {evidence_id} is missing from the blob store" in problems(missing)


def test_verify_store_on_the_command_line_exits_1_for_an_altered_attachment(
    centre: HttpCentre,
    config: Config,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    attach(centre, "learner", centre.enrol(), FORM)
    centre.api.ok("POST", "/audit/checkpoints")
    for name, value in {
        "EPORTFOLIO_DATA_DIR": str(config.data_dir),
        "EPORTFOLIO_DATABASE_URL": config.database_url or "",
        "EPORTFOLIO_KEK_FILE": str(config.kek_path),
        "EPORTFOLIO_SIGNING_KEY_FILE": str(tmp_path / "signing.key"),
        "EPORTFOLIO_BLOB_DIR": str(tmp_path / "blobs"),
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["verify", "--store"]) == 0
    stored(tmp_path, FORM).write_bytes(b"something else entirely")
    assert main(["verify", "--store"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"attachment {sha256(FORM)} of evidence" in out
    assert "NOT verified. 1 problems." in out
    bundle = tmp_path / "out.zip"
    assert main(["export", "--attachments", str(bundle)]) == 2  # refuses to export it
    assert "altered on disk" in " ".join(capsys.readouterr().out.split())
    assert not bundle.exists()


def test_an_export_can_carry_the_attachments_and_the_offline_verifier_checks_them(
    client: TestClient[Litestar], centre: HttpCentre, tmp_path: Path
) -> None:
    evidence_id = attach(centre, "learner", centre.enrol(), FORM)
    other = b"the other learner's own photo"
    gone_pid = centre.enrol(learner="other_learner")
    attach(centre, "other_learner", gone_pid, other)
    admin = centre.as_("centre_admin")
    admin.ok("PUT", centre.path("retention-policy"), {"records_years": 0})
    admin.ok("POST", f"/portfolios/{gone_pid}/withdrawal", {"reason": "moved away"})
    erased = admin.post(f"/learners/{centre.people['other_learner'].id}/erasure", ERASE)
    assert erased.json()["blobs_deleted"] == 1
    ev = Api(client, ADMIN_TOKEN)
    ev.ok("POST", "/audit/checkpoints")
    scope = {"centre_id": str(centre.id)}

    plain = ev.get("/audit/export", params=scope)
    assert not [n for n in b.read_zip(plain.content) if n.startswith(b.ATTACHMENTS)]  # opt-in
    exported = ev.get("/audit/export", params={**scope, "attachments": "true"})
    assert exported.status_code == 200, exported.text
    files = b.read_zip(exported.content)
    assert files[b.ATTACHMENTS + sha256(FORM)] == FORM
    assert b.ATTACHMENTS + sha256(other) not in files  # it went with the erased learner
    assert f"file {sha256(FORM)} {b.ATTACHMENTS}{sha256(FORM)}" in files[b.MANIFEST].decode()
    assert "attachments included" in files[b.MANIFEST].decode()
    report = verify_bundle(exported.content)
    assert report.verified, report.lines()
    assert (
        "1 attachments in the bundle hash to the names their evidence gives; "
        "1 went with erased learners, as erasure requires" in report.checked
    )

    name = b.ATTACHMENTS + sha256(FORM)
    altered = verify_bundle(b.write_zip({**files, name: b"a forged form"}))
    assert f"{name} was changed after export" in problems(altered)
    assert f"attachment {sha256(FORM)} of evidence {evidence_id} now hashes to" in problems(altered)
    dropped = verify_bundle(b.write_zip({k: v for k, v in files.items() if k != name}))
    assert f"of evidence {evidence_id} is missing from the bundle" in problems(dropped)
    stray = b.ATTACHMENTS + sha256(b"planted")
    planted = verify_bundle(b.write_zip({**files, stray: b"planted"}))
    assert f"{stray} is not an attachment of any exported evidence" in problems(planted)

    stored(tmp_path, FORM).write_bytes(b"tampered")
    refused = ev.get("/audit/export", params={**scope, "attachments": "true"})
    assert (refused.status_code, refused.json()["rule"]) == (500, "blob_altered")
