"""`eportfolio serve` starts with its start-up heap frozen, out of the collector's scans."""

from __future__ import annotations

import gc
from pathlib import Path

from litestar.testing import TestClient

from adapters.config import Config
from adapters.http.app import create_app
from tests.conftest import with_kek


def test_the_heap_made_at_start_up_is_frozen_once_the_services_run(tmp_path: Path) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        app = create_app(with_kek(Config(data_dir=tmp_path / "data")), freeze_heap=True)
        with TestClient(app) as client:
            assert client.get("/units").status_code == 401  # serving
            assert gc.get_freeze_count() > 10_000  # modules, specs, the app and its services
    finally:
        gc.unfreeze()
