"""`eportfolio serve`: the HTTP API under uvicorn, optionally with the demo centre and tokens."""

from __future__ import annotations

import argparse
import os
import secrets
from contextlib import ExitStack
from dataclasses import dataclass
from uuid import UUID, uuid5

import msgspec
import uvicorn
from litestar import Litestar
from rich.console import Console

from adapters.audit.signing import SigningKey, write_signing_key
from adapters.bootstrap import check_store, open_system
from adapters.cli.worker import needs_postgres, running_roles
from adapters.config import Config
from adapters.demo import load_demo
from adapters.http.app import create_app
from adapters.http.settings import HttpSettings
from adapters.store.kek import ensure_kek, load_ring
from adapters.store.tokens import TokenStore
from adapters.streams.settings import StreamSettings
from domain.events import LearnerEnrolled, Qualification, Role
from service.checkpoints import Reason
from service.handlers import Eportfolio

DEMO_LABEL = "demo"
console = Console()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser("serve", help="run the HTTP API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument(
        "--demo", action="store_true", help="load the demo centre if needed and print tokens"
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="API processes (PostgreSQL only); this process then runs no API itself but "
        "competes for the background roles, unless --no-roles",
    )
    serve.add_argument(
        "--no-roles",
        action="store_true",
        help="serve the API only (PostgreSQL): `eportfolio worker` runs the background roles",
    )


def _workers(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--workers {raw!r}: a whole number, at least 1")
    return value


def serve(config: Config, args: argparse.Namespace) -> int:
    settings = HttpSettings.from_env()
    StreamSettings.from_env()  # read again when the streams start: refuse a bad one now
    if args.workers > 1:
        needs_postgres(config, "serve --workers")
    if args.no_roles:
        needs_postgres(config, "serve --no-roles")
    check_store(config)  # here, in words, rather than as a traceback from the lifespan
    if args.demo:
        _ensure_signing_key(config)
        ensure_demo_kek(config)
        if settings.admin_token is None:
            settings = _with_admin(settings, "ep_admin_" + secrets.token_urlsafe(24))
        _print_demo(config, settings.admin_token or "", args.port)
    elif settings.admin_token is None:
        console.print("[yellow]EPORTFOLIO_ADMIN_TOKEN is not set: no admin access.[/yellow]")
    load_ring(config)  # no KEK: say so in one line now, not in a traceback from the server
    options = {
        "host": args.host,
        "port": args.port,
        "log_level": "info",
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,  # open event streams must not hold a restart up
    }
    if args.workers == 1:
        app = create_app(config, settings, follow=not args.no_roles, freeze_heap=True)
        uvicorn.run(app, **options)
        return 0
    # N API processes (each imports `api_app` afresh and reads the same environment); this
    # one supervises them and, unless --no-roles, competes for the roles like a worker.
    if settings.admin_token is not None:
        os.environ[ADMIN_TOKEN_VARIABLE] = settings.admin_token  # the demo's, for the children
    with ExitStack() as stack:
        if not args.no_roles:
            stack.enter_context(running_roles(config, settings))
        uvicorn.run(
            API_APP,
            factory=True,
            workers=args.workers,
            timeout_worker_healthcheck=WORKER_STARTUP_SECONDS,
            **options,
        )
    return 0


API_APP = "adapters.cli.serve:api_app"
WORKER_STARTUP_SECONDS = 60  # uvicorn's 5 s kills an API process still importing on a busy host
ADMIN_TOKEN_VARIABLE = "EPORTFOLIO_ADMIN_TOKEN"  # noqa: S105 - a variable name


def api_app() -> Litestar:
    """One API process of `serve --workers N`: no background roles, settings from the env."""
    return create_app(Config.from_env(), HttpSettings.from_env(), follow=False, freeze_heap=True)


def _with_admin(settings: HttpSettings, token: str) -> HttpSettings:
    return msgspec.structs.replace(settings, admin_token=token)


def _ensure_signing_key(config: Config) -> None:
    """The demo signs checkpoints too; a real centre generates and guards its own key."""
    path = config.signing_key_path
    if not path.exists():
        write_signing_key(path, SigningKey.generate())
        console.print(f"Wrote a signing key for checkpoints to {path}")


def ensure_demo_kek(config: Config) -> None:
    """The demo wraps keys too; a real centre generates its KEK and keeps it apart."""
    made = ensure_kek(config)
    if made is not None:
        console.print(
            f"Wrote a key-encryption key to {made} (beside the data directory, not in it; "
            "a real deployment keeps it apart and backs it up apart)",
            soft_wrap=True,
        )


@dataclass(frozen=True)
class DemoLogin:
    who: str
    role: Role
    subject_id: UUID
    token: str


def demo_logins(config: Config) -> tuple[UUID, UUID | None, list[DemoLogin]]:
    """Load the demo centre if needed; fresh tokens for its people (earlier demo ones revoked).

    Returns the centre, a portfolio of the learner, and who to try it as.
    """
    with open_system(config) as system:
        app, tokens = system.app, system.tokens
        summary = load_demo(app.ledger, app.specs)
        system.audit.checkpointer.issue_if_changed(Reason.ON_DEMAND)  # the demo's EV samples
        centre = app.centre(summary.centre_id)
        tokens.revoke_label(DEMO_LABEL)
        people: list[tuple[str, Role, UUID]] = []
        for (person, role), staff in centre.staff.items():
            trainee = staff.qualifications[-1][1] is Qualification.TRAINEE
            people.append((f"{staff.name}{' (trainee)' if trainee else ''}", role, person))
        people += [(name, Role.EV, ev) for ev, name in centre.evs.items()]
        learner_id, learner_name = next(iter(centre.learners.items()))
        people.append((learner_name, Role.LEARNER, learner_id))
        people.append(("Demo integrator", Role.INTEGRATOR, uuid5(centre.centre_id, "integrator")))
        logins = [_login(tokens, centre.centre_id, *p) for p in people]
        return centre.centre_id, _portfolio_of(app, learner_id), logins


def _login(tokens: TokenStore, centre_id: UUID, who: str, role: Role, person: UUID) -> DemoLogin:
    centre = None if role is Role.EV else centre_id
    _, secret = tokens.issue(subject_id=person, role=role, centre_id=centre, label=DEMO_LABEL)
    return DemoLogin(who=who, role=role, subject_id=person, token=secret or "")


def _portfolio_of(app: Eportfolio, learner_id: UUID) -> UUID | None:
    """The learner's first portfolio, from the log's enrolments (the views may not exist yet)."""
    for notification in app.ledger.notifications():
        if notification.topic == LearnerEnrolled.TOPIC:
            event = app.ledger.decode(notification).event
            if isinstance(event, LearnerEnrolled) and event.learner_id == learner_id:
                return event.portfolio_id
    return None


def _print_demo(config: Config, admin_token: str, port: int) -> None:
    """Plain lines, not a table: tokens must survive copy and paste and narrow terminals."""
    centre_id, portfolio_id, logins = demo_logins(config)
    say = console.print
    say(
        f"Demo centre {centre_id}: tokens to try (shown once; earlier demo tokens revoked)",
        soft_wrap=True,
    )
    say(f"  {'admin':<13} {admin_token}  Administrator", highlight=False, soft_wrap=True)
    for login in logins:
        line = f"  {login.role.value:<13} {login.token}  {login.who} ({login.subject_id})"
        say(line, highlight=False, soft_wrap=True)
    ev = next((login for login in logins if login.role is Role.EV), None)
    if ev is not None:
        say(
            f"Open the desk: http://127.0.0.1:{port}/ui/ and sign in with the EV's token "
            f"{ev.token} (integrators: the API at http://127.0.0.1:{port}/schema)",
            highlight=False,
            soft_wrap=True,
        )
    if portfolio_id is not None:
        learner = next(login for login in logins if login.role is Role.LEARNER)
        say(
            f'Try: curl -H "Authorization: Bearer {learner.token}" '
            f"http://127.0.0.1:{port}/portfolios/{portfolio_id}/coverage",
            highlight=False,
            soft_wrap=True,
        )
