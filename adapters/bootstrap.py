"""The composition root: builds everything from configuration, nothing at import time.

`open_system(config)` is the one way a process (the HTTP server, a CLI command, a test)
gets its parts. Each part opens on first use and registers its closing on one
`ExitStack`, so everything is closed once, in the reverse order it was opened, whatever
fails half-way. The reactions to saved events (service.reactions) are registered here
too, in one place: the erased learner's key, attachments and tokens; the checkpoint after
an EV's sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import cached_property
from typing import Protocol, TypeVar
from uuid import UUID, uuid4

import psycopg

from adapters.audit.parts import Audit, open_audit
from adapters.config import Config, SettingError, StoreUnreachable, postgres_env, without_password
from adapters.http.settings import HttpSettings
from adapters.specs import default_specs_dir, load_catalogue
from adapters.store.blobs import BlobStore
from adapters.store.files import private_file, secure_data_dir
from adapters.store.projection_runner import ProjectionRunner, Projections
from adapters.store.subject_keys import open_subject_keys
from adapters.store.tokens import TokenStore, open_token_store
from adapters.store.views import open_view_store
from domain.events import Event, EvSampleRecorded, Role, SubjectErased
from domain.spec import SpecCatalogue
from projections.portfolio_view import PortfolioStateProjection
from service.checkpoints import checkpoint_ev_samples
from service.erasure import destroy_key, orphaned_attachments
from service.handlers import Eportfolio
from service.ledger import Ledger
from service.queries import Queries, ViewReader
from service.reactions import Reactions


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
    reactions = Reactions()
    reactions.on(SubjectErased, destroy_key(ledger))
    return Eportfolio(ledger, catalogue, clock=clock, new_id=new_id, reactions=reactions)


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


class Closable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=Closable)


class System:
    """One process's parts over one configuration, each opened on first use.

    Not for use after its `open_system` block ends (everything is closed then).
    """

    def __init__(
        self,
        config: Config,
        stack: ExitStack,
        *,
        specs: SpecCatalogue | None = None,
        blobs: BlobStore | None = None,
    ) -> None:
        self.config = config
        self._stack = stack
        self.app = build(config, specs=specs)
        stack.callback(self.app.ledger.close)
        self._blobs = blobs
        self._react()

    def _opened(self, part: T) -> T:
        self._stack.callback(part.close)
        return part

    @cached_property
    def blobs(self) -> BlobStore:
        """The attachments (files: nothing to close), where the settings put them."""
        return self._blobs or HttpSettings.from_env().blobs(self.config.data_dir)

    @cached_property
    def tokens(self) -> TokenStore:
        return self._opened(open_token_store(self.config))

    @cached_property
    def audit(self) -> Audit:
        return self._opened(open_audit(self.config, self.app.ledger, self.blobs))

    @cached_property
    def projections(self) -> Projections:
        """The read-model views, not yet following (`start()`); stopped before the ledger."""
        return self._opened(build_projections(self.config, self.app))

    @cached_property
    def view(self) -> ViewReader:
        reader: ViewReader = self.projections[PortfolioStateProjection.name].store
        return reader

    @cached_property
    def queries(self) -> Queries:
        return Queries(self.app, self.view)

    def _react(self) -> None:
        """The side effects of saved events, whichever way the command came in."""
        reactions = self.app.reactions
        reactions.on(SubjectErased, self._forget_erased)
        if self.config.signing_key_path.exists():
            reactions.on(EvSampleRecorded, self._checkpoint_sample)

    def _forget_erased(self, event: Event, _position: int) -> dict[str, int] | None:
        """The erased learner's attachments no one else relies on, and their tokens."""
        if not isinstance(event, SubjectErased) or event.subject_role is not Role.LEARNER:
            return None
        centre_id, learner_id = event.centre_id, event.subject_id
        orphans = orphaned_attachments(self.app, centre_id, learner_id)
        blobs = sum(self.blobs.forget(sha256, centre_id) for sha256 in sorted(orphans))
        return {"blobs_deleted": blobs, "tokens_revoked": self.tokens.revoke_subject(learner_id)}

    def _checkpoint_sample(self, event: Event, position: int) -> None:
        checkpoint_ev_samples(self.audit.checkpointer)(event, position)


@contextmanager
def open_system(
    config: Config,
    *,
    specs: SpecCatalogue | None = None,
    blobs: BlobStore | None = None,
) -> Iterator[System]:
    """The process's parts; all of them closed when the block ends."""
    with ExitStack() as stack:
        yield System(config, stack, specs=specs, blobs=blobs)
