"""Erasure by crypto-shredding, shown on the demo centre over the API.

A learner of the demo centre, with an attachment of their own and one shared with another
learner, has every portfolio closed under a zero-year retention policy and is erased.
At once — before anything is rebuilt — none of their personal text is in any byte of any
file of the store (the SQLite files with their WAL, free pages and page slack, or
PostgreSQL's table files), nor in the blob store. Every view is then rebuilt from zero:
the live purge equals the rebuild (documents and the API's answers alike), and none of
their text is in the API answers, any table, or a new export; their key's bytes are not in
the key store's files; yet the EV audit view lists every decision it listed before, and
the export verifies.
"""

from __future__ import annotations

import html
import io
import sqlite3
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import psycopg
from litestar import Litestar
from litestar.testing import TestClient

from adapters.audit.verify import verify_bundle
from adapters.config import Config
from adapters.demo import DemoSummary, load_demo
from adapters.http.dependencies import Services
from adapters.http.ui.session import SESSION_COOKIE
from adapters.store.kek import load_ring
from adapters.store.subject_keys import key_aad
from domain.events import ERASED, Event, PortfolioEvent
from domain.personal import sealable
from tests.conftest import POSTGRES_URL
from tests.e2e.http.conftest import ADMIN_TOKEN, Api, HttpCentre, sha256
from tests.pg_files import schema_files

ERASE = {"reason": "Art. 17 request; retention period over"}


def services_of(client: TestClient[Litestar]) -> Services:
    services = client.app.state.services
    assert isinstance(services, Services)
    return services


def token(admin: Api, role: str, centre_id: UUID, subject: UUID | None = None) -> Api:
    body: dict[str, Any] = {"role": role, "centre_id": str(centre_id)}
    if subject is not None:
        body["subject_id"] = str(subject)
    return admin.as_(admin.ok("POST", "/tokens", body)["token"])


def personal_texts(services: Services) -> dict[UUID, set[str]]:
    """Every sealable text in the log, by whose data it is (a learner, staff, ...)."""
    ledger = services.app.ledger
    texts: dict[UUID, set[str]] = defaultdict(set)
    for notification in ledger.notifications():
        event = ledger.decode(notification).event
        if not isinstance(event, Event) or not event.PERSONAL:
            continue
        if isinstance(event, PortfolioEvent):
            subject = ledger.learner_of(event.portfolio_id)
        else:
            subject = getattr(event, event.SUBJECT or "")
        for field in sealable(event):
            value = getattr(event, field)
            texts[subject].update(value if isinstance(value, tuple) else [value])
    return texts


def table_texts(config: Config) -> Iterator[str]:
    """Every row of every table of the store, as text: views, log, tokens, keys."""
    if not config.uses_postgres:
        for path in sorted(config.data_dir.glob("*.sqlite")):
            with sqlite3.connect(path) as conn:
                tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                for (table,) in tables.fetchall():
                    for row in conn.execute(f'SELECT * FROM "{table}"'):
                        yield _text(row)
        return
    url = config.database_url or ""
    schema = parse_qs(urlsplit(url).query)["schema"][0]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        listed = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        for (table,) in listed:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                yield _text(row)


def _text(row: tuple[Any, ...]) -> str:
    return " ".join(
        bytes(v).decode("utf-8", "replace") if isinstance(v, bytes | memoryview) else str(v)
        for v in row
    )


def key_bytes(config: Config, subject: UUID) -> tuple[bytes, bytes]:
    """The subject's key as stored (wrapped under the KEK) and unwrapped."""
    query = "SELECT wrapped_key, kek_id FROM {} WHERE subject_id = ?"
    if not config.uses_postgres:
        with closing(sqlite3.connect(config.data_dir / "keys.sqlite")) as lite:
            row = lite.execute(query.format("subject_keys"), (str(subject),)).fetchone()
    else:
        schema = parse_qs(urlsplit(config.database_url or "").query)["schema"][0]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            table = f'"{schema}".subject_keys'
            row = conn.execute(query.format(table).replace("?", "%s"), (str(subject),)).fetchone()
    assert row is not None
    wrapped = bytes(row[0])
    return wrapped, load_ring(config).unwrap(row[1], wrapped, key_aad(subject))


def file_texts(config: Config, *elsewhere: Path) -> dict[str, bytes]:
    """Every byte on disk of the store: its files (SQLite) or its tables' files (PostgreSQL),
    and every file under the other folders given (attachments, keys)."""
    found: dict[str, bytes] = {}
    if config.uses_postgres:
        schema = parse_qs(urlsplit(config.database_url or "").query)["schema"][0]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            found |= {f"table {t}": data for t, data in schema_files(conn, schema).items()}
    else:
        elsewhere = (config.data_dir, *elsewhere)
    for root in elsewhere:
        found |= {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return found


def api_texts(ev: Api, admin: Api, integrator: Api, centre_id: UUID, pids: list[UUID]) -> str:
    """What the API answers about the centre and the learner's portfolios, to everyone."""
    answers = [admin.get(f"/centres/{centre_id}").text]
    after: int | None = 0
    while after is not None:
        page = ev.ok("GET", f"/centres/{centre_id}/audit", params={"after": str(after)})
        answers.append(str(page))
        after = page["next_after"]
    for pid in pids:
        for tail in ("", "/coverage", "/sufficiency", "/history"):
            answers.append(ev.get(f"/portfolios/{pid}{tail}").text)
    after = 0
    while True:
        feed = integrator.ok("GET", "/events", params={"after": str(after), "limit": "1000"})
        answers.append(str(feed["events"]))
        if not feed["events"]:
            break
        after = feed["next_after"]
    return "\n".join(answers)


def desk_texts(client: TestClient[Litestar], secret: str, centre_id: UUID, pids: list[UUID]) -> str:
    """What the desk's pages show someone signed in with `secret`: the centre, its trail and
    each portfolio (a session opened directly; signing in is the browser tests' business)."""
    session_id, _ = client.app.state.desk_sessions.open(secret)
    pages = [f"/ui/centres/{centre_id}", f"/ui/centres/{centre_id}/trail"]
    pages += [f"/ui/portfolios/{pid}" for pid in pids]
    texts = []
    client.cookies.set(SESSION_COOKIE, session_id)
    try:
        for page in pages:
            response = client.get(page)
            assert response.status_code == 200, (page, response.status_code)
            texts.append(response.text)
    finally:
        client.cookies.delete(SESSION_COOKIE)
    return html.unescape("\n".join(texts))


def export_texts(ev: Api, centre_id: UUID) -> tuple[bytes, str]:
    ev.ok("POST", "/audit/checkpoints")
    response = ev.get("/audit/export", params={"centre_id": str(centre_id)})
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        text = "\n".join(bundle.read(n).decode("utf-8", "replace") for n in bundle.namelist())
    return response.content, text


def decisions(ev: Api, centre_id: UUID) -> dict[str, tuple[str, str]]:
    page = ev.ok("GET", f"/centres/{centre_id}/audit", params={"limit": "1"})
    return {d["decision_id"]: (d["outcome"], d["state"]) for d in page["decisions"]}


def view_docs(services: Services) -> dict[tuple[str, str], bytes]:
    docs: dict[tuple[str, str], bytes] = {}
    for runner in services.projections:
        for kind in runner.store.kinds():
            after = ""
            while page := runner.store.list(kind, after_key=after, limit=1000):
                docs.update({(kind, d.key): d.body for d in page})
                after = page[-1].key
    return docs


def test_an_erased_demo_learner_is_nowhere_yet_every_decision_stays_and_the_export_verifies(
    client: TestClient[Litestar], config: Config, tmp_path: Path
) -> None:
    services = services_of(client)
    demo: DemoSummary = load_demo(services.app.ledger, services.app.specs)
    admin = Api(client, ADMIN_TOKEN)
    centre = demo.centre_id
    centre_admin = token(admin, "centre_admin", centre, demo.people["centre_admin:Morgan Reid"])
    ev = admin.as_(
        admin.ok("POST", "/tokens", {"role": "ev", "subject_id": str(demo.people["ev"])})["token"]
    )
    integrator = token(admin, "integrator", centre)
    amira, ben = demo.people["learner:Amira Khan"], demo.people["learner:Ben Okafor"]
    pids = [pid for name, _, _, pid in demo.portfolios if name == "Amira Khan"]
    bens = [pid for name, _, _, pid in demo.portfolios if name == "Ben Okafor"]

    amira_api = token(admin, "learner", centre, amira)
    # an attachment of Amira's own, and one Ben attached too
    own, shared = b"Amira's signed complaint form", b"the shop's returns procedure"
    for who, pid, blob, title in (
        (amira, pids[0], own, "Complaint log for Mrs Jones, written by Amira"),
        (amira, pids[0], shared, "Returns procedure I followed"),
        (ben, bens[0], shared, "Returns procedure"),
    ):
        learner = amira_api if who == amira else token(admin, "learner", centre, who)
        assert learner.put(f"/blobs/{sha256(blob)}", content=blob).status_code in (200, 201)
        attachment = {"sha256": sha256(blob), "media_type": "text/plain", "size": len(blob)}
        evidence = {
            "method": "WP",
            "title": title,
            "description": "Kept at the service desk",
            "environment": "workplace",
            "attachments": [attachment],
            "authenticity_declared": True,
        }
        learner.ok("POST", f"/portfolios/{pid}/evidence", evidence)

    hold = {"learner_id": str(amira), "reason": "appeal", "note": "Amira appeals her PC4 result"}
    hold_id = centre_admin.ok("POST", f"/centres/{centre}/legal-holds", hold)["created_id"]
    centre_admin.ok("POST", f"/centres/{centre}/legal-holds/{hold_id}/lift", {"note": "Upheld"})
    centre_admin.ok("PUT", f"/centres/{centre}/retention-policy", {"records_years": 0})
    refused = centre_admin.post(f"/learners/{amira}/erasure", ERASE)
    assert refused.status_code == 409
    assert refused.json()["rule"] == "retention_period_applies"
    assert "neither certified nor withdrawn" in refused.json()["detail"]
    centre_admin.ok("POST", f"/portfolios/{pids[0]}/certification", {"certificate_ref": "C-9"})
    for pid in pids[1:]:
        centre_admin.ok("POST", f"/portfolios/{pid}/withdrawal", {"reason": "Amira moved away"})

    texts = personal_texts(services)
    others = set().union(*(t for subject, t in texts.items() if subject != amira))
    hers = texts[amira] - others  # e.g. a shared template title is nobody's in particular
    # the demo's texts are templates that other learners share: those are nobody's in
    # particular; what is hers alone must go (and every field of hers reads ERASED, below)
    assert {
        "Amira Khan",
        "Complaint log for Mrs Jones, written by Amira",
        "Amira appeals her PC4 result",
    } <= hers
    before = decisions(ev, centre)
    assert before
    # the scans below can see her: before the erasure, they do
    assert "Amira Khan" in "\n".join(table_texts(config))
    assert "Mrs Jones" in api_texts(ev, centre_admin, integrator, centre, pids)
    assert "Amira Khan" in desk_texts(client, str(ev.token), centre, pids)
    keys = key_bytes(config, amira)

    on_disk = file_texts(config, tmp_path)
    assert [where for where, data in on_disk.items() if b"Mrs Jones" in data]  # it sees her

    erased = centre_admin.post(f"/learners/{amira}/erasure", ERASE, params={"wait": "true"})
    assert erased.status_code == 201, erased.text
    assert erased.json()["blobs_deleted"] == 1  # her own; the shared one is Ben's evidence too
    on_disk = file_texts(config, tmp_path)  # at once: no rebuild, no restart
    for text in sorted(hers):
        left = sorted(where for where, data in on_disk.items() if text.encode() in data)
        assert not left, f"{text!r} is still on disk in {left}"
    live, answered = view_docs(services), api_texts(ev, centre_admin, integrator, centre, pids)
    for runner in services.projections:
        runner.rebuild()
    assert view_docs(services) == live  # the live purge left what a rebuild derives
    assert api_texts(ev, centre_admin, integrator, centre, pids) == answered

    bundle, exported = export_texts(ev, centre)
    found = {
        "API answers": api_texts(ev, centre_admin, integrator, centre, pids),
        "store tables": "\n".join(table_texts(config)),
        "export": exported,
        "the desk": desk_texts(client, str(ev.token), centre, pids),
    }
    for where, text in found.items():
        leaked = sorted(t for t in hers if t in text)
        assert not leaked, f"{where} still holds {leaked}"
    assert ERASED in found["API answers"]
    assert ERASED in found["the desk"]  # shown as "[erased]", not as a blank or an error
    blob_files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert not [p for p in blob_files if own in p.read_bytes()]
    assert [p for p in blob_files if shared in p.read_bytes()]
    if not config.uses_postgres:
        for path in config.data_dir.glob("keys.sqlite*"):
            for key in keys:
                assert key not in path.read_bytes(), f"the destroyed key is still in {path.name}"

    ledger = services.app.ledger
    for pid in pids:
        for event in ledger.portfolio_events(pid):
            for field in sealable(event):
                value = getattr(event, field)
                assert set(value if isinstance(value, tuple) else [value]) == {ERASED}
    assert services.app.centre(centre).learners[amira] == ERASED
    assert decisions(ev, centre) == before  # every decision, its outcome and chain state
    report = verify_bundle(bundle)
    assert report.verified, report.problems
    again = centre_admin.post(f"/learners/{amira}/erasure", ERASE)
    assert (again.status_code, again.json()["rule"]) == (409, "already_erased")
    assert amira_api.get(f"/portfolios/{pids[0]}").status_code == 401  # her tokens revoked


def test_a_legal_hold_blocks_erasure_until_it_is_lifted(centre: HttpCentre) -> None:
    admin, learner = centre.as_("centre_admin"), centre.people["learner"]
    pid = centre.enrol()
    admin.ok("PUT", centre.path("retention-policy"), {"records_years": 0})
    admin.ok("POST", f"/portfolios/{pid}/withdrawal", {"reason": "left the job"})
    hold = {"learner_id": str(learner.id), "reason": "appeal", "note": "Appeal against unit"}
    hold_id = admin.ok("POST", centre.path("legal-holds"), hold)["created_id"]

    held = admin.post(f"/learners/{learner.id}/erasure", ERASE)
    assert held.status_code == 409
    assert held.json()["rule"] == "legal_hold_applies"
    assert "legal hold (appeal) open since" in held.json()["detail"]

    admin.ok("POST", centre.path(f"legal-holds/{hold_id}/lift"), {"note": "appeal dismissed"})
    assert admin.post(f"/learners/{learner.id}/erasure", ERASE).status_code == 201
    assert centre.as_("learner").get(f"/portfolios/{pid}").status_code == 401  # token revoked


def test_the_retention_period_blocks_erasure_until_it_has_run(centre: HttpCentre) -> None:
    admin, learner = centre.as_("centre_admin"), centre.people["learner"]
    pid = centre.enrol()
    admin.ok("POST", f"/portfolios/{pid}/withdrawal", {"reason": "Left the employer"})

    retained = admin.post(f"/learners/{learner.id}/erasure", ERASE)
    assert retained.status_code == 409
    assert retained.json()["rule"] == "retention_period_applies"
    assert "kept 3 years after" in retained.json()["detail"]
    # nothing recorded, nothing destroyed: the learner still reads as themself
    assert "Learner" in admin.get(f"/centres/{centre.id}").text
    other = centre.people["other_learner"]
    assert admin.post(f"/learners/{other.id}/erasure", ERASE).status_code == 201  # no records
    b = HttpCentre.create(centre.api.client, "Southgate")
    elsewhere = b.as_("centre_admin").post(f"/learners/{learner.id}/erasure", ERASE)
    assert elsewhere.status_code == 404
