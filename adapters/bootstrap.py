"""The composition root: builds everything from configuration, nothing at import time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID, uuid4

import psycopg

from adapters.config import Config, SettingError, StoreUnreachable, postgres_env, without_password
from adapters.specs import default_specs_dir, load_catalogue
from adapters.store.files import private_file, secure_data_dir
from adapters.store.projection_runner import ProjectionRunner, Projections
from adapters.store.subject_keys import open_subject_keys
from adapters.store.views import open_view_store
from domain.spec import SpecCatalogue
from projections.state import PortfolioStateProjection
from service.handlers import Eportfolio
from service.ledger import Ledger


def build(
    config: Config,
    *,
    specs: SpecCatalogue | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    new_id: Callable[[], UUID] = uuid4,
) -> Eportfolio:
    """The application service on the configured store."""
    check_store(config)
    if not config.uses_postgres:
        secure_data_dir(config.data_dir)
        private_file(config.data_dir / "eportfolio.sqlite")  # the WAL and shm files follow
    ledger = Ledger(env=config.eventsourcing_env(), subject_keys=open_subject_keys(config))
    catalogue = specs if specs is not None else load_catalogue(default_specs_dir())
    return Eportfolio(ledger, catalogue, clock=clock, new_id=new_id)


CONNECT_SECONDS = 5


def check_store(config: Config) -> None:
    """Fail in seconds, in words, when the store cannot be opened (not a 30 s pool timeout).

    SQLite: the data directory is created if need be and must be writable. PostgreSQL: one
    connection is tried, with a connect timeout.
    """
    if config.database_url is None:
        directory = config.data_dir
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            msg = f"EPORTFOLIO_DATA_DIR={str(directory)!r} cannot be created ({error.strerror})"
            raise SettingError(f"{msg}: point it at a writable directory") from None
        return
    env = postgres_env(config.database_url)
    try:
        psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"],
            connect_timeout=CONNECT_SECONDS,
        ).close()
    except psycopg.Error as error:
        reason = " ".join(line.strip() for line in str(error).splitlines()) or repr(error)
        where = without_password(config.database_url)
        msg = f"cannot reach PostgreSQL at EPORTFOLIO_DATABASE_URL={where!r}: {reason}"
        raise StoreUnreachable(f"{msg}; start the server or fix the URL") from None


def build_projections(config: Config, app: Eportfolio) -> Projections:
    """The read-model views over the app's ledger, not yet started (`start()` follows live)."""
    projection = PortfolioStateProjection(app.specs)
    store = open_view_store(config, projection.name)
    return Projections([ProjectionRunner(app.ledger, projection, store)])
