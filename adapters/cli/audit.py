"""The audit subcommands: `keys`, `checkpoint`, `export` and `verify`.

`verify BUNDLE` runs offline: it opens no store and needs no configuration. The rest
work on the configured store and signing key (EPORTFOLIO_SIGNING_KEY_FILE, by default
EPORTFOLIO_DATA_DIR/signing.key). `keys generate-kek` and `keys rotate-kek` look after the
key-encryption key (EPORTFOLIO_KEK_FILE or EPORTFOLIO_KEK; docs/adr/0010).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from adapters.audit.bundle import ATTACHMENTS
from adapters.audit.export import ExportError
from adapters.audit.findings import Report
from adapters.audit.signing import (
    SigningKey,
    SigningKeyError,
    VerifierKey,
    load_signing_key,
    write_signing_key,
)
from adapters.audit.verify import verify_bundle_reporting
from adapters.bootstrap import open_system
from adapters.cli.kek_rotation import rotate_kek
from adapters.config import Config
from adapters.store.files import writing_private
from adapters.store.kek import KekError, encode_ring, generate, write_kek_file
from domain.errors import DomainError
from service.checkpoints import Checkpointer, Reason, latest_checkpoint

COMMANDS = ("keys", "checkpoint", "export", "verify")
console = Console(highlight=False)
notes = Console(highlight=False, stderr=True)  # beside a result printed on stdout


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser(
        "keys", help="the log's signing key and the key-encryption key"
    ).add_subparsers(dest="action", required=True)
    generate = keys.add_parser("generate", help="write a new Ed25519 signing key")
    generate.add_argument("--origin", default=None, help="the log's name (key name)")
    generate.add_argument("--force", action="store_true", help="replace an existing key")
    keys.add_parser("public", help="print the verifier (public) key")
    kek = keys.add_parser("generate-kek", help="write a new key-encryption key (KEK) file")
    kek.add_argument(
        "--print", action="store_true", help="print it for EPORTFOLIO_KEK instead of a file"
    )
    keys.add_parser(
        "rotate-kek", help="rewrap every subject key and webhook secret under a new KEK"
    )
    checkpoint = commands.add_parser(
        "checkpoint", help="sign the log's current Merkle root (if it moved since the last)"
    )
    checkpoint.add_argument(
        "--every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep issuing, every SECONDS, when the log moved",
    )
    export = commands.add_parser("export", help="write an audit bundle (zip)")
    export.add_argument("--centre", type=UUID, default=None, help="only this centre's events")
    export.add_argument("--portfolio", type=UUID, default=None, help="only this portfolio's events")
    export.add_argument(
        "--no-checkpoint", action="store_true", help="cut at the latest checkpoint as it is"
    )
    export.add_argument(
        "--attachments",
        action="store_true",
        help="include the evidence's files (EPORTFOLIO_BLOB_DIR), covered by the manifest",
    )
    export.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="processes making a whole-log bundle's summary pages (default: one per core, up "
        "to 2, for 128 centres or more; 1: none)",
    )
    export.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    export.add_argument("out", type=Path, metavar="OUT.zip", help="the bundle to write")
    verify = commands.add_parser("verify", help="verify a bundle offline, or the live store")
    verify.add_argument(
        "bundle", type=Path, nargs="?", metavar="BUNDLE", help="an exported bundle (zip)"
    )
    verify.add_argument(
        "--trusted-checkpoint",
        type=Path,
        metavar="FILE",
        help="a signed checkpoint kept earlier: prove the log only grew since",
    )
    verify.add_argument(
        "--trusted-key",
        type=Path,
        metavar="FILE",
        help="the log's published verifier key: what was checked must be signed by it",
    )
    verify.add_argument("--store", action="store_true", help="check the live store instead")
    verify.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(config: Config, args: argparse.Namespace) -> int:
    """Run an audit subcommand; a refusal (no key, no checkpoint, unknown scope) exits 2."""
    try:
        return _run(config, args)
    except (SigningKeyError, KekError, ExportError, DomainError, OSError) as error:
        console.print(f"[red]{escape(str(error))}[/red]", soft_wrap=True)
        return 2


def _run(config: Config, args: argparse.Namespace) -> int:
    if args.command == "verify" and not args.store:
        return _verify_bundle(args)
    if args.command == "keys" and args.action in ("generate-kek", "rotate-kek"):
        return _kek(config, args.action, printed=getattr(args, "print", False))
    if args.command == "keys":
        origin = args.origin if args.action == "generate" else None
        return _keys(config, args.action, origin, force=getattr(args, "force", False))
    with open_system(config) as system:
        audit = system.audit
        if args.command == "checkpoint":
            return _checkpoint(audit.checkpointer, args.every)
        if args.command == "export":
            with (
                writing_private(args.out) as out,  # it holds personal data
                progress_bar("Exporting events", quiet=args.quiet) as progress,
            ):
                result = audit.write_export(
                    out,
                    centre=args.centre,
                    portfolio=args.portfolio,
                    checkpoint=not args.no_checkpoint,
                    attachments=args.attachments,
                    progress=progress,
                    jobs=args.jobs,
                )
            manifest = result.manifest
            carried = sum(name.startswith(ATTACHMENTS) for name in manifest.files)
            console.print(
                f"Wrote {args.out}: {result.events} events ({manifest.scope})"
                f"{f', {carried} attachments' if manifest.attachments else ''}, cut at the "
                f"checkpoint of tree size {manifest.tree_size}, root {manifest.root_hash}",
                soft_wrap=True,
            )
            return 0
        trusted = args.trusted_key.read_text() if args.trusted_key else None
        return _show(audit.verify_store(VerifierKey.from_text(trusted) if trusted else None))


def _keys(config: Config, action: str, origin: str | None, *, force: bool) -> int:
    if action == "generate":
        key = SigningKey.generate(origin) if origin else SigningKey.generate()
        write_signing_key(config.signing_key_path, key, overwrite=force)
        console.print(f"Wrote {config.signing_key_path}; publish the verifier key:")
    else:
        key = load_signing_key(config)
    sys.stdout.write(key.verifier.to_text() + "\n")
    return 0


def _kek(config: Config, action: str, *, printed: bool) -> int:
    if action == "generate-kek" and printed:
        sys.stdout.write(encode_ring([generate()]).splitlines()[-1] + "\n")
        return 0
    if action == "generate-kek":
        write_kek_file(config.kek_path, [generate()])
        console.print(
            f"Wrote {config.kek_path}. Keep it apart from the data directory, and back it up "
            "apart too: without it no personal field can be read",
            soft_wrap=True,
        )
        return 0
    rotation = rotate_kek(config)
    console.print(
        f"Rewrapped {rotation.keys} subject keys and {rotation.secrets} webhook and LRS secrets "
        f"under KEK {rotation.kek_id}; the log was not touched."
    )
    if not rotation.retired:
        console.print(
            "To rotate, put a new KEK first in EPORTFOLIO_KEK (`eportfolio keys generate-kek "
            "--print`), the current one after it, and run this again."
        )
    elif config.kek is not None:
        retired = ", ".join(rotation.retired)
        console.print(f"Nothing uses {retired} any more: remove it from EPORTFOLIO_KEK.")
    else:
        console.print(
            f"{config.kek_path} now holds only the new KEK. Backups made before now need "
            f"the old one ({', '.join(rotation.retired)}): keep it only as long as them.",
            soft_wrap=True,
        )
    return 0


def _checkpoint(checkpointer: Checkpointer, every: float | None) -> int:
    if every is None:
        issued = checkpointer.issue_if_changed(Reason.ON_DEMAND)
        if issued is None:  # a checkpoint of the last checkpoint would say nothing new
            issued = latest_checkpoint(checkpointer.ledger) or checkpointer.issue(Reason.ON_DEMAND)
            notes.print(
                f"The log has not moved since the checkpoint of tree size {issued.tree_size} "
                f"({issued.recorded_at:%Y-%m-%d %H:%M:%S} UTC): none issued; that one is:",
                soft_wrap=True,
            )
        sys.stdout.write(issued.signed_note)  # exactly, so it can be saved as a trusted note
        return 0
    while True:  # a scheduler: stop it with Ctrl-C (or from the service manager)
        scheduled = checkpointer.issue_if_changed(Reason.SCHEDULED)
        if scheduled is not None:
            console.print(
                f"checkpoint: tree size {scheduled.tree_size}, root {scheduled.root_hash}"
            )
        time.sleep(every)


def _verify_bundle(args: argparse.Namespace) -> int:
    if args.bundle is None:
        console.print("verify needs a BUNDLE (or --store)")
        return 2
    trusted_checkpoint = args.trusted_checkpoint.read_text() if args.trusted_checkpoint else None
    trusted_key = args.trusted_key.read_text() if args.trusted_key else None
    if not args.bundle.is_file():
        console.print(f"[red]{escape(str(args.bundle))} is not a file[/red]", soft_wrap=True)
        return 2
    with progress_bar("Verifying events", quiet=args.quiet) as progress:
        report = verify_bundle_reporting(
            args.bundle,
            trusted_checkpoint=trusted_checkpoint,
            trusted_key=trusted_key,
            progress=progress,
        )
    return _show(report)


@contextmanager
def progress_bar(what: str, *, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr, taking (done, total); none with --quiet or off a terminal,
    so piped or captured output stays the report alone."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _show(report: Report) -> int:
    for line in report.checked:
        console.print(f"[green]ok[/green]    {escape(line)}")
    for problem in report.problems:
        console.print(f"[red]FAIL[/red]  {escape(str(problem))}")
    verdict = "[green]Verified.[/green]" if report.verified else "[red]NOT verified.[/red]"
    console.print(f"{verdict} {len(report.problems)} problems.")
    return 0 if report.verified else 1
