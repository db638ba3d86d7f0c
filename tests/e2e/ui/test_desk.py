"""The EV's desk in a real browser, against a real server holding the demo centre."""

from __future__ import annotations

import re
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page

from adapters.audit.pack.render import when as in_words
from adapters.audit.verify import verify_bundle
from tests.e2e.ui.conftest import ADMIN, Demo, api, shot

pytestmark = pytest.mark.slow
SERIOUS = {"serious", "critical"}


def sign_in(page: Page, demo: Demo, token: str) -> None:
    page.goto(f"{demo.url}/ui/")  # not signed in: sent to the sign-in form
    assert urlparse(page.url).path == "/ui/sign-in"
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{demo.url}/ui/")


def no_serious_violations(page: Page, axe: str) -> None:
    page.add_script_tag(content=axe)
    result: dict[str, Any] = page.evaluate(
        """async () => await axe.run(document, {runOnly: {type: 'tag', values:
            ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"""
    )
    found = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]
    assert found == [], page.url


def matrix(page: Page) -> list[tuple[str, str, bool]]:
    rows = page.locator("table.matrix tbody tr")
    return [
        (
            rows.nth(i).get_attribute("data-criterion") or "",
            rows.nth(i).get_attribute("data-status") or "",
            rows.nth(i).get_attribute("data-complete") == "true",
        )
        for i in range(rows.count())
    ]


def from_api(coverage: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(c["id"], c["status"], c["complete"]) for c in coverage["criteria"]]


def audit_of(demo: Demo) -> dict[str, Any]:
    with api(demo, demo.tokens["ev"]) as client:
        body: dict[str, Any] = client.get(f"/centres/{demo.centre_id}/audit").json()
    return body


def test_an_ev_signs_in_opens_an_allocated_centre_and_a_portfolio_whose_matrix_is_the_apis(
    page: Page, demo: Demo, axe_source: str
) -> None:
    page.goto(f"{demo.url}/ui/sign-in")
    shot(page, "sign-in")
    no_serious_violations(page, axe_source)
    sign_in(page, demo, demo.tokens["ev"])
    assert demo.tokens["ev"] not in page.content()  # the token is never on a page
    no_serious_violations(page, axe_source)
    page.get_by_role("link", name="Riverside Training (demo)").click()
    page.wait_for_url(f"**/ui/centres/{demo.centre_id}")
    shot(page, "centre", full=True)
    no_serious_violations(page, axe_source)
    rows = page.locator("table.portfolios tbody tr")
    assert rows.count() == len(audit_of(demo)["decisions"]) or rows.count() > 0
    first = rows.nth(0)
    portfolio_id = first.get_attribute("data-portfolio")
    with api(demo, demo.tokens["ev"]) as client:
        coverage = client.get(f"/portfolios/{portfolio_id}/coverage").json()
        sufficiency = client.get(f"/portfolios/{portfolio_id}/sufficiency").json()
    met = sum(1 for c in coverage["criteria"] if c["complete"])
    assert f"{met} / {len(coverage['criteria'])}" in first.inner_text()
    assert ("not passed" not in first.inner_text()) == sufficiency["passed"]
    first.get_by_role("link").click()
    page.wait_for_url(f"**/ui/portfolios/{portfolio_id}")
    assert matrix(page) == from_api(coverage)
    for gap in coverage["gaps"]:
        assert page.get_by_text(gap, exact=True).count() >= 1
    assert page.get_by_text(f"Policy version {sufficiency['policy_version']}").count() == 1
    shot(page, "portfolio", full=True)
    no_serious_violations(page, axe_source)
    page.goto(f"{demo.url}/ui/centres/{demo.centre_id}/trail")
    page.get_by_label("Portfolio").select_option(portfolio_id or "")
    page.get_by_role("button", name="Show this moment").click()
    page.wait_for_url(re.compile(r".*/trail\?portfolio_id="))
    with api(demo, demo.tokens["ev"]) as client:
        trail = client.get(
            f"/centres/{demo.centre_id}/audit",
            params={"portfolio_id": portfolio_id, "limit": 50},
        ).json()["trail"]
    shown = page.locator("table.trail tbody th").all_inner_texts()
    assert shown == [str(t["position"]) for t in trail]
    shot(page, "trail")
    no_serious_violations(page, axe_source)


def test_moving_as_known_at_back_before_a_decision_shows_the_earlier_state(
    page: Page, demo: Demo, axe_source: str
) -> None:
    chain = next(c for c in audit_of(demo)["decisions"] if c["outcome"] == "met")
    signed = datetime.fromisoformat(chain["assessor"]["signed_at"]).astimezone(UTC)
    before = signed.replace(second=0, microsecond=0) - timedelta(minutes=1)
    portfolio_id, criterion = chain["portfolio_id"], chain["criteria"][0]
    sign_in(page, demo, demo.tokens["ev"])
    page.goto(f"{demo.url}/ui/portfolios/{portfolio_id}")
    now = {row[0]: row for row in matrix(page)}
    page.get_by_label("As known at (UTC)").fill(before.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Show this moment").click()
    page.wait_for_url(re.compile(r".*as_known_at="))
    asked = parse_qs(urlparse(page.url).query)["as_known_at"][0]
    assert datetime.fromisoformat(asked) == before
    assert f"as known at {in_words(before)}" in page.locator("#moment").inner_text()
    with api(demo, demo.tokens["ev"]) as client:
        then = client.get(
            f"/portfolios/{portfolio_id}/coverage", params={"as_known_at": asked}
        ).json()
    assert matrix(page) == from_api(then)
    earlier = {row[0]: row for row in matrix(page)}
    decided = {c["id"]: c.get("decision_id") for c in then["criteria"]}
    assert decided[criterion] != chain["decision_id"]  # that decision was not known yet
    assert earlier != now
    assert page.locator(f"tr[data-decision='{chain['decision_id']}']").count() == 0
    shot(page, "portfolio-as-known-at")
    no_serious_violations(page, axe_source)
    page.get_by_role("button", name="Show now").click()
    page.wait_for_url(f"{demo.url}/ui/portfolios/{portfolio_id}")
    assert {row[0]: row for row in matrix(page)} == now


def test_the_pack_pdf_and_the_bundle_download_and_check_out(
    page: Page, demo: Demo, tmp_path: Path
) -> None:
    sign_in(page, demo, demo.tokens["ev"])
    portfolio_id = next(c for c in audit_of(demo)["decisions"])["portfolio_id"]
    page.goto(f"{demo.url}/ui/portfolios/{portfolio_id}")
    with page.expect_download() as pdf_download:
        page.get_by_role("link", name="Audit pack (PDF)").click()
    pdf = tmp_path / "pack.pdf"
    pdf_download.value.save_as(pdf)
    with page.expect_download() as zip_download:
        page.get_by_role("link", name="Export bundle (zip, to verify offline)").first.click()
    bundle = tmp_path / "bundle.zip"
    zip_download.value.save_as(bundle)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    assert sorted(tmp_path.glob("page-*.png")), "pdftoppm rendered no page"
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    with api(demo, demo.tokens["ev"]) as client:
        coverage = client.get(f"/portfolios/{portfolio_id}/coverage").json()
    section = text[text.index("Coverage matrix") : text.index("Sufficiency over time")]
    ids = [c["id"] for c in coverage["criteria"]]
    areas = {"performance", "knowledge", "range", "requirement"}
    starts = [  # a row's first line: its id, then its area, side by side
        words[0] for line in section.splitlines() if len(words := line.split()) > 1
        and words[0] in ids and words[1] in areas
    ]  # fmt: skip
    assert starts == ids  # every row, in the API's order
    met = sum(1 for c in coverage["criteria"] if c["complete"])
    assert f"{met} of {len(ids)} met" in text
    flat = " ".join(text.split())
    assert all(" ".join(gap.split()) in flat for gap in coverage["gaps"])
    report = verify_bundle(bundle.read_bytes())
    assert report.verified, report.lines()
    with zipfile.ZipFile(bundle) as archive:
        summary = archive.read("summary.html").decode()
    assert "Coverage matrix" in summary
    assert f'data-portfolio="{portfolio_id}"' in summary


def test_an_unallocated_centre_is_403_and_a_learner_sees_only_their_own(
    page: Page, demo: Demo, axe_source: str
) -> None:
    with api(demo, ADMIN) as admin:
        other = admin.post("/centres", json={"name": "Elsewhere College"}).json()["created_id"]
    sign_in(page, demo, demo.tokens["ev"])
    response = page.goto(f"{demo.url}/ui/centres/{other}")
    assert response is not None
    assert response.status == 403
    assert "out_of_scope" in page.content()
    shot(page, "forbidden")
    no_serious_violations(page, axe_source)
    page.goto(f"{demo.url}/ui/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{demo.url}/ui/sign-in")
    sign_in(page, demo, demo.tokens["learner"])
    own = page.locator("main a[href^='/ui/portfolios/']")
    assert own.count() >= 1
    with api(demo, demo.tokens["learner"]) as client:
        me = client.get("/me").json()["subject_id"]
    with api(demo, demo.tokens["centre_admin"]) as client:
        chains = client.get(f"/centres/{demo.centre_id}/audit").json()["decisions"]
        theirs = {c["portfolio_id"] for c in chains}
        mine = {
            pid for pid in theirs if client.get(f"/portfolios/{pid}").json()["learner_id"] == me
        }
    someone_else = sorted(theirs - mine)[0]
    response = page.goto(f"{demo.url}/ui/portfolios/{someone_else}")
    assert response is not None
    assert response.status == 403
    response = page.goto(f"{demo.url}/ui/centres/{demo.centre_id}")
    assert response is not None
    assert response.status == 403  # a learner never sees the centre's list of learners
    page.goto(f"{demo.url}/ui/")
    page.locator("main a[href^='/ui/portfolios/']").first.click()
    assert page.locator("table.matrix").count() == 1


def test_the_session_cookie_is_httponly_strict_and_expiring_and_forms_need_csrf(
    page: Page, demo: Demo
) -> None:
    sign_in(page, demo, demo.tokens["iqa"])
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "ep_desk"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["expires"] > 0  # not a forever cookie
    assert not cookie["secure"]  # plain http here; Secure is set over https
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it
    forged = page.request.post(
        f"{demo.url}/ui/go", form={"back": "/ui/"}, max_redirects=0
    )  # the right cookie, no CSRF token: a cross-site form
    assert forged.status == 403
    assert "csrf_failed" in forged.text()
    page.goto(f"{demo.url}/ui/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{demo.url}/ui/sign-in")
    page.get_by_label("Token").fill(demo.tokens["integrator"])
    page.get_by_role("button", name="Sign in").click()
    assert "does not open the desk" in page.content()
    assert demo.tokens["integrator"] not in page.content()
    assert "token" not in urlparse(page.url).query
