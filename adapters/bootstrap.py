"""The composition root: builds everything from configuration, nothing at import time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID, uuid4

from adapters.config import Config
from adapters.projection_runner import ProjectionRunner, Projections
from adapters.specs import default_specs_dir, load_catalogue
from adapters.subject_keys import open_subject_keys
from adapters.view_store import open_view_store
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
    if not config.uses_postgres:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(env=config.eventsourcing_env(), subject_keys=open_subject_keys(config))
    catalogue = specs if specs is not None else load_catalogue(default_specs_dir())
    return Eportfolio(ledger, catalogue, clock=clock, new_id=new_id)


def build_projections(config: Config, app: Eportfolio) -> Projections:
    """The read-model views over the app's ledger, not yet started (`start()` follows live)."""
    projection = PortfolioStateProjection(app.specs)
    store = open_view_store(config, projection.name)
    return Projections([ProjectionRunner(app.ledger, projection, store)])
