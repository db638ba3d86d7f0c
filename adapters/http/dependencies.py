"""What the handlers share: the application, its queries and views, tokens and blobs.

Built when the server starts (the ASGI lifespan), closed when it stops: nothing is built
at import time, and every connection the service opened is closed again.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass

from adapters.audit.parts import Audit, CheckpointSchedule
from adapters.bootstrap import System
from adapters.config import Config
from adapters.http.auth import Authenticator
from adapters.http.settings import HttpSettings
from adapters.roles import Mode, Role, RoleRunner
from adapters.store.blobs import BlobStore
from adapters.store.leases import schema_setup
from adapters.store.projection_runner import ProjectionFailed, Projections
from adapters.store.tokens import TokenStore
from domain.spec import SpecCatalogue
from service.handlers import Eportfolio
from service.queries import Queries, ViewReader

log = logging.getLogger(__name__)


@dataclass
class Services:
    app: Eportfolio
    projections: Projections
    view: ViewReader
    queries: Queries
    tokens: TokenStore
    blobs: BlobStore
    settings: HttpSettings
    authenticate: Authenticator
    audit: Audit
    schedule: CheckpointSchedule | None
    roles: RoleRunner
    closing: ExitStack

    def start(self) -> None:
        """Run this process's background roles (the projections, scheduled checkpoints if
        there is a key; the streams add theirs): all of them on SQLite, those whose lease it
        holds on PostgreSQL, none in an API-only process (docs/adr/0020)."""
        self.roles.start()

    def visible(self, position: int) -> bool:
        """Whether every read view already includes the event at `position`."""
        return all(runner.reached(position) for runner in self.projections)

    def wait(self, position: int) -> bool:
        """Wait (up to the configured time) until every read view includes `position`."""
        try:
            return self.projections.wait_all(position, self.settings.wait_seconds)
        except ProjectionFailed:
            log.exception("a projection has stopped; reads may be stale")
            return False

    def catch_up(self) -> None:
        """Wait until the views reach the log's head: before concluding a view has no entry."""
        head = self.app.ledger.recorder.max_notification_id() or 0
        self.wait(head)

    def close(self) -> None:
        """Everything the server opened, closed once, in reverse."""
        self.closing.close()


def role_mode(config: Config, *, roles: bool) -> Mode:
    """Every role here on SQLite; on PostgreSQL, those whose lease this process takes."""
    if not roles:
        return Mode.NONE
    return Mode.LEASED if config.uses_postgres else Mode.ALL


def open_services(
    config: Config,
    settings: HttpSettings,
    *,
    specs: SpecCatalogue | None = None,
    roles: Mode = Mode.ALL,
) -> Services:
    """The server's parts, opened now (not on a first request); closed by `close()`.

    `roles` says which background roles this process runs once `start()` is called.
    """
    stack = ExitStack()
    try:
        with schema_setup(config.eventsourcing_env() if config.uses_postgres else None):
            system = System(config, stack, specs=specs, blobs=settings.blobs(config.data_dir))
            audit, projections, tokens = system.audit, system.projections, system.tokens
        schedule = None  # without a signing key /audit answers 503, saying how to make one
        if config.signing_key_path.exists() and settings.checkpoint_seconds > 0:
            schedule = CheckpointSchedule(audit.checkpointer, settings.checkpoint_seconds)
            stack.callback(schedule.stop)
        runner = role_runner(config, roles)
        stack.callback(runner.close)  # before the parts the roles use are closed

        def failed() -> bool:  # a view stopped on an error: its lease goes (docs/adr/0020)
            return any(r.error is not None and not r.running for r in projections)

        runner.add(Role("projections", projections.start, projections.stop, failed=failed))
        if schedule is not None:
            runner.add(Role("checkpoints", schedule.start, schedule.stop))
        return Services(
            app=system.app,
            projections=projections,
            view=system.view,
            queries=system.queries,
            tokens=tokens,
            blobs=system.blobs,
            settings=settings,
            authenticate=Authenticator(tokens, settings.admin_token),
            audit=audit,
            schedule=schedule,
            roles=runner,
            closing=stack,
        )
    except BaseException:
        stack.close()  # what was opened before the failure
        raise


def role_runner(config: Config, mode: Mode) -> RoleRunner:
    """The runner of `mode`'s roles (it logs which this process takes and gives up)."""
    return RoleRunner(mode, config.eventsourcing_env() if mode is Mode.LEASED else None)
