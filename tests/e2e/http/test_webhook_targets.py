"""Webhook targets: every spelling of a private address, and names pointing at one, refused.

Registration resolves the host as the delivery will (`getaddrinfo`, which reads
`0x7f000001`, `2130706433`, `0177.0.0.1` and `127.1` as 127.0.0.1), so an integrator cannot
make the server call its own network; `EPORTFOLIO_WEBHOOKS_ALLOW_PRIVATE=1` lets them
(tests, an on-premises MIS).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from adapters.config import Config
from adapters.http.app import create_app
from adapters.streams.signing import is_public
from tests.e2e.http.conftest import HttpCentre, settings
from tests.e2e.http.test_errors import problem

PRIVATE = [
    "https://0x7f000001/hook",
    "https://2130706433/hook",
    "https://0177.0.0.1/hook",
    "https://127.1/hook",
    "https://0/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "https://10.1/hook",
    "https://169.254.169.254/latest/meta-data",  # a cloud's metadata service
    "https://192.168.1.1./hook",
]
PUBLIC = "https://93.184.215.14/hook"  # an IANA address: registered, never called (no events)


def hook(url: str) -> dict[str, object]:
    return {"url": url, "types": ["uk.eportfolio.centre.registered.v1"]}


def test_every_spelling_of_a_private_address_is_refused_at_registration(
    centre: HttpCentre,
) -> None:
    integrator = centre.as_("integrator")
    for url in PRIVATE:
        answer = problem(integrator.post("/webhooks", hook(url)), 422)
        assert (answer["rule"], answer["field"]) == ("bad_endpoint", "url"), url
    assert integrator.ok("GET", "/webhooks") == []
    made = integrator.post("/webhooks", hook(PUBLIC))
    assert made.status_code == 201, made.text


def test_a_name_that_resolves_to_a_private_address_is_refused(centre: HttpCentre) -> None:
    name = socket.gethostname()  # in /etc/hosts: loopback, or the machine's private address
    addresses = {info[4][0] for info in socket.getaddrinfo(name, 443)}
    if all(is_public(str(a)) for a in addresses):
        pytest.skip(f"{name} resolves to public addresses only here: {addresses}")
    answer = problem(centre.as_("integrator").post("/webhooks", hook(f"https://{name}/h")), 422)
    assert "non-public" in answer["detail"]
    unknown = problem(centre.as_("integrator").post("/webhooks", hook("https://x.invalid/")), 422)
    assert "cannot resolve" in unknown["detail"]


def test_private_targets_are_allowed_when_the_operator_says_so(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPORTFOLIO_WEBHOOKS_ALLOW_PRIVATE", "1")
    app: Litestar = create_app(config, settings(tmp_path / "blobs"))
    with TestClient(app) as client:
        integrator = HttpCentre.create(client, "On-premises").as_("integrator")
        for url in ("http://127.0.0.1:9/hook", "https://0x7f000001/hook"):
            made = integrator.post("/webhooks", hook(url))
            assert made.status_code == 201, made.text
