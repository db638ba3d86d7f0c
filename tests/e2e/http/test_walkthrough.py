"""docs/http.md's walk-through, run as written: its shell blocks, with bash, curl and jq,
against a real `eportfolio serve --demo`.

The blocks are read from the document itself, so the document and this test cannot drift:
a step that no longer works as written fails here. Only the two placeholders a reader fills
in are filled in (the server's address and the administrator's token), and `./run` is the
project's command, as it is for a reader at the repository root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import services_required
from tests.e2e.demo_server import Demo, serve_demo

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "http.md"
ADMIN = "walkthrough-admin-token"
TOOLS = ("bash", "curl", "jq", "sha256sum")
BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
STEP = re.compile(r"^# (\d+)\. ", re.MULTILINE)
PROBLEM = re.compile(r"urn:eportfolio:problem:(\w+)")
NAMES = (
    "CENTRE", "CA", "ASSESSOR", "IQA", "LEARNER", "PORTFOLIO", "OBS", "SHA", "ETAG", "BEFORE",
    "EV", "LEARNER_ID", "HOLD",
)  # fmt: skip


def shell_blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Demo]:
    """What the document's first block starts, on a free port and a fresh data directory."""
    first = shell_blocks()[0].split("#")[0].split()
    assert first == ["./run", "eportfolio", "serve", "--demo"], "the doc starts another way"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            message = f"no {tool} on PATH; `.ci/run` installs it (apt-get install -y curl jq)"
            if services_required():
                pytest.fail(message)
            pytest.skip(message)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPORTFOLIO_")}
    env |= {"EPORTFOLIO_DATA_DIR": str(tmp_path / "data"), "EPORTFOLIO_ADMIN_TOKEN": ADMIN}
    with serve_demo(tmp_path / "serve.log", env) as demo:
        yield demo


def _script(blocks: list[str], url: str) -> str:
    """The blocks after the server's, in order, as one bash script; a marker line is echoed
    before each numbered step and each block, and the variables the doc sets at the end."""
    walk, *rest = blocks
    filled = {
        "API=http://127.0.0.1:8000\n": f"API={url}\n",
        "ADMIN=...": f"ADMIN={ADMIN}  #",
    }
    for placeholder, value in filled.items():
        assert walk.count(placeholder) == 1, f"the walk-through no longer sets {placeholder}"
        walk = walk.replace(placeholder, value)
    walk = STEP.sub(lambda m: f"{_marker(f'step {m[1]}')}\n{m[0]}", walk)
    parts = ["set -euo pipefail", walk]
    parts += [f"{_marker(f'block {n}')}\n{block}" for n, block in enumerate(rest, start=1)]
    parts.append(_marker("vars"))
    parts += [f'printf "%s=%s\\n" {name} "${{{name}-}}"' for name in NAMES]
    return "\n".join(parts) + "\n"


def _marker(name: str) -> str:
    """A line of its own, even after a body curl printed without a final newline."""
    return f'printf "\\n@@ %s\\n" "{name}"'


def _sections(out: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    key = "start"
    for line in out.splitlines(keepends=True):
        if line.startswith("@@ "):
            key = line[3:].strip()
            sections[key] = ""
        else:
            sections[key] = sections.get(key, "") + line
    return sections


def _values(text: str) -> list[Any]:
    """The JSON values printed one after another (jq's output, curl's bodies)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while (at := _skip_space(text, at)) < len(text):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def test_the_walkthrough_runs_as_written(server: Demo, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shim = work / "run"  # the reader's ./run at the repository root: the project's command
    shim.write_text(
        f'#!/bin/sh\n[ "$1" = eportfolio ] || exit 64\nshift\n'
        f'PYTHONPATH="{ROOT}" exec "{sys.executable}" -m adapters.cli.main "$@"\n'
    )
    shim.chmod(0o755)
    script = work / "walkthrough.sh"
    script.write_text(_script(shell_blocks()[1:], server.url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPORTFOLIO_")}
    done = subprocess.run(
        ["bash", str(script)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr, server.log.read_text()[-3000:])
    out = _sections(done.stdout)
    found = dict(line.split("=", 1) for line in out["vars"].split())
    assert all(found[name] not in ("", "null") for name in NAMES), found

    for step in map(str, range(1, 11)):  # the walk-through: nothing refused
        assert not PROBLEM.search(out[f"step {step}"]), (step, out[f"step {step}"])
    assert "created_id" in out["step 6"]  # the evidence
    assert "created_id" in out["step 7"]  # the decision, at the version read (If-Match)
    complete, gaps, passed, figures = _values(out["step 8"])
    assert (complete, passed) == (False, False)  # one decision does not complete the unit
    assert gaps
    assert isinstance(figures, dict)
    past_gaps, *known_then = _values(out["step 9"])
    assert isinstance(past_gaps, list)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        iqa = {"Authorization": f"Bearer {found['IQA']}"}
        history = client.get(f"/portfolios/{found['PORTFOLIO']}/history", headers=iqa).json()
    assert "decision" in history[-1]["event_type"]
    assert known_then == [entry["summary"] for entry in history[:-1]]  # all but the decision
    assert _values(out["step 10"])  # the EV reads the centre's trail

    tamper = out["block 1"]  # the tamper-evident log: the EV exports, the verifier agrees
    assert not PROBLEM.search(tamper), tamper
    assert isinstance(_values(tamper.split()[0])[0], int)  # the checkpoint's tree size
    assert "Verified." in tamper
    assert (work / "log.vkey").read_text().startswith("eportfolio.local/")
    refused = PROBLEM.findall(out["block 2"])  # retention: refused as the doc says, and why
    assert refused == ["unit_not_complete", "certification_refused", "legal_hold_applies"]
    assert '"reasons"' in out["block 2"]
