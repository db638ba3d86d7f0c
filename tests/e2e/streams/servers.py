"""Real HTTP servers on 127.0.0.1 for the stream tests: the app, and a webhook receiver.

Each runs uvicorn in a thread on a port the OS picks, and stops (joining the thread) when
its `with` block ends, so nothing outlives a test.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[..., Awaitable[None]]


@contextmanager
def serve(app: Asgi, *, lifespan: str = "on", grace: int = 2) -> Iterator[str]:
    """Serve `app` on 127.0.0.1:<free port>; yields its base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan=lifespan,  # type: ignore[arg-type]
        log_level="warning",
        timeout_graceful_shutdown=grace,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn")
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "the test server did not stop"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float


Reply = tuple[int, dict[str, str]]
Script = Callable[[int, str], Reply]
"""(number of requests before this one, path) -> (status, headers)."""


@dataclass
class Receiver:
    """An ASGI webhook endpoint that answers as `script` says and keeps every request."""

    script: Script = lambda n, path: (200, {})
    stall_first: float = 0.0  # seconds the first request waits before any answer
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if self.stall_first and not self.requests:
            self.stall_first, stall = 0.0, self.stall_first
            await asyncio.sleep(stall)  # the client gives up meanwhile: not recorded
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"late"})
            return
        with self._lock:
            status, extra = self.script(len(self.requests), scope["path"])
            self.requests.append(Received(scope["path"], headers, body, status, time.monotonic()))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in extra.items()],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})
        with self._arrived:
            self._arrived.notify_all()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: predicate(list(self.requests)), timeout)
