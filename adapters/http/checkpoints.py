"""The tamper-evident log over HTTP: checkpoints, the public key and export bundles.

Checkpoints and the public key are public material (anyone with a token may fetch them and
check them offline); an export is scoped like the audit view: a centre's staff for their
own centre, an EV for the centres allocated to them, the administrator for any scope.
A GET never writes: an export is cut at the latest checkpoint as it stands, and
`POST /audit/checkpoints` issues a new one first if the caller needs the newest events.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import anyio.to_thread
from litestar import Controller, Response, get, post
from litestar.params import QueryParameter

from adapters.audit.export import ExportError
from adapters.audit.signing import SigningKeyError
from adapters.http.problems import READ, WRITE, problem, responses
from adapters.http.response_bodies import Checkpoint, PublicKey
from adapters.http.writes import GrantDep, ServicesDep
from domain.events import CheckpointIssued
from service.checkpoints import Reason, checkpoints, latest_checkpoint

ZIP = "application/zip"


def _checkpoint(event: CheckpointIssued) -> Checkpoint:
    return Checkpoint(
        event_id=event.event_id,
        recorded_at=event.recorded_at,
        origin=event.origin,
        tree_size=event.tree_size,
        root_hash=event.root_hash,
        key_id=event.key_id,
        reason=event.reason,
        signed_note=event.signed_note,
    )


def _no_key(error: SigningKeyError) -> Exception:
    return problem(503, f"the log has no signing key: {error}", rule="no_signing_key")


class AuditLogController(Controller):
    path = "/audit"
    tags = ["audit trail"]

    @get("/checkpoints", operation_id="list_checkpoints", responses=responses(*READ))
    async def list_checkpoints(self, services: ServicesDep) -> list[Checkpoint]:
        """Every signed checkpoint of the Merkle log, oldest first (C2SP signed notes)."""
        issued = await anyio.to_thread.run_sync(checkpoints, services.app.ledger)
        return [_checkpoint(event) for event in issued]

    @get("/checkpoints/latest", operation_id="latest_checkpoint", responses=responses(*READ))
    async def latest(self, services: ServicesDep) -> Checkpoint:
        """The newest checkpoint: the tree size and root an export is cut at."""
        event = await anyio.to_thread.run_sync(latest_checkpoint, services.app.ledger)
        if event is None:
            raise problem(404, "no checkpoint has been issued yet", rule="no_checkpoint")
        return _checkpoint(event)

    @post(
        "/checkpoints",
        operation_id="issue_checkpoint",
        responses=responses(*WRITE, 503),
        status_code=201,
    )
    async def issue(self, services: ServicesDep) -> Checkpoint:
        """Sign the tree over everything stored now (none new if nothing changed)."""

        def issue() -> CheckpointIssued:
            checkpointer = services.audit.checkpointer
            return checkpointer.issue_if_changed(Reason.ON_DEMAND) or _latest(services)

        try:
            event = await anyio.to_thread.run_sync(issue)
        except SigningKeyError as error:
            raise _no_key(error) from None
        return _checkpoint(event)

    @get("/public-key", operation_id="get_public_key", responses=responses(*READ, 503))
    async def public_key(self, services: ServicesDep) -> PublicKey:
        """The log's Ed25519 verifier key (C2SP vkey), to check checkpoints offline."""
        try:
            key = await anyio.to_thread.run_sync(lambda: services.audit.key.verifier)
        except SigningKeyError as error:
            raise _no_key(error) from None
        return PublicKey(name=key.name, key_id=key.key_id, vkey=key.to_text())

    @get(
        "/export",
        operation_id="export_bundle",
        responses=responses(*READ, 409, 500, 503),
        media_type=ZIP,
    )
    async def export(
        self,
        services: ServicesDep,
        grant: GrantDep,
        portfolio_id: Annotated[UUID | None, QueryParameter()] = None,
        centre_id: Annotated[
            UUID | None,
            QueryParameter(description="The centre to export; a centre's staff: their own."),
        ] = None,
        attachments: Annotated[
            bool,
            QueryParameter(description="Include the evidence's files, covered by the manifest."),
        ] = False,
    ) -> Response[bytes]:
        """A zip to check with `eportfolio verify`, cut at the latest checkpoint.

        Events, decoded JSON, checkpoints, the public key, inclusion proofs and a summary;
        with `attachments=true`, the evidence's files too. Without a centre (the
        administrator only) it holds the whole log.
        """
        del centre_id  # the guard resolved it (and checked it) into the grant
        centre = grant.centre_id
        try:
            bundle = await anyio.to_thread.run_sync(
                lambda: services.audit.export(
                    centre=centre, portfolio=portfolio_id, checkpoint=False, attachments=attachments
                )
            )
        except ExportError as error:
            if error.rule == "no_checkpoint":
                detail = f"{error} (POST /audit/checkpoints)"
                raise problem(409, detail, rule=error.rule) from None
            raise problem(500, str(error), rule=error.rule) from None
        except SigningKeyError as error:
            raise _no_key(error) from None
        name = f"eportfolio-{portfolio_id or centre or 'log'}-{bundle.manifest.tree_size}.zip"
        return Response(
            bundle.data,
            media_type=ZIP,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


def _latest(services: ServicesDep) -> CheckpointIssued:
    event = latest_checkpoint(services.app.ledger)
    if event is None:  # issue_if_changed returns None only when one exists
        msg = "no checkpoint after issuing one"
        raise RuntimeError(msg)
    return event
