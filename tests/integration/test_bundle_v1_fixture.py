"""Bundles exported before the verifier streamed (tests/fixtures/bundle-v1) still verify.

They were made by `eportfolio export` of a demo centre; an EV may hold such a bundle for
years, so every later release must verify it, against the key and the earlier checkpoint
the EV kept, and must still name an event changed in it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from adapters.audit import bundle as b
from adapters.audit.verify import verify_bundle
from adapters.cli.main import main

FIXTURE = Path(__file__).parents[1] / "fixtures" / "bundle-v1"
BUNDLES = ("full.zip", "portfolio.zip")


def trust() -> dict[str, str]:
    return {
        "trusted_key": (FIXTURE / "public-key.txt").read_text(),
        "trusted_checkpoint": (FIXTURE / "trusted-checkpoint.note").read_text(),
    }


@pytest.mark.parametrize("bundle", BUNDLES)
def test_a_bundle_of_the_first_format_verifies_against_the_kept_key_and_checkpoint(
    bundle: str,
) -> None:
    report = verify_bundle((FIXTURE / bundle).read_bytes(), **trust())
    assert report.verified, report.lines()
    assert any(
        "consistent with the trusted checkpoint of size 429" in line for line in report.checked
    )


@pytest.mark.parametrize("bundle", BUNDLES)
def test_the_cli_verifies_a_bundle_of_the_first_format(
    bundle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["verify", str(FIXTURE / bundle), "--trusted-key", str(FIXTURE / "public-key.txt")]
    args += ["--trusted-checkpoint", str(FIXTURE / "trusted-checkpoint.note")]
    assert main(args) == 0
    assert "Verified." in capsys.readouterr().out


@pytest.mark.parametrize("bundle", BUNDLES)
def test_an_event_changed_in_a_bundle_of_the_first_format_is_named(bundle: str) -> None:
    files = b.read_zip((FIXTURE / bundle).read_bytes())
    rows = json.loads(files[b.STORED])
    target = rows[len(rows) // 2]
    state = bytearray(base64.b64decode(target["state"]))
    state[len(state) // 2] ^= 0x01
    target["state"] = base64.b64encode(state).decode()
    files[b.STORED] = json.dumps(rows, indent=1).encode()
    report = verify_bundle(b.write_zip(files), **trust())
    assert not report.verified
    assert any(p.position == target["position"] for p in report.problems), report.lines()
    assert any("events/stored.json was changed after export" in p.what for p in report.problems)


def test_verify_off_a_terminal_or_quiet_prints_the_report_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for quiet in ([], ["--quiet"]):
        assert main(["verify", str(FIXTURE / "full.zip"), *quiet]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""  # no progress bar when stderr is not a terminal
        assert captured.out.rstrip().endswith("Verified. 0 problems.")
