"""Browser tests: a real `eportfolio serve --demo` and Debian's chromium, driven by
Playwright (its own browser download is never used), one browser for the whole session.

axe-core comes from the npm registry: `.ci/run` vendors it with `npm pack` into the
gitignored `.cache/`, and the fixture does the same if it is missing. Screenshots go to
`build/screenshots/` (gitignored); docs/desk/ keeps a few of them for the EV's guide.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import services_required
from tests.e2e.demo_server import serve_demo

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[3]
CACHE = ROOT / ".cache"
SHOTS = ROOT / "build" / "screenshots"
ADMIN = "ui-test-admin-token"


def _missing(what: str) -> None:
    message = f"{what}; `.ci/run` installs it (apt-get install -y chromium poppler-utils)"
    if services_required():
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Demo:
    url: str
    centre_id: str
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The README's main command, on a free port and a fresh data directory."""
    data = tmp_path_factory.mktemp("desk")
    env = {**os.environ, "EPORTFOLIO_DATA_DIR": str(data / "data"), "EPORTFOLIO_ADMIN_TOKEN": ADMIN}
    env.pop("EPORTFOLIO_DATABASE_URL", None)
    with serve_demo(data / "serve.log", env) as server:
        text = server.log.read_text()
        tokens = dict(re.findall(r"^  (\w+)\s+(\S+)  ", text, re.MULTILINE))
        centre = re.search(r"^Demo centre ([0-9a-f-]+):", text, re.MULTILINE)
        assert centre is not None, text
        yield Demo(server.url, centre[1], tokens, server.process, server.log)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _missing(f"no chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context per test: its own cookies, a laptop-sized window."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True, bypass_csp=True
    )  # bypass_csp: only so the test can inject axe-core; the pages allow no scripts
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's browser build, from the npm registry (cached under .cache/)."""
    script = CACHE / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            _missing("npm is not installed (it fetches axe-core)")
        CACHE.mkdir(exist_ok=True)
        packed = subprocess.run(
            [str(npm), "pack", "axe-core@4", "--silent", "--pack-destination", str(CACHE)],
            check=True, capture_output=True, text=True, timeout=120,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        with tarfile.open(CACHE / packed) as archive:
            member = archive.extractfile("package/axe.min.js")
            assert member is not None
            script.parent.mkdir(exist_ok=True)
            script.write_bytes(member.read())
    return script.read_text(encoding="utf-8")


def api(demo: Demo, token: str) -> httpx.Client:
    return httpx.Client(base_url=demo.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def shot(page: Page, name: str, *, full: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    return path
