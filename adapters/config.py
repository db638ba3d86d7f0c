"""Configuration from the environment: the only place that reads os.environ."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

N = TypeVar("N", int, float)


class SettingError(ValueError):
    """A setting that cannot be used; the message names it and says what to do."""


class StoreUnreachable(RuntimeError):
    """The configured database does not answer; the message says where and what to do."""


def number(env: Mapping[str, str], name: str, default: N, *, minimum: N, unit: str = "") -> N:
    """`env[name]` as a number of `type(default)` no smaller than `minimum`, else `default`."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    parse: Callable[[str], N] = type(default)
    kind = "a whole number" if isinstance(default, int) else "a number"
    try:
        value = parse(raw.strip())
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < minimum:
        what = f"{kind}{' of ' + unit if unit else ''} (at least {minimum})"
        msg = f"{name}={raw!r} is not {what}: set e.g. {name}={default} (the default), or unset it"
        raise SettingError(msg)
    return value


def without_password(url: str) -> str:
    """A database URL fit to print: the password, if any, left out."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class Secret:
    """A setting that must not show up in a repr, a log line or a traceback."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Secret('…')"


class Config(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path = Path("data")
    database_url: str | None = None
    signing_key_file: Path | None = None  # the log's Ed25519 key; default data_dir/signing.key
    kek_file: Path | None = None  # the key-encryption key; default <data_dir>.kek beside it
    kek: Secret | None = None  # the key-encryption key itself (EPORTFOLIO_KEK), over the file
    #: The log in an in-memory SQLite database (named by the data directory), gone with the
    #: process; keys and views stay in the data directory. For fast tests, never from the
    #: environment.
    log_in_memory: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """The store's settings; raises SettingError for a database URL that is not usable."""
        env = os.environ if env is None else env
        config = cls(
            data_dir=Path(env.get("EPORTFOLIO_DATA_DIR", "data")),
            database_url=env.get("EPORTFOLIO_DATABASE_URL") or None,
            signing_key_file=Path(key) if (key := env.get("EPORTFOLIO_SIGNING_KEY_FILE")) else None,
            kek_file=Path(kek) if (kek := env.get("EPORTFOLIO_KEK_FILE")) else None,
            kek=Secret(ring) if (ring := env.get("EPORTFOLIO_KEK")) else None,
        )
        if config.database_url is not None:
            postgres_env(config.database_url)
        return config

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.data_dir / "signing.key"

    @property
    def kek_path(self) -> Path:
        """Beside the data directory, not in it: a copy of the directory lacks it."""
        if self.kek_file is not None:
            return self.kek_file
        data_dir = self.data_dir.absolute()
        return data_dir.with_name(data_dir.name + ".kek")

    def eventsourcing_env(self) -> dict[str, str]:
        """The eventsourcing library's settings for the configured store."""
        if self.database_url is None:
            log = self.data_dir / "eportfolio.sqlite"
            return {
                "PERSISTENCE_MODULE": "adapters.store.sqlite",
                "SQLITE_DBNAME": f"file:{log}?mode=memory&cache=shared"
                if self.log_in_memory
                else str(log),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        return postgres_env(self.database_url)


def postgres_env(url: str) -> dict[str, str]:
    """`postgresql://user:pw@host:port/db?schema=s` as eventsourcing settings."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        msg = (
            f"EPORTFOLIO_DATABASE_URL={without_password(url)!r} is not a PostgreSQL URL: "
            "use postgresql://user@host:5432/db, or unset it to keep the log in SQLite "
            "under EPORTFOLIO_DATA_DIR"
        )
        raise SettingError(msg)
    try:
        port = parts.port
    except ValueError:
        msg = f"EPORTFOLIO_DATABASE_URL={without_password(url)!r} has no valid port: use :5432"
        raise SettingError(msg) from None
    env = {
        "PERSISTENCE_MODULE": "adapters.store.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        # Each pool keeps one connection open and grows under load (up to 1 + 10): the
        # library's default keeps five open per pool, and a process holds several pools.
        "POSTGRES_POOL_SIZE": "1",
    }
    schema = parse_qs(parts.query).get("schema")
    if schema:
        env["POSTGRES_SCHEMA"] = schema[0]
    return env
