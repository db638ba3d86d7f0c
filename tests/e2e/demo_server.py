"""The README's main command (`serve --demo`) as a real subprocess, for the end-to-end tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.http.test_server import free_port


@dataclass(frozen=True)
class Demo:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def serve_demo(log: Path, env: Mapping[str, str]) -> Iterator[Demo]:
    """`serve --demo` on a free port with `env`, up once uvicorn says so; stopped after."""
    port = free_port()
    command = [sys.executable, "-m", "adapters.cli.main", "serve", "--demo", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while "Uvicorn running" not in log.read_text() and time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the server stopped:\n{log.read_text()}")
            time.sleep(0.2)
        yield Demo(f"http://127.0.0.1:{port}", process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
