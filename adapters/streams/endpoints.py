"""HTTP endpoints of the integrator streams: pull feed, SSE, webhooks, LRSs, schemas, AsyncAPI.

Mounted by one line: `create_app` lists `api_streams_plugin(config)` (the API's policy guard
and its grant's centre), any other app `StreamsPlugin(open_streams, access)`. The plugin adds
the controllers, provides `streams` and `stream_access` and runs the streams in a lifespan.
What a caller may see is the HTTP layer's decision, passed in as `access` (a `StreamAccess`
per request); every channel applies it to every event it sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Litestar, Request, Response, delete, get, patch, post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import (
    FromPath,
    FromQuery,
    HeaderParameter,
    JSONBody,
    PathParameter,
    QueryParameter,
)
from litestar.plugins import InitPluginProtocol
from litestar.response import Stream
from litestar.router import Router
from litestar.status_codes import HTTP_202_ACCEPTED
from litestar.types import Guard

from adapters.config import Config
from adapters.http.dependencies import Services
from adapters.http.openapi import VERSION_TAG, DocumentedHeader
from adapters.http.params import header_schema, int_range
from adapters.http.policy import authorize
from adapters.http.problems import READ, WRITE, problem, responses
from adapters.http.writes import IF_MATCH_PATTERN, expected_version
from adapters.roles import RoleRunner
from adapters.streams import Streams, build_streams
from adapters.streams.bodies import (
    Deliveries,
    FeedPage,
    NewWebhook,
    Redelivery,
    SecretRotation,
    WebhookChanges,
    WebhookCreated,
    WebhookView,
)
from adapters.streams.envelope import TYPES, StreamEvent
from adapters.streams.feed import MAX_POSITION, Filters, UnknownType
from adapters.streams.schemas import asyncapi_document, encoded_event_schema
from adapters.streams.settings import StreamSettings
from adapters.streams.signing import BadEndpoint
from adapters.streams.webhook_store import Stale, Status, Subscription
from domain.events import Role


class StreamAccess(msgspec.Struct, frozen=True, kw_only=True):
    """Who is reading, and the centres they may see (None: every centre)."""

    actor_id: UUID
    centres: frozenset[UUID] | None

    def visible(self, event: StreamEvent) -> bool:
        if self.centres is None:
            return True
        return event.centre_id is not None and event.centre_id in self.centres

    def filters(self, centre_ids: frozenset[UUID], **more: Any) -> Filters:
        """The caller's filters, refusing centres out of reach (403) and unknown types (400)."""
        if self.centres is not None and not centre_ids <= self.centres:
            raise problem(403, "a centre_id is outside your access", rule="out_of_scope")
        try:
            return Filters(centre_ids=centre_ids, **more)
        except UnknownType as error:
            raise problem(400, str(error), field="type") from None


AccessResolver = Callable[[Request[Any, Any, Any]], StreamAccess]
StreamsDep = NamedDependency[Streams]
After = Annotated[int, int_range(0, MAX_POSITION, description="The cursor: a log position")]
Limit = Annotated[int, int_range(1, 1_000)]
Types = Annotated[
    list[str] | None,
    QueryParameter(
        name="type",
        description="CloudEvents types (any of them; repeat the parameter for more)",
        schema_extra={"type": "array", "oneOf": None, "items": {"enum": sorted(TYPES)}},
    ),
]
AccessDep = NamedDependency[StreamAccess]
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        description='The webhook version you last read (its ETag, e.g. "3"): 412 if it moved; '
        "`*`: any version.",
        schema_extra=header_schema(IF_MATCH_PATTERN),
    ),
]
ETAG = [
    DocumentedHeader(
        name="ETag",
        description='The webhook\'s version, quoted ("3"): send it back as If-Match.',
        schema=VERSION_TAG,
    )
]
JSON, BATCH = "application/json", "application/cloudevents-batch+json"
NEXT_AFTER = "Eportfolio-Next-After"

#: What `GET /schemas/events/{name}` answers: a JSON Schema document (an object), as bytes.
SCHEMA_DOCUMENT = ResponseSpec(
    data_container=dict[str, Any],
    media_type="application/schema+json",
    description="The JSON Schema (2020-12) of the type's `data`",
    generate_examples=False,
)
SchemaName = Annotated[
    str,
    PathParameter(
        description="A published CloudEvents type, with or without `.json`",
        schema_extra={"enum": [*sorted(TYPES), *(f"{name}.json" for name in sorted(TYPES))]},
    ),
]


def _ids(values: list[UUID] | None) -> frozenset[UUID]:
    return frozenset(values or ())


class EventsController(Controller):
    path = "/events"
    tags = ["streams"]

    @get("/", operation_id="list_events", responses=responses(*READ, 409), sync_to_thread=True)
    def list_events(
        self,
        *,
        request: Request[Any, Any, Any],
        streams: StreamsDep,
        stream_access: AccessDep,
        after: After = 0,
        limit: Limit = 100,
        centre_id: FromQuery[list[UUID] | None] = None,
        portfolio_id: FromQuery[list[UUID] | None] = None,
        types: Types = None,
    ) -> Response[FeedPage]:
        """Events after a position, in log order, and the cursor to continue from.

        With `Accept: application/cloudevents-batch+json` the body is the CloudEvents batch
        (a JSON array) and the cursor is in `Eportfolio-Next-After` and a `Link: rel="next"`.
        A cursor past the end of the log is refused (409 `cursor_ahead`, with `log_end`).
        """
        filters = stream_access.filters(
            _ids(centre_id), portfolio_ids=_ids(portfolio_id), types=frozenset(types or ())
        )
        page = streams.log.read(after, limit, filters, stream_access.visible)
        if not page.events:
            _not_ahead(streams, after, "after")
        if request.accept.best_match([JSON, BATCH], default=JSON) == BATCH:
            cursor = str(page.next_after)
            query = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
            link = request.url.with_replacements(query=urlencode([*query, ("after", cursor)]))
            headers = {NEXT_AFTER: cursor, "Link": f'<{link}>; rel="next"'}
            body = b"[" + b",".join(e.body for e in page.events) + b"]"
            return Response(body, media_type=BATCH, headers=headers)  # type: ignore[arg-type]
        events = [msgspec.Raw(e.body) for e in page.events]
        return Response(FeedPage(events=events, next_after=page.next_after))

    @get("/stream", operation_id="stream_events", responses=responses(*READ, 409))
    async def stream_events(
        self,
        *,
        streams: StreamsDep,
        stream_access: AccessDep,
        after: Annotated[int | None, int_range(0, MAX_POSITION)] = None,
        last_event_id: Annotated[
            str | None, HeaderParameter(name="Last-Event-ID", max_length=20)
        ] = None,
        centre_id: FromQuery[list[UUID] | None] = None,
        portfolio_id: FromQuery[list[UUID] | None] = None,
        types: Types = None,
    ) -> Stream:
        """Server-Sent Events from after `Last-Event-ID` (or `after`, or now)."""
        filters = stream_access.filters(
            _ids(centre_id), portfolio_ids=_ids(portfolio_id), types=frozenset(types or ())
        )
        if last_event_id:
            if not last_event_id.isdigit() or int(last_event_id) > MAX_POSITION:
                raise problem(400, "Last-Event-ID must be a log position", field="Last-Event-ID")
            after = int(last_event_id)
        _not_ahead(streams, after, "Last-Event-ID" if last_event_id else "after")
        frames = streams.broadcaster.frames(after, filters, stream_access.visible)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return Stream(frames, media_type="text/event-stream", headers=headers)


class WebhooksController(Controller):
    path = "/webhooks"
    tags = ["streams"]

    @post("/", operation_id="create_webhook", responses=responses(*WRITE), sync_to_thread=True)
    def create_webhook(
        self, data: JSONBody[NewWebhook], streams: StreamsDep, stream_access: AccessDep
    ) -> WebhookCreated:
        """Register an endpoint; its `secret` is returned here and never again."""
        filters = stream_access.filters(
            data.centre_ids, portfolio_ids=data.portfolio_ids, types=data.types
        )
        _not_ahead(streams, data.from_position, "from_position")
        try:
            subscription, secret = streams.webhooks.register(
                stream_access.actor_id,
                data.url,
                filters,
                stream_access.centres,
                data.from_position,
                content_mode=data.content_mode,
                rate_limit=data.rate_limit_per_second,
            )
        except BadEndpoint as error:
            raise problem(422, str(error), rule="bad_endpoint", field="url") from None
        return _created(streams, subscription, secret)

    @get("/", operation_id="list_webhooks", responses=responses(*READ), sync_to_thread=True)
    def list_webhooks(self, streams: StreamsDep, stream_access: AccessDep) -> list[WebhookView]:
        found = streams.webhooks.store.subscriptions(stream_access.actor_id)
        return [_view(streams, s) for s in found]

    @get("/{webhook_id:uuid}", operation_id="get_webhook", responses=responses(*READ),
         response_headers=ETAG, sync_to_thread=True)  # fmt: skip
    def get_webhook(
        self, webhook_id: FromPath[UUID], streams: StreamsDep, stream_access: AccessDep
    ) -> Response[WebhookView]:
        return _tagged(streams, _own(streams, stream_access, webhook_id))

    @patch("/{webhook_id:uuid}", operation_id="update_webhook", responses=responses(*WRITE),
           response_headers=ETAG, sync_to_thread=True)  # fmt: skip
    def update_webhook(
        self,
        webhook_id: FromPath[UUID],
        data: JSONBody[WebhookChanges],
        streams: StreamsDep,
        stream_access: AccessDep,
        if_match: IfMatch = None,
    ) -> Response[WebhookView]:
        """Change the URL, filters, content mode, rate limit or status; the cursor stays.

        Delivery goes on after the cursor with the new settings: nothing is sent twice and
        nothing skipped. `status: "active"` re-enables a disabled endpoint where it stopped.
        """
        expected = _expected(if_match)
        current = _own(streams, stream_access, webhook_id)
        if not isinstance(data.url, msgspec.UnsetType):
            try:
                streams.webhooks.check_url(data.url)
            except BadEndpoint as error:
                raise problem(422, str(error), rule="bad_endpoint", field="url") from None
        old = current.registration.filters
        filters = stream_access.filters(
            _given(data.centre_ids, old.centre_ids),
            portfolio_ids=_given(data.portfolio_ids, old.portfolio_ids),
            types=_given(data.types, old.types),
        )

        def changed(s: Subscription) -> Subscription:
            r = s.registration
            registration = msgspec.structs.replace(
                r,
                url=_given(data.url, r.url),
                filters=filters,
                content_mode=_given(data.content_mode, r.content_mode),
                rate_limit=_given(data.rate_limit_per_second, r.rate_limit),
            )
            status, reason = s.status, s.status_reason
            if data.status == "active":
                status, reason = Status.ACTIVE, ""
            elif data.status == "disabled" and s.status is Status.ACTIVE:
                status, reason = Status.DISABLED, "disabled by its owner"
            return msgspec.structs.replace(
                s, registration=registration, status=status, status_reason=reason
            )

        try:
            subscription = streams.webhooks.change(webhook_id, changed, expected)
        except Stale as stale:
            raise _stale(stale) from None
        if subscription is None:
            raise problem(404, f"no webhook {webhook_id} of yours", field="webhook_id")
        return _tagged(streams, subscription)

    @post("/{webhook_id:uuid}/rotate-secret", operation_id="rotate_webhook_secret",
          responses=responses(*WRITE), response_headers=ETAG, status_code=200,
          sync_to_thread=True)  # fmt: skip
    def rotate_secret(
        self,
        webhook_id: FromPath[UUID],
        streams: StreamsDep,
        stream_access: AccessDep,
        data: JSONBody[SecretRotation | None] = None,
        if_match: IfMatch = None,
    ) -> Response[WebhookCreated]:
        """A new secret, returned here and never again; the old one signs too until it expires.

        Until `old_secret_expires_at` (default a day later) every request carries both
        signatures in `webhook-signature`, the new one first; after it, only the new one.
        """
        expected = _expected(if_match)
        _own(streams, stream_access, webhook_id)
        overlap = timedelta(seconds=(data or SecretRotation()).old_secret_expires_in)
        try:
            rotated = streams.webhooks.rotate_secret(webhook_id, overlap, expected)
        except Stale as stale:
            raise _stale(stale) from None
        if rotated is None:
            raise problem(404, f"no webhook {webhook_id} of yours", field="webhook_id")
        subscription, secret = rotated
        return Response(
            _created(streams, subscription, secret), headers={"ETag": f'"{subscription.version}"'}
        )

    @delete("/{webhook_id:uuid}", operation_id="delete_webhook", responses=responses(*READ),
            sync_to_thread=True)  # fmt: skip
    def delete_webhook(
        self, webhook_id: FromPath[UUID], streams: StreamsDep, stream_access: AccessDep
    ) -> None:
        _own(streams, stream_access, webhook_id)
        streams.webhooks.delete(webhook_id)

    @get("/{webhook_id:uuid}/deliveries", operation_id="list_webhook_deliveries",
         responses=responses(*READ), sync_to_thread=True)  # fmt: skip
    def list_deliveries(
        self,
        webhook_id: FromPath[UUID],
        streams: StreamsDep,
        stream_access: AccessDep,
        after: After = 0,
        limit: Limit = 100,
    ) -> Deliveries:
        """Every attempt in the order made: status, error, duration and outcome."""
        _own(streams, stream_access, webhook_id)
        attempts = streams.webhooks.store.attempts(webhook_id, after, limit)
        return Deliveries(attempts=attempts, next_after=attempts[-1].seq if attempts else after)

    @post("/{webhook_id:uuid}/redeliver", operation_id="redeliver_webhook",
          responses=responses(*WRITE), status_code=HTTP_202_ACCEPTED,
          sync_to_thread=True)  # fmt: skip
    def redeliver(
        self,
        webhook_id: FromPath[UUID],
        data: JSONBody[Redelivery],
        streams: StreamsDep,
        stream_access: AccessDep,
    ) -> WebhookView:
        """Deliver again from `from_position` on, re-enabling a disabled endpoint."""
        _own(streams, stream_access, webhook_id)
        _not_ahead(streams, data.from_position, "from_position")
        subscription = streams.webhooks.redeliver(webhook_id, data.from_position)
        if subscription is None:
            raise problem(404, f"no webhook {webhook_id}", field="webhook_id")
        return _view(streams, subscription)


def _not_ahead(streams: Streams, position: int | None, field: str) -> None:
    """409 if `position` is past the log's end: the cursor belongs to a log this is not (a
    client restored from a newer backup than the server's, or pointed at another store)."""
    if not position:
        return
    end = streams.log.head()
    if position > end:
        raise problem(
            409,
            f"{field}: position {position} is past the end of the log ({end}); this log is "
            f"older than your cursor (a restored backup?) or not the one it came from: "
            f"resume from {end} or below",
            rule="cursor_ahead",
            field=field,
            members={"log_end": end},
        )


def _view(streams: Streams, subscription: Subscription) -> WebhookView:
    return WebhookView.of(subscription, streams.webhooks.clock())


def _created(streams: Streams, subscription: Subscription, secret: str) -> WebhookCreated:
    view = _view(streams, subscription)
    return WebhookCreated(**msgspec.structs.asdict(view), secret=secret)


def _tagged(streams: Streams, subscription: Subscription) -> Response[WebhookView]:
    view = _view(streams, subscription)
    return Response(view, headers={"ETag": f'"{subscription.version}"'})


def _expected(if_match: str | None) -> int | None:
    return expected_version(if_match, example=3)


def _stale(stale: Stale) -> Exception:
    return problem(
        412,
        f"If-Match: {stale}; read it again",
        rule="version_mismatch",
        field="If-Match",
    )


T = TypeVar("T")


def _given(value: T | msgspec.UnsetType, default: T) -> T:
    return default if isinstance(value, msgspec.UnsetType) else value


def _own(streams: Streams, access: StreamAccess, webhook_id: UUID) -> Subscription:
    subscription = streams.webhooks.store.get(webhook_id)
    if subscription is None or subscription.registration.owner_id != access.actor_id:
        raise problem(404, f"no webhook {webhook_id} of yours", field="webhook_id")
    return subscription


class ContractsController(Controller):
    """Shapes, not data: public (no token), so a schema registry or validator can fetch them."""

    tags = ["streams"]

    @get("/schemas/events/{name:str}", operation_id="get_event_schema",
         responses={**responses(404), 200: SCHEMA_DOCUMENT}, security=[{}],
         media_type="application/schema+json", sync_to_thread=False)  # fmt: skip
    def event_schema(self, name: SchemaName, streams: StreamsDep) -> Response[bytes]:
        """The JSON Schema of an event type's `data`: each event's `dataschema` URL."""
        try:
            body = encoded_event_schema(name.removesuffix(".json"), streams.settings.public_url)
        except KeyError:
            raise problem(404, f"no event type {name}", field="name") from None
        return Response(body, media_type="application/schema+json")

    @get("/asyncapi.json", operation_id="get_asyncapi", security=[{}], sync_to_thread=False)
    def asyncapi(self, streams: StreamsDep) -> dict[str, Any]:
        """AsyncAPI 3.0: the feed, SSE, webhook and NATS channels and their messages."""
        return asyncapi_document(streams.settings)


class StreamsPlugin(InitPluginProtocol):
    """Adds the stream endpoints to an app and runs the streams for the app's lifetime.

    A lifespan manager, not startup/shutdown hooks: it is entered after the app's own
    lifespan (which opens the ledger) and left before it, so the streams stop first.
    """

    def __init__(
        self,
        open_streams: Callable[[Litestar], Streams],
        access: AccessResolver,
        *,
        guards: Sequence[Guard] = (),
        roles: Callable[[Litestar], RoleRunner | None] = lambda _: None,
    ) -> None:
        self.open_streams, self.access, self.guards = open_streams, access, list(guards)
        self.roles = roles  # the app's role runner: deliveries run where their lease is

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        from adapters.streams.lrs_endpoints import LrsController  # noqa: PLC0415 - it imports us

        handlers = [EventsController, WebhooksController, LrsController]
        app_config.route_handlers.append(
            Router(path="/", route_handlers=handlers, guards=self.guards)
        )
        app_config.route_handlers.append(ContractsController)  # public: PUBLIC_OPERATIONS
        app_config.dependencies["streams"] = Provide(_streams_of, sync_to_thread=False)
        app_config.dependencies["stream_access"] = Provide(self._access, sync_to_thread=False)
        app_config.lifespan.append(self._lifespan)
        return app_config

    def _access(self, request: Request[Any, Any, Any]) -> StreamAccess:
        return self.access(request)

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        streams = await anyio.to_thread.run_sync(self.open_streams, app)
        app.state["streams"] = streams
        try:
            await anyio.to_thread.run_sync(streams.start, self.roles(app))
            yield
        finally:
            del app.state["streams"]
            await anyio.to_thread.run_sync(streams.close)


def _streams_of(request: Request[Any, Any, Any]) -> Streams:
    streams = request.app.state.get("streams")
    if not isinstance(streams, Streams):
        raise problem(503, "the streams are starting or stopping", rule="unavailable")
    return streams


def api_streams_plugin(config: Config, settings: StreamSettings | None = None) -> StreamsPlugin:
    """The streams of `adapters.http.app`: its ledger, its policy guard, its grant's scope.

    An admin sees every centre; an integrator the centre its token is bound to; the policy
    table keeps every other role out.
    """

    def open_streams(app: Litestar) -> Streams:
        services = app.state.get("services")
        if not isinstance(services, Services):
            msg = "the streams need the app's services: mount this plugin in create_app"
            raise TypeError(msg)
        return build_streams(config, services.app.ledger, settings)

    def access(request: Request[Any, Any, Any]) -> StreamAccess:
        who = request.state["grant"].principal
        if who.role is Role.ADMIN:
            return StreamAccess(actor_id=who.subject_id, centres=None)
        centres = {who.centre_id} if who.centre_id is not None else set()
        return StreamAccess(actor_id=who.subject_id, centres=frozenset(centres))

    def roles(app: Litestar) -> RoleRunner:
        services = app.state.get("services")
        if not isinstance(services, Services):
            raise TypeError("the streams need the app's services: mount this plugin in create_app")
        return services.roles

    return StreamsPlugin(open_streams, access, guards=[authorize], roles=roles)
