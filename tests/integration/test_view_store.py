"""A SQLite view written by an earlier release (documents in a WITHOUT ROWID table) opens
with every document and its tracked position, in the rowid table the store now writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from adapters.store.views import Doc, SqliteViewStore

_OLD_SCHEMA = """
CREATE TABLE docs (
    kind TEXT NOT NULL, key TEXT NOT NULL, centre_id TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX docs_by_centre ON docs (kind, centre_id, key);
CREATE TABLE tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
"""


def test_a_view_from_an_earlier_release_keeps_its_documents_and_position(tmp_path: Path) -> None:
    path = tmp_path / "view-state.sqlite"
    old = sqlite3.connect(path)
    old.executescript(_OLD_SCHEMA)
    docs = [Doc("trail", f"{i:05d}", f"c{i % 3}", b"row %d" % i) for i in range(50)]
    old.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", docs)
    old.execute("INSERT INTO tracking VALUES ('state', 42)")
    old.commit()
    old.close()

    store = SqliteViewStore(path, "state")
    try:
        assert store.position() == 42
        assert store.list("trail", limit=100) == docs
        assert store.list("trail", "c1", limit=100) == [d for d in docs if d.centre_id == "c1"]
        store.write(42, 43, [Doc("trail", "00001", "c1", b"rewritten")])
        assert store.get("trail", "00001") == b"rewritten"
    finally:
        store.close()
    again = SqliteViewStore(path, "state")  # opening it again changes nothing
    try:
        assert again.position() == 43
        assert len(again.list("trail", limit=100)) == 50
    finally:
        again.close()
    schema = sqlite3.connect(path).execute("SELECT sql FROM sqlite_master WHERE name = 'docs'")
    assert "WITHOUT ROWID" not in schema.fetchone()[0].upper()
