"""Rate limits, per client address and minute: writes, attachment uploads, failed token look-ups.

litestar's own `RateLimitMiddleware` (a fixed one-minute window in the app's `rate_limit`
store, in this process's memory) counts writes and uploads as they arrive. Failed look-ups
are counted after the answer: a request whose bearer token was refused (401) counts, and
once an address has used its allowance every request from it that carries a token is
refused before the token is looked up, until the window ends. A refusal is a 429 problem
with `Retry-After` (seconds); the `RateLimit-*` headers say where a client stands.
Each limit is off at 0. Behind a reverse proxy the address is the proxy's unless uvicorn
trusts its `X-Forwarded-For` (it does from 127.0.0.1 by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import (
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.types import Message, Receive, Scope, Send

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_upload(request: Request[Any, Any, Any]) -> bool:
    return request.method == "PUT" and request.url.path.startswith("/blobs/")


def is_write(request: Request[Any, Any, Any]) -> bool:
    return request.method in WRITES and not is_upload(request)


@dataclass
class FailedLookupConfig(RateLimitConfig):
    """The failed look-up limit's settings, and which addresses it has counted a refusal of."""

    refused: set[str] = field(default_factory=set)
    """Cache keys with a refusal recorded in the (in-memory) store: any other address has
    no history there, so its requests cost no store read. Shared by the middleware's
    instances (one per route), as the store is."""


class FailedLookupLimit(RateLimitMiddleware):
    """Counts only requests whose token was looked up and refused; then refuses them all."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not any(name.lower() == b"authorization" for name, _ in scope["headers"]):
            await self.app(scope, receive, send)  # nothing to look up: the guard's 401
            return
        app = scope["litestar_app"]
        request: Request[Any, Any, Any] = app.request_class(scope)
        store = self.config.get_store_from_app(app)
        key = self.cache_key_from_request(request)
        if self._may_have_history(key, store):
            async with self._lock:
                seen = await self.retrieve_cached_history(key, store)
            if not seen.history and isinstance(self.config, FailedLookupConfig):
                self.config.refused.discard(key)  # its window ended
            if len(seen.history) >= self.max_requests:
                raise TooManyRequestsException(
                    "too many requests with unknown tokens from this address",
                    headers=self.create_response_headers(cache_object=seen),
                )
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status == 401:
            async with self._lock:
                seen = await self.retrieve_cached_history(key, store)
                await self.set_cached_history(key=key, cache_object=seen, store=store)
                if isinstance(self.config, FailedLookupConfig):
                    self.config.refused.add(key)

    def _may_have_history(self, key: str, store: Store) -> bool:
        """False only when the store is this process's memory and no refusal from the
        address was recorded there: then its history is empty without reading it."""
        config = self.config
        if not isinstance(config, FailedLookupConfig) or not isinstance(store, MemoryStore):
            return True
        return key in config.refused


def _limit(
    kind: str,
    per_minute: int,
    config_class: type[RateLimitConfig] = RateLimitConfig,
    **options: Any,
) -> DefineMiddleware:
    config = config_class(
        rate_limit=("minute", per_minute),
        identifier_for_request=lambda request: f"{kind}:{get_remote_address(request)}",
        **options,
    )
    return config.middleware


def rate_limits(*, writes: int, uploads: int, failed_lookups: int) -> list[DefineMiddleware]:
    """The middleware for each limit that is on (requests per minute per address)."""
    limits = []
    if writes:
        limits.append(_limit("writes", writes, check_throttle_handler=is_write))
    if uploads:
        limits.append(_limit("uploads", uploads, check_throttle_handler=is_upload))
    if failed_lookups:
        limits.append(
            _limit(
                "failed-lookups",
                failed_lookups,
                FailedLookupConfig,
                middleware_class=FailedLookupLimit,
                set_rate_limit_headers=False,
            )
        )
    return limits


def retry_after(headers: dict[str, str]) -> dict[str, str]:
    """A 429's headers with `Retry-After`: the seconds until the window resets, at least 1."""
    reset = headers.get("RateLimit-Reset", "")
    seconds = max(1, int(reset)) if reset.lstrip("-").isdigit() else 60
    return {**headers, "Retry-After": str(seconds)}
