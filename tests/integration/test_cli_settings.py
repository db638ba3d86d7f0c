"""A setting or a store that cannot be used: one line naming it, exit 2, within seconds.

Run as an operator runs it, `eportfolio` as its own process. Before this, a unit in
EPORTFOLIO_MAX_BLOB_BYTES or a `mysql://` URL was a stack trace, and a PostgreSQL that does
not answer hung for the pool's 30 s first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

CASES = [
    (["serve"], {"EPORTFOLIO_MAX_BLOB_BYTES": "25MiB"}, "EPORTFOLIO_MAX_BLOB_BYTES"),
    (["serve"], {"EPORTFOLIO_WAIT_SECONDS": "soon"}, "EPORTFOLIO_WAIT_SECONDS"),
    (["serve"], {"EPORTFOLIO_SSE_QUEUE": "-5"}, "EPORTFOLIO_SSE_QUEUE"),
    (["serve"], {"EPORTFOLIO_DATABASE_URL": "mysql://root:hunter2@db/eportfolio"}, "mysql://"),
    (["events"], {"EPORTFOLIO_DATABASE_URL": "mysql://root:hunter2@db/eportfolio"}, "mysql://"),
    (["serve"], {"EPORTFOLIO_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test"}, ":1/"),
    (["demo"], {"EPORTFOLIO_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test"}, ":1/"),
    (["serve"], {"EPORTFOLIO_DATA_DIR": "/dev/null/data"}, "EPORTFOLIO_DATA_DIR"),
    # Processes that share roles need PostgreSQL; SQLite runs everything in `serve`.
    (["worker"], {}, "EPORTFOLIO_DATABASE_URL"),
    (["serve", "--workers", "2"], {}, "EPORTFOLIO_DATABASE_URL"),
    (["serve", "--no-roles"], {}, "EPORTFOLIO_DATABASE_URL"),
]


@pytest.mark.parametrize(("command", "env", "named"), CASES)
def test_a_bad_setting_is_one_line_that_names_it(
    tmp_path: Path, command: list[str], env: dict[str, str], named: str
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EPORTFOLIO_")}
    environ |= {"EPORTFOLIO_DATA_DIR": str(tmp_path / "data"), **env}
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "adapters.cli.main",
            *command,
            *(["--port", "1"] if command == ["serve"] else []),
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("eportfolio: ")
    assert named in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert "hunter2" not in done.stderr  # the password is never printed
    assert elapsed < 15  # seconds: an interpreter start, then no waiting
