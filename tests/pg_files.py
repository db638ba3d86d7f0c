"""What PostgreSQL keeps on disk for a table: its heap, TOAST and index files, as bytes.

Read with `pg_read_binary_file` (the test server's superuser), after a CHECKPOINT so the
files hold what the buffers do: a test can look for bytes that must be gone from disk,
not only from query answers.
"""

from __future__ import annotations

from typing import Any

import psycopg

_FILES = """
SELECT pg_relation_filepath(c.oid) FROM pg_class c
WHERE c.oid = %(t)s::regclass
   OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE oid = %(t)s::regclass)
   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = %(t)s::regclass)
   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid =
                (SELECT reltoastrelid FROM pg_class WHERE oid = %(t)s::regclass))
"""


def table_files(conn: psycopg.Connection[Any], schema: str, table: str) -> bytes:
    """Every file of `schema.table` (heap, TOAST, indexes) as it is on disk now."""
    conn.execute("CHECKPOINT")
    qualified = f'"{schema}"."{table}"'
    paths = [row[0] for row in conn.execute(_FILES, {"t": qualified}).fetchall() if row[0]]
    chunks = []
    for path in paths:
        row = conn.execute("SELECT pg_read_binary_file(%s)", (path,)).fetchone()
        chunks.append(bytes(row[0]) if row else b"")
    return b"".join(chunks)


def schema_files(conn: psycopg.Connection[Any], schema: str) -> dict[str, bytes]:
    """Every table of the schema, by name, as `table_files` reads it."""
    tables = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
    ).fetchall()
    return {name: table_files(conn, schema, name) for (name,) in tables}
