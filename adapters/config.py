"""Configuration from the environment: the only place that reads os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec


class Config(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path = Path("data")
    database_url: str | None = None
    signing_key_file: Path | None = None  # the log's Ed25519 key; default data_dir/signing.key

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        return cls(
            data_dir=Path(env.get("EPORTFOLIO_DATA_DIR", "data")),
            database_url=env.get("EPORTFOLIO_DATABASE_URL") or None,
            signing_key_file=Path(key) if (key := env.get("EPORTFOLIO_SIGNING_KEY_FILE")) else None,
        )

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.data_dir / "signing.key"

    def eventsourcing_env(self) -> dict[str, str]:
        """The eventsourcing library's settings for the configured store."""
        if self.database_url is None:
            return {
                "PERSISTENCE_MODULE": "adapters.sqlite_store",
                "SQLITE_DBNAME": str(self.data_dir / "eportfolio.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        return postgres_env(self.database_url)


def postgres_env(url: str) -> dict[str, str]:
    """`postgresql://user:pw@host:port/db?schema=s` as eventsourcing settings."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        msg = f"EPORTFOLIO_DATABASE_URL must be a postgresql:// URL, not {parts.scheme}://"
        raise ValueError(msg)
    env = {
        "PERSISTENCE_MODULE": "adapters.postgres_store",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
    }
    schema = parse_qs(parts.query).get("schema")
    if schema:
        env["POSTGRES_SCHEMA"] = schema[0]
    return env
