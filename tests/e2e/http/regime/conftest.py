"""The assessment regime over HTTP: one app per store for each module, a centre per test.

Starting an app costs more than most of these tests, so each module shares one per store
(SQLite and PostgreSQL) and every test builds a centre of its own in it; a centre's people
reach nothing of another centre's, so the tests stay independent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from adapters.config import Config
from adapters.http.app import create_app
from tests.conftest import POSTGRES_URL, fresh_schema, with_kek
from tests.e2e.http.conftest import HttpCentre, settings, with_signing_key
from tests.e2e.http.scenario import days_ago


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient[Litestar]]:
    data = tmp_path_factory.mktemp("regime")
    with ExitStack() as stack:
        if request.param == "sqlite":
            config = with_kek(Config(data_dir=data / "store"))
        else:
            schema = stack.enter_context(fresh_schema())
            url = f"{POSTGRES_URL}?schema={schema}"
            config = with_kek(Config(database_url=url), data / "kek")
        app = create_app(with_signing_key(config, data), settings(data / "blobs"))
        yield stack.enter_context(TestClient(app))


@pytest.fixture
def centre(served: TestClient[Litestar]) -> HttpCentre:
    """A centre of the test's own, its staff in post (in their roles and status) since 90
    days ago, so decisions and samples may be dated in the past weeks."""
    made = HttpCentre.create(served, "Northgate College")
    admin = made.as_("centre_admin")
    for key, role, status in (
        ("assessor", "assessor", "qualified"),
        ("other_assessor", "assessor", "qualified"),
        ("trainee", "assessor", "trainee"),
        ("iqa", "iqa", "qualified"),
    ):
        since = {"role": role, "qualification": status, "effective_on": days_ago(90)}
        admin.ok("PUT", made.path(f"staff/{made.people[key].id}/qualification"), since)
    return made
