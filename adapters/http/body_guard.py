"""JSON bodies checked before they are decoded: a hostile body is a 400, never a 500.

litestar caps the size (`request_max_body_size`, 413). Here, before msgspec sees the bytes:
they must be UTF-8, and nested no deeper than `MAX_DEPTH` (5,000 levels of `[` would
exhaust the decoder's recursion). After decoding, no text may hold a NUL character: it is
no part of any name or note, and some stores and tools cut strings at it.
"""

from __future__ import annotations

import operator
import re
from itertools import accumulate, count
from typing import Any

import anyio.to_thread
from litestar import Request

from adapters.http.problems import problem

IN_THREAD = 64 * 1024  # bytes: larger bodies are checked in a worker thread
MAX_DEPTH = 32  # the deepest body the API takes is 5 levels (a sufficiency policy)
# A JSON string, to its closing quote or the end: possessive, so it never backtracks and a
# string is always consumed whole from its opening quote (linear, even when unterminated).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")  # an opening is 2, a closing 0
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[{]}"))


def check_json(body: bytes) -> None:
    """Refuse (400) a body that is not UTF-8 or nests deeper than MAX_DEPTH."""
    try:
        body.decode()
    except UnicodeDecodeError as error:
        raise problem(
            400, f"the body is not valid UTF-8 (byte {error.start})", field="body"
        ) from None
    brackets = body.count(b"[") + body.count(b"{")  # no deeper than there are openings
    if brackets > MAX_DEPTH and nesting(body) > MAX_DEPTH:
        raise problem(400, f"the body nests deeper than {MAX_DEPTH} levels", field="body")


async def check_body(body: bytes) -> None:
    """`check_json` from async code: a hostile megabyte takes ~0.1 s, so not on the loop."""
    if len(body) > IN_THREAD:
        await anyio.to_thread.run_sync(check_json, body)
    else:
        check_json(body)


def nesting(body: bytes) -> int:
    """How deep the body's brackets nest, outside strings; C-speed passes only."""
    steps = _STRING.sub(b"", body).translate(_STEPS, _NOT_BRACKETS)
    # after i + 1 steps the depth is their sum minus (i + 1)
    return max(map(operator.sub, accumulate(steps), count(1)), default=0)


def nul_at(value: Any, path: str = "") -> str | None:
    """The path of the first text (or key) holding a NUL character, if any."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here
            if (found := nul_at(item, here)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := nul_at(item, f"{path}[{index}]")) is not None:
                return found
    return None


class CheckedRequest(Request[Any, Any, Any]):
    """litestar's request, with its JSON body checked before and after decoding."""

    async def json(self) -> Any:
        body = await self.body()
        await check_body(body)
        value = await super().json()
        if b"\\u0000" in body and (field := nul_at(value)) is not None:
            raise problem(400, f"{field}: text may not contain NUL characters", field=field)
        return value
