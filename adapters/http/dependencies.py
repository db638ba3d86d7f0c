"""What the handlers share: the application, its queries and views, tokens and blobs.

Built when the server starts (the ASGI lifespan), closed when it stops: nothing is built
at import time, and every connection the service opened is closed again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from adapters.audit.parts import Audit, CheckpointSchedule, open_audit
from adapters.bootstrap import build, build_projections
from adapters.config import Config
from adapters.http.auth import Authenticator
from adapters.http.settings import HttpSettings
from adapters.store.blobs import BlobStore
from adapters.store.projection_runner import ProjectionFailed, Projections
from adapters.store.tokens import TokenStore, open_token_store
from domain.spec import SpecCatalogue
from projections.state import PortfolioStateProjection
from service.checkpoints import with_checkpoints
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
    schedule: CheckpointSchedule | None = None

    def start(self) -> None:
        """Follow the log: the projections, and scheduled checkpoints if there is a key."""
        self.projections.start()
        if self.schedule is not None:
            self.schedule.start()

    def visible(self, position: int) -> bool:
        """Whether every read view already includes the event at `position`."""
        return all(runner.position >= position for runner in self.projections)

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
        try:
            if self.schedule is not None:
                self.schedule.stop()
            self.projections.close()
        finally:
            self.tokens.close()
            self.audit.close()
            self.app.ledger.close()


def open_services(
    config: Config, settings: HttpSettings, *, specs: SpecCatalogue | None = None
) -> Services:
    app = build(config, specs=specs)
    blobs = settings.blobs(config.data_dir)
    try:
        audit = open_audit(config, app.ledger, blobs)
    except BaseException:
        app.ledger.close()
        raise
    schedule = None
    if config.signing_key_path.exists():  # else /audit answers 503 saying how to make one
        app = with_checkpoints(app, audit.checkpointer)
        if settings.checkpoint_seconds > 0:
            schedule = CheckpointSchedule(audit.checkpointer, settings.checkpoint_seconds)
    try:
        projections = build_projections(config, app)
    except BaseException:
        audit.close()
        app.ledger.close()
        raise
    try:
        tokens = open_token_store(config)
    except BaseException:
        projections.close()
        audit.close()
        app.ledger.close()
        raise
    view: ViewReader = projections[PortfolioStateProjection.name].store
    return Services(
        app=app,
        projections=projections,
        view=view,
        queries=Queries(app, view),
        tokens=tokens,
        blobs=blobs,
        settings=settings,
        authenticate=Authenticator(tokens, settings.admin_token),
        audit=audit,
        schedule=schedule,
    )
