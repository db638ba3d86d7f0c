"""Rate limits on a real server: writes, uploads and failed token look-ups get 429 + Retry-After.

Limits are per client address and minute (here every request comes from 127.0.0.1), set
low for the test. Reads are never counted as writes; a valid token is never slowed by
someone else's bad ones until the address has used its allowance of failures.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
from litestar import Litestar

from adapters.config import Config
from adapters.http.app import create_app
from tests.e2e.http.conftest import HttpCentre, settings, sha256, with_signing_key
from tests.e2e.http.test_errors import PROBLEM
from tests.e2e.streams.servers import serve


def limited(config: Config, tmp_path: Path, **limits: int) -> Litestar:
    chosen = msgspec.structs.replace(settings(tmp_path / "blobs"), **limits)
    return create_app(with_signing_key(config, tmp_path), chosen)


def too_many(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["rule"] == "too_many_requests"
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= 60
    return seconds


def test_writes_beyond_the_limit_are_429_with_retry_after_and_write_nothing(
    config: Config, tmp_path: Path
) -> None:
    app = limited(config, tmp_path, rate_limit_writes=30)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        centre = HttpCentre.create(client, "Busy College")  # some of the 30 writes
        admin = centre.as_("centre_admin")
        made = [admin.post(centre.path("learners"), {"name": f"L{i}"}) for i in range(30)]
        statuses = [r.status_code for r in made]
        accepted = statuses.count(201)
        assert 0 < accepted < 30
        assert statuses == [201] * accepted + [429] * (30 - accepted), statuses
        too_many(made[-1])
        assert made[accepted - 1].headers["ratelimit-remaining"] == "0"
        learners = admin.ok("GET", f"/centres/{centre.id}")["learners"]
        assert len(learners) == 2 + accepted  # the centre's own two, and those answered 201
        assert admin.get("/units").status_code == 200  # reads are not writes


def test_uploads_have_their_own_limit(config: Config, tmp_path: Path) -> None:
    app = limited(config, tmp_path, rate_limit_uploads=2)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        learner = HttpCentre.create(client, "Upload College").as_("learner")
        answers = []
        for i in range(3):
            blob = f"page {i}".encode()
            answers.append(learner.request("PUT", f"/blobs/{sha256(blob)}", content=blob))
        assert [a.status_code for a in answers][:2] == [200, 200], [a.text for a in answers]
        too_many(answers[2])


def test_an_address_guessing_tokens_is_slowed_down_before_the_look_up(
    config: Config, tmp_path: Path
) -> None:
    app = limited(config, tmp_path, rate_limit_failed_lookups=3)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        valid = HttpCentre.create(client, "Guarded College").as_("learner")
        assert valid.get("/me").status_code == 200
        guesses = [valid.as_(f"ep_guess{i}").get("/me") for i in range(5)]
        assert [g.status_code for g in guesses] == [401, 401, 401, 429, 429]
        too_many(guesses[-1])
        assert valid.as_(None).get("/me").status_code == 401  # no token: nothing to guess
        too_many(valid.get("/me"))  # until the window ends, this address waits


def test_failed_look_ups_on_one_route_count_on_every_route(config: Config, tmp_path: Path) -> None:
    app = limited(config, tmp_path, rate_limit_failed_lookups=2)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        valid = HttpCentre.create(client, "Watched College").as_("learner")
        for _ in range(3):  # an address with no refusal yet is never slowed
            assert valid.get("/units").status_code == 200
        guesses = [valid.as_(f"ep_guess{i}").get("/me") for i in range(2)]
        assert [g.status_code for g in guesses] == [401, 401]
        too_many(valid.get("/units"))  # another route, a good token: the same address waits
        too_many(valid.as_("ep_guess9").post("/portfolios", {}))  # a write route too
