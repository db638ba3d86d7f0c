"""`eportfolio worker`: the background roles of a PostgreSQL deployment, without the API.

Each role (projections, webhooks, xapi, nats, checkpoints) runs in one process at a time,
whichever takes its lease first (docs/adr/0020, docs/deploy.md); run two or more workers
and a role moves to another within seconds when its holder dies. `--status` says who
holds what. SIGTERM or Ctrl-C stops the roles and gives the leases up.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from rich.console import Console
from rich.table import Table

from adapters.bootstrap import check_store
from adapters.config import Config, SettingError
from adapters.http.dependencies import Services, open_services
from adapters.http.settings import HttpSettings
from adapters.roles import Mode
from adapters.store.kek import load_ring
from adapters.store.leases import holders
from adapters.streams import build_streams
from adapters.streams.settings import StreamSettings

ROLES = ["projections", "checkpoints", "webhooks", "xapi", "nats"]
console = Console()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = subparsers.add_parser(
        "worker", help="run the background roles on PostgreSQL (no API), each under a lease"
    )
    worker.add_argument("--status", action="store_true", help="say which process holds each role")


def needs_postgres(config: Config, what: str) -> None:
    if not config.uses_postgres:
        msg = (
            f"{what} needs PostgreSQL (EPORTFOLIO_DATABASE_URL): on SQLite `eportfolio serve` "
            "runs the API and every background role in one process"
        )
        raise SettingError(msg)


def run(config: Config, args: argparse.Namespace) -> int:
    needs_postgres(config, "eportfolio worker")
    if args.status:
        return _status(config)
    settings = HttpSettings.from_env()
    StreamSettings.from_env()  # refuse a bad setting now, in words
    check_store(config)
    load_ring(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per webhook request
    stop = threading.Event()

    def stopping(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    with running_roles(config, settings):
        console.print("eportfolio worker: competing for the background roles", highlight=False)
        stop.wait()
    return 0


@contextmanager
def running_roles(config: Config, settings: HttpSettings) -> Iterator[Services]:
    """This process's role runner (leased), the streams' deliveries included, until exit.

    The same parts an API process opens, so a role runs here exactly as it would there.
    """
    services = open_services(config, settings, roles=Mode.LEASED)
    try:
        streams = build_streams(config, services.app.ledger)
        try:
            services.start()
            streams.start(services.roles)
            yield services
        finally:
            streams.close()
    finally:
        services.close()


def _status(config: Config) -> int:
    held = holders(config.eventsourcing_env(), ROLES)
    table = Table(title="Background roles")
    for column in ("role", "holder (pid@host)", "server pid"):
        table.add_column(column)
    for role in ROLES:
        holder = held.get(role)
        if holder is None:
            table.add_row(role, "nobody", "")
        else:
            table.add_row(role, holder.application.split(" ", 2)[2], str(holder.pid))
    console.print(table)
    return 0
