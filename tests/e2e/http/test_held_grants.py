"""The guard decides on the event loop what it can from memory, and still honours revocation.

A token the store found since its last write is answered without a read (`TokenStore.held`),
and a portfolio's enrolment once held needs none either; any write to the token store (this
process's revoke, another process's, the erasure of a person) ends that at once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from uuid import UUID, uuid4

from litestar import Litestar
from litestar.testing import TestClient

from adapters.config import Config
from adapters.http.dependencies import Services
from adapters.store.tokens import open_token_store
from domain.events import Role
from tests.e2e.http.conftest import HttpCentre


def services_of(client: TestClient[Litestar]) -> Services:
    services = client.app.state.services
    assert isinstance(services, Services)
    return services


def test_a_token_found_is_held_until_the_store_changes(
    client: TestClient[Litestar], centre: HttpCentre, config: Config
) -> None:
    tokens = services_of(client).tokens
    learner = centre.people["learner"]
    other = centre.people["other_learner"]
    assert centre.as_("learner").get("/me").status_code == 200
    assert centre.as_("learner").get("/me").status_code == 200  # its use noted: found again
    held = tokens.held(learner.token)
    if config.uses_postgres:  # no cheap way to know nothing changed: every request reads
        assert held is None
        return
    assert held is not None
    assert held.subject_id == learner.id
    assert tokens.held("ep_not-a-real-token") is None  # a refused token is never held
    # any write to the store, by whichever token, and every held token is read again
    tokens.revoke_subject(other.id)
    assert tokens.held(learner.token) is None


def test_a_token_revoked_by_another_process_is_refused_at_once(
    client: TestClient[Litestar], centre: HttpCentre, config: Config
) -> None:
    portfolio = centre.enrol()
    learner = centre.as_("learner")
    for _ in range(3):  # the token and the enrolment held: decided on the loop
        assert learner.get(f"/portfolios/{portfolio}").status_code == 200
    record = services_of(client).tokens.held(centre.people["learner"].token)
    assert record is not None or config.uses_postgres
    cli = open_token_store(config)  # another connection, as `eportfolio tokens revoke` opens
    try:
        assert cli.revoke_subject(centre.people["learner"].id) >= 1
    finally:
        cli.close()
    refused = learner.get(f"/portfolios/{portfolio}")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")


def test_a_held_grant_refuses_as_the_read_one_does(
    client: TestClient[Litestar], centre: HttpCentre
) -> None:
    portfolio = centre.enrol()
    assert centre.as_("learner").get(f"/portfolios/{portfolio}").status_code == 200
    assert services_of(client).app.ledger.held_enrolment(portfolio) is not None
    for _ in range(2):  # the first reads, the second is held: the same answers
        other = centre.as_("other_learner").get(f"/portfolios/{portfolio}")
        assert other.status_code == 403
        assert other.json()["rule"] == "out_of_scope"
        iqa_writes = centre.as_("iqa").post(f"/portfolios/{portfolio}/evidence", {})
        assert iqa_writes.status_code == 403
        assert iqa_writes.json()["rule"] == "role_not_allowed"
        missing = centre.as_("learner").get(f"/portfolios/{UUID(int=7)}")
        assert missing.status_code == 404


def test_revoking_over_http_refuses_the_held_token_at_once(centre: HttpCentre) -> None:
    issued = centre.as_("admin").ok(
        "POST", "/tokens", {"role": "integrator", "centre_id": str(centre.id)}
    )
    api = centre.api.as_(issued["token"])
    for _ in range(3):
        assert api.get("/me").status_code == 200
    assert centre.as_("admin").request("DELETE", f"/tokens/{issued['token_id']}").status_code == 204
    assert api.get("/me").status_code == 401


def test_a_held_answer_never_waits_for_a_write_in_progress(tmp_path: Path) -> None:
    """`held` runs on the event loop: while a write holds the store's connection (here
    one stuck behind another process's write lock), it answers None at once, and the
    request goes to a thread as before, rather than stalling every request on the loop."""
    config = Config(data_dir=tmp_path / "data")
    tokens = open_token_store(config)
    try:
        record, secret = tokens.issue(subject_id=uuid4(), role=Role.LEARNER, centre_id=None)
        assert secret is not None
        assert tokens.find(secret) is not None
        found = tokens.find(secret)  # its use noted: found again, held since
        assert found is not None
        assert found.token_id == record.token_id
        assert tokens.held(secret) == found
        other = sqlite3.connect(config.data_dir / "tokens.sqlite", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process writing
        revoking = threading.Thread(target=tokens.revoke, args=(record.token_id,))
        revoking.start()
        time.sleep(0.2)  # the revoke now waits for the lock, holding the store's connection
        started = time.monotonic()
        assert tokens.held(secret) is None
        assert time.monotonic() - started < 0.1
        other.execute("COMMIT")
        other.close()
        revoking.join()
        assert tokens.held(secret) is None  # revoked: written since it was found
        assert tokens.find(secret) is None
    finally:
        tokens.close()
