"""HTTP endpoints of a centre's Learning Record Stores: register, list, remove, attempts.

A centre admin's (the policy table admits no one else): each call acts on the caller's own
centre, and another centre's LRS is not found (404), as if it did not exist. The password
is taken and never returned; nor is the pseudonym key, which never leaves the store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from adapters.http.problems import READ, WRITE, problem, responses
from adapters.streams import Streams
from adapters.streams.endpoints import StreamAccess
from adapters.streams.feed import MAX_POSITION
from adapters.streams.lrs_store import Attempt, Lrs
from adapters.streams.signing import BadEndpoint

StreamsDep = NamedDependency[Streams]
AccessDep = NamedDependency[StreamAccess]
Position = Annotated[int, msgspec.Meta(ge=1, le=MAX_POSITION)]
# schema_extra: litestar renders a `le` bound as a float (9.223372036854776e18), not exact
After = Annotated[
    int,
    QueryParameter(
        ge=0,
        le=MAX_POSITION,
        schema_extra={"minimum": 0, "maximum": MAX_POSITION},
        description="The cursor: the `seq` of the last attempt seen",
    ),
]
Limit = Annotated[
    int, QueryParameter(ge=1, le=1_000, schema_extra={"minimum": 1, "maximum": 1_000})
]


class NewLrs(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    endpoint: Annotated[  # the xAPI base URL
        str, msgspec.Meta(min_length=1, max_length=2_000, extra_json_schema={"format": "uri"})
    ]
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]  # HTTP basic auth
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1_000)]
    from_position: Position | None = None  # default: the whole log, from the start


class LrsView(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    centre_id: UUID
    endpoint: str
    username: str
    position: int  # the last log position sent (or passed over)
    status: str
    status_reason: str
    created_at: datetime

    @classmethod
    def of(cls, lrs: Lrs) -> LrsView:
        r = lrs.registration
        return cls(
            id=lrs.id, centre_id=r.centre_id, endpoint=r.endpoint, username=r.username,
            position=lrs.position, status=lrs.status.value, status_reason=lrs.status_reason,
            created_at=r.created_at,
        )  # fmt: skip


class LrsDeliveries(msgspec.Struct, frozen=True, kw_only=True):
    attempts: list[Attempt]
    next_after: int  # pass as `after` to continue


def _centre(access: StreamAccess) -> UUID:
    """The one centre the caller administers."""
    if access.centres is None or len(access.centres) != 1:
        raise problem(403, "an LRS belongs to one centre: use its centre admin's token",
                      rule="out_of_scope")  # fmt: skip
    return next(iter(access.centres))


def _own(streams: Streams, access: StreamAccess, lrs_id: UUID) -> Lrs:
    lrs = streams.xapi.store.get(lrs_id)
    if lrs is None or lrs.registration.centre_id != _centre(access):
        raise problem(404, f"no LRS {lrs_id} of your centre", field="lrs_id")
    return lrs


class LrsController(Controller):
    path = "/lrs"
    tags = ["streams"]

    @post("/", operation_id="create_lrs", responses=responses(*WRITE), sync_to_thread=True)
    def create_lrs(
        self, data: JSONBody[NewLrs], streams: StreamsDep, stream_access: AccessDep
    ) -> LrsView:
        """Register the centre's LRS: its statements are sent from `from_position` on."""
        try:
            lrs = streams.xapi.register(
                _centre(stream_access),
                stream_access.actor_id,
                data.endpoint,
                data.username,
                data.password,
                from_position=data.from_position,
            )
        except BadEndpoint as error:
            raise problem(422, str(error), rule="bad_endpoint", field="endpoint") from None
        return LrsView.of(lrs)

    @get("/", operation_id="list_lrs", responses=responses(*READ), sync_to_thread=True)
    def list_lrs(self, streams: StreamsDep, stream_access: AccessDep) -> list[LrsView]:
        return [LrsView.of(x) for x in streams.xapi.store.of_centre(_centre(stream_access))]

    @get("/{lrs_id:uuid}", operation_id="get_lrs", responses=responses(*READ),
         sync_to_thread=True)  # fmt: skip
    def get_lrs(
        self, lrs_id: FromPath[UUID], streams: StreamsDep, stream_access: AccessDep
    ) -> LrsView:
        return LrsView.of(_own(streams, stream_access, lrs_id))

    @delete("/{lrs_id:uuid}", operation_id="delete_lrs", responses=responses(*READ),
            sync_to_thread=True)  # fmt: skip
    def delete_lrs(
        self, lrs_id: FromPath[UUID], streams: StreamsDep, stream_access: AccessDep
    ) -> None:
        """Stop sending and forget the LRS, its credentials and its attempts."""
        _own(streams, stream_access, lrs_id)
        streams.xapi.delete(lrs_id)

    @get("/{lrs_id:uuid}/deliveries", operation_id="list_lrs_deliveries",
         responses=responses(*READ), sync_to_thread=True)  # fmt: skip
    def list_deliveries(
        self,
        lrs_id: FromPath[UUID],
        streams: StreamsDep,
        stream_access: AccessDep,
        after: After = 0,
        limit: Limit = 100,
    ) -> LrsDeliveries:
        """Every attempt in the order made: the statement ids, status, error and outcome."""
        _own(streams, stream_access, lrs_id)
        attempts = streams.xapi.store.attempts(lrs_id, after, limit)
        return LrsDeliveries(attempts=attempts, next_after=attempts[-1].seq if attempts else after)
