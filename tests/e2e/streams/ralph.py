"""A real Learning Record Store for the xAPI tests: Ralph, file-system backed, on a free port.

Ralph lives in a venv of its own (`.ci/ralph-lrs` makes it, under `.cache/ralph-venv`, or
wherever EPORTFOLIO_TEST_RALPH points): its dependencies are not ours. Without it the tests
skip, saying how to get it, unless EPORTFOLIO_REQUIRE_SERVICES=1 (CI), where they fail.

The server is Ralph's own ASGI app under uvicorn, as `ralph runserver` starts it but
without its file-watching reloader (whose worker would outlive the process we stop). Each
test gets its own directory for the statements and the credentials file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import services_required

ROOT = Path(__file__).resolve().parents[3]
USERNAME, PASSWORD = "centre-lrs", "lrs-password-5f2c"
XAPI_HEADERS = {"X-Experience-API-Version": "1.0.3"}


def ralph_venv() -> Path:
    return Path(os.environ.get("EPORTFOLIO_TEST_RALPH") or ROOT / ".cache" / "ralph-venv")


def _require() -> Path:
    venv = ralph_venv()
    if (venv / "bin" / "ralph").exists():
        return venv
    message = f"Ralph (the xAPI tests' LRS) is not installed in {venv}"
    if services_required():
        pytest.fail(f"{message}, and EPORTFOLIO_REQUIRE_SERVICES=1 requires it")
    pytest.skip(f"{message}; run `bash .ci/ralph-lrs` to install it (CI requires it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Ralph:
    url: str  # the xAPI base: statements are at url + "statements"
    directory: Path

    def statements(self) -> list[dict[str, Any]]:
        """Every statement Ralph holds, read back through its xAPI API, in the order stored
        (its file-system backend answers in file order; `ascending` would reverse it)."""
        found: list[dict[str, Any]] = []
        with httpx.Client(
            auth=(USERNAME, PASSWORD), headers=XAPI_HEADERS, timeout=10, trust_env=False
        ) as c:
            response = c.get(self.url + "statements", params={"limit": 100})
            while True:
                response.raise_for_status()
                body = response.json()
                found += body["statements"]
                if not body.get("more"):
                    return found
                response = c.get(httpx.URL(self.url).join(body["more"]))

    def stored_bytes(self) -> bytes:
        """Everything Ralph wrote to disk: its statements file."""
        return b"".join(p.read_bytes() for p in self.directory.glob("*.jsonl"))


@pytest.fixture
def ralph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ralph]:
    venv = _require()
    home = tmp_path_factory.mktemp("ralph")
    env = {
        "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "RALPH_APP_DIR": str(home),
        "RALPH_RUNSERVER_BACKEND": "fs",
        "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(home),
        "RALPH_BACKENDS__DATA__FS__DEFAULT_DIRECTORY_PATH": str(home),
    }
    subprocess.run(
        [str(venv / "bin" / "ralph"), "auth", "-u", USERNAME, "-p", PASSWORD, "-s", "all",
         "-M", "mailto:lrs@example.org", "-w"],
        env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = _free_port()
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(
        [str(venv / "bin" / "python"), "-m", "uvicorn", "ralph.api:app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/xAPI/"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(
                    url.replace("/xAPI/", "/__heartbeat__"), timeout=1, trust_env=False
                ).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    text = (home / "server.log").read_text(errors="replace")
                    raise RuntimeError(f"Ralph did not start:\n{text}") from None
                time.sleep(0.1)
        yield Ralph(url, home)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
