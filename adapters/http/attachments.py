"""Attachments: content-addressed upload and download, per centre; the hash checked both ways.

A download is hashed before it is sent: a blob altered on disk is refused with a problem
(500 `blob_altered`, logged), never served with 200. The bytes sent come from the handle
that was checked and are hashed again as they go, so a file rewritten in place meanwhile
breaks the response off short of its Content-Length instead of completing it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO
from uuid import UUID

import anyio.to_thread
from litestar import Controller, Request, get, put
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.params import PathParameter, QueryParameter
from litestar.response import Stream

from adapters.http.problems import READ, WRITE, problem, responses
from adapters.http.response_bodies import BlobStored
from adapters.http.writes import GrantDep, ServicesDep
from adapters.store.blobs import CHUNK, BlobAltered, BlobTooLarge

Sha256 = Annotated[
    str, PathParameter(pattern=r"^[0-9a-f]{64}$", description="SHA-256, lower-case hex")
]
OCTETS = "application/octet-stream"
log = logging.getLogger(__name__)


class BlobUpload(Operation):
    """Documents the raw body the handler streams itself (so litestar does not buffer it)."""

    def __post_init__(self) -> None:
        binary = Schema(type="string", format="binary")  # type: ignore[arg-type]
        self.request_body = RequestBody(
            content={OCTETS: OpenAPIMediaType(schema=binary)},
            description="The file's bytes; their SHA-256 must be the one in the path.",
            required=True,
        )


class AttachmentsController(Controller):
    path = "/blobs"
    tags = ["attachments"]

    @put(
        "/{sha256:str}",
        operation_id="put_blob",
        request_max_body_size=None,
        operation_class=BlobUpload,
        responses=responses(*WRITE),
    )
    async def put_blob(
        self,
        request: Request[Any, Any, Any],
        sha256: Sha256,
        services: ServicesDep,
        grant: GrantDep,
    ) -> BlobStored:
        """Upload an attachment; evidence then refers to it by hash. Size is limited."""
        blobs, centre_id = services.blobs, grant.centre_id
        if centre_id is None:
            raise problem(403, "uploads belong to a centre", rule="out_of_scope")
        announced = request.headers.get("content-length", "")
        if announced.isdigit() and int(announced) > blobs.max_bytes:
            raise BlobTooLarge(blobs.max_bytes)
        upload = await anyio.to_thread.run_sync(blobs.begin)
        try:
            async for chunk in request.stream():
                if chunk:
                    await anyio.to_thread.run_sync(upload.write, chunk)
        except BaseException:
            await anyio.to_thread.run_sync(upload.discard)
            raise
        created = await anyio.to_thread.run_sync(blobs.commit, upload, sha256, centre_id)
        return BlobStored(sha256=sha256, size=upload.size, created=created)

    @get(
        "/{sha256:str}",
        operation_id="get_blob",
        responses=responses(*READ, 500),
        media_type=OCTETS,
        sync_to_thread=True,
    )
    def get_blob(
        self,
        sha256: Sha256,
        services: ServicesDep,
        grant: GrantDep,
        centre_id: Annotated[
            UUID | None, QueryParameter(description="The centre whose upload it is (EVs must say)")
        ] = None,
    ) -> Stream:
        """An attachment's bytes, once they are shown to hash to its name."""
        del centre_id  # the guard has read it into the grant
        try:
            file = None if grant.centre_id is None else services.blobs.open(sha256, grant.centre_id)
        except BlobAltered as error:
            log.error("attachment refused: %s", error)
            raise problem(500, str(error), rule=error.rule, field="sha256") from None
        if file is None:
            raise problem(404, f"no blob {sha256} at this centre", field="sha256")
        return Stream(
            _checked(file, sha256),
            media_type=OCTETS,
            headers={
                "Content-Length": str(os.fstat(file.fileno()).st_size),
                "Content-Disposition": f'attachment; filename="{sha256}"',
            },
        )


def _checked(file: BinaryIO, sha256: str) -> Iterator[bytes]:
    """The file's chunks; raising at the end (the response breaks off) if they changed."""
    digest = hashlib.sha256()
    try:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            yield chunk
    finally:
        file.close()
    if digest.hexdigest() != sha256:
        error = BlobAltered(sha256, digest.hexdigest())
        log.error("attachment altered while being sent: %s", error)
        raise error
