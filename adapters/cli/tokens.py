"""`eportfolio tokens list|issue|revoke`: the token desk from the command line.

The same store and the same rules as `POST /tokens` (someone the centre's records know,
EVs bound to their allocations, not to a centre); the secret is printed once. `list`
shows when each token expires and was last used, revoked and expired ones too.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from rich.console import Console
from rich.markup import escape

from adapters.bootstrap import System, open_system
from adapters.config import Config
from adapters.store.tokens import TokenRefused, TokenStore, check_holder
from domain.errors import DomainError
from domain.events import Role

ROLES = ("centre_admin", "assessor", "iqa", "ev", "learner", "integrator")
console = Console(highlight=False)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tokens = commands.add_parser("tokens", help="list, issue and revoke API tokens")
    actions = tokens.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every token: expiry, last use, state")
    listing.add_argument("--centre", type=UUID, default=None, help="only this centre's")
    listing.add_argument("--live", action="store_true", help="hide revoked and expired ones")
    issue = actions.add_parser("issue", help="issue a token and print its secret once")
    issue.add_argument("--role", required=True, choices=ROLES, help="what the holder may do")
    issue.add_argument("--subject", type=UUID, default=None, help="who (new for integrators)")
    issue.add_argument("--centre", type=UUID, default=None, help="their centre (not for EVs)")
    issue.add_argument("--label", default="", help="a note: what the token is for")
    issue.add_argument("--days", type=int, default=90, help="it expires after DAYS (1-3650)")
    revoke = actions.add_parser("revoke", help="revoke tokens by id, label or subject")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "token_id", type=UUID, nargs="?", default=None, help="the token's id (tokens list)"
    )
    which.add_argument("--label", default=None, help="every live token with this label")
    which.add_argument("--subject", type=UUID, default=None, help="every live token of this person")


def run(config: Config, args: argparse.Namespace) -> int:
    """A refusal (an unknown person or centre, a bad lifetime) exits 2, saying why."""
    try:
        with open_system(config) as system:
            if args.action == "list":
                return _list(system.tokens, args.centre, live=args.live)
            if args.action == "issue":
                return _issue(system, args)
            return _revoke(system.tokens, args)
    except (TokenRefused, DomainError) as error:
        console.print(f"[red]{escape(str(error))}[/red]", soft_wrap=True)
        return 2


def _list(tokens: TokenStore, centre_id: UUID | None, *, live: bool) -> int:
    """Plain lines, not a table: ids must survive copy and paste and narrow terminals."""
    now = datetime.now(UTC)
    shown = 0
    for record in tokens.tokens(centre_id):
        state = record.state(now)
        if live and state != "live":
            continue
        shown += 1
        expires = _day(record.expires_at) if record.expires_at else "never (reissue it)"
        used = _day(record.last_used_at) if record.last_used_at else "never"
        line = (
            f"{record.token_id}  {state:<7}  {record.role.value:<12}  {record.subject_id}  "
            f"centre {record.centre_id or '-'}  expires {expires}  last used {used}  "
            f"{record.label}"
        )
        console.print(escape(line), soft_wrap=True)
    console.print(f"{shown} tokens")
    return 0


def _issue(system: System, args: argparse.Namespace) -> int:
    if not 1 <= args.days <= 3650:
        msg = f"--days is 1 to 3650, not {args.days}"
        raise TokenRefused(msg, "lifetime", "days")
    role = Role(args.role)
    check_holder(system.app.centre, role, args.subject, args.centre)
    record, secret = system.tokens.issue(
        subject_id=args.subject or uuid4(),
        role=role,
        centre_id=None if role is Role.EV else args.centre,
        label=args.label,
        lifetime=timedelta(days=args.days),
    )
    console.print(
        f"Issued token {record.token_id} ({role.value} {record.subject_id}), expiring "
        f"{_day(record.expires_at)}; the secret is shown this once:",
        soft_wrap=True,
    )
    sys.stdout.write(f"{secret}\n")
    return 0


def _revoke(tokens: TokenStore, args: argparse.Namespace) -> int:
    if args.token_id is not None:
        if not tokens.revoke(args.token_id):
            console.print(f"[red]No live token {args.token_id}.[/red]")
            return 2
        console.print(f"Revoked token {args.token_id}.")
        return 0
    if args.label is not None:
        count = tokens.revoke_label(args.label)
    else:
        count = tokens.revoke_subject(args.subject)
    console.print(f"Revoked {count} tokens.")
    return 0


def _day(when: datetime | None) -> str:
    return "" if when is None else when.strftime("%Y-%m-%d %H:%M UTC")
