"""Hostile bodies get a 400 problem, never a 500, and nothing is written.

Deep nesting (which exhausted the decoder's recursion), invalid UTF-8 (which escaped as a
UnicodeDecodeError) and NUL characters inside text, on routes whose body is read by the
handler, by the policy guard (`POST /portfolios` names its centre in the body) and by the
integrator streams; and, as a law, any bytes at all.
"""

from __future__ import annotations

from uuid import uuid4

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from adapters.http.body_guard import MAX_DEPTH
from domain import commands as c
from domain.events import SampleOutcome
from tests.e2e.http.conftest import Api, HttpCentre
from tests.e2e.http.test_errors import head, problem

DEEP = b"[" * 5_000 + b"]" * 5_000


def routes(centre: HttpCentre, portfolio: str) -> list[tuple[Api, str, str]]:
    """(who, method, path): read by the handler, by the guard, by the streams plugin."""
    return [
        (centre.as_("centre_admin"), "POST", centre.path("learners")),
        (centre.as_("centre_admin"), "PUT", centre.path("sufficiency-policy")),
        (centre.as_("centre_admin"), "POST", "/portfolios"),
        (centre.as_("learner"), "POST", f"{portfolio}/evidence"),
        (centre.as_("integrator"), "POST", "/webhooks"),
    ]


@pytest.fixture
def portfolio(centre: HttpCentre) -> str:
    return f"/portfolios/{centre.enrol()}"


HOSTILE = [
    (DEEP, "nests deeper"),
    (b'{"name": ' + DEEP + b"}", "nests deeper"),
    (b'{"name": "Am\xffira"}', "not valid UTF-8"),
    (b'{"centre_id": "\xc3\x28"}', "not valid UTF-8"),
]


def test_deep_or_broken_bodies_are_400_on_every_kind_of_route(
    client: TestClient[Litestar], centre: HttpCentre, portfolio: str
) -> None:
    before = head(client)
    for body, detail in HOSTILE:
        for api, method, path in routes(centre, portfolio):
            answer = problem(api.request(method, path, content=body), 400)
            assert (answer["rule"], answer["field"]) == ("malformed_request", "body"), path
            assert detail in answer["detail"], (body[:20], path)
    assert head(client) == before


def test_nesting_up_to_the_limit_is_read_as_usual(centre: HttpCentre) -> None:
    nested: object = "deep"
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    body = msgspec.json.encode({"name": "Amira", "extra": nested})
    answer = problem(
        centre.as_("centre_admin").request("POST", centre.path("learners"), content=body), 400
    )
    assert answer["field"] == "extra"  # an unknown field, decoded and named: not a depth error


def test_a_nul_character_in_any_text_is_refused_naming_its_field(
    client: TestClient[Litestar], centre: HttpCentre, portfolio: str
) -> None:
    before = head(client)
    admin, learner = centre.as_("centre_admin"), centre.as_("learner")
    work = {"method": "WP", "environment": "workplace", "authenticity_declared": True}
    for api, path, body, field in (
        (admin, centre.path("learners"), {"name": "Am\u0000ira"}, "name"),
        (learner, f"{portfolio}/evidence", work | {"title": "Log\u0000"}, "title"),
        (
            learner,
            f"{portfolio}/evidence",
            work | {"title": "Log", "requirement_tags": ["a\u0000"]},
            "requirement_tags[0]",
        ),
        (admin, centre.path("witnesses"), {"name": "W", "position\u0000": "x"}, "position\u0000"),
    ):
        answer = problem(api.post(path, body), 400)
        assert answer["field"] == field
        assert "NUL" in answer["detail"]
    assert head(client) == before
    fine = admin.post(centre.path("learners"), {"name": "Back\\u0000slash"})  # no NUL in it
    assert fine.status_code == 201, fine.text


def test_a_command_with_a_nul_in_its_text_is_refused_whoever_builds_it() -> None:
    with pytest.raises(ValueError, match="name: text may not contain NUL"):
        c.RegisterLearner(learner_id=uuid4(), name="Am\x00ira")
    with pytest.raises(ValueError, match="actions"):
        c.RecordEvSample(
            sample_id=uuid4(),
            decision_ids=(uuid4(),),
            outcome=SampleOutcome.AGREED,
            actions=("ok", "\x00"),
        )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=300) | st.text(max_size=100).map(str.encode))
def test_any_bytes_at_all_are_answered_4xx_and_write_nothing_but_a_valid_learner(
    client: TestClient[Litestar], centre: HttpCentre, body: bytes
) -> None:
    before = head(client)
    answer = centre.as_("centre_admin").request("POST", centre.path("learners"), content=body)
    if answer.status_code == 201:  # the rare bytes that are a learner
        assert head(client) > before
        return
    problem(answer, answer.status_code)
    assert 400 <= answer.status_code < 500
    assert head(client) == before
