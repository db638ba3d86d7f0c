"""The quick loop: the rules, coverage and sufficiency on a log held in memory.

These tests exercise pure rules and folds through the application service; the store under
them is not what they test (tests/integration runs the stores, SQLite and PostgreSQL), so
the log lives in an in-memory SQLite database and the whole folder runs in seconds.
"""

from __future__ import annotations

import msgspec
import pytest

from adapters.config import Config
from tests.conftest import with_kek


@pytest.fixture
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The log in memory; the key store in a temporary directory, with a KEK."""
    data = with_kek(Config(data_dir=tmp_path_factory.mktemp("data")))
    return msgspec.structs.replace(data, log_in_memory=True)
