"""Values as decoded from the bytes last written for them, to skip decoding them again."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar
from uuid import UUID

T = TypeVar("T")


class Recent(Generic[T]):
    """Decoded values by key, each with the bytes it was written as.

    An entry is used only if the stored bytes are still exactly those bytes, so a batch
    that failed, a rival runner's write or a rebuild can never leak a stale value in. The
    least recently kept go first past `entries` entries or, with `max_bytes`, past that
    many bytes of what they encode to (a decoded value takes a few times as much).
    """

    def __init__(self, entries: int | None = None, *, max_bytes: int | None = None) -> None:
        self.max_entries, self.max_bytes = entries, max_bytes
        self.entries: OrderedDict[UUID, tuple[bytes, T]] = OrderedDict()
        self.size = 0  # bytes held

    def get(self, key: UUID, body: bytes) -> T | None:
        """The value written as `body`, kept (for a value no one mutates)."""
        entry = self.entries.get(key)
        return entry[1] if entry is not None and entry[0] == body else None

    def take(self, key: UUID, body: bytes) -> T | None:
        """The value written as `body`, taken out: a caller that mutates it and then
        abandons it can never have it reused."""
        entry = self._drop(key)
        return entry[1] if entry is not None and entry[0] == body else None

    def keep(self, key: UUID, body: bytes, value: T) -> None:
        self._drop(key)
        self.entries[key] = (body, value)
        self.size += len(body)
        while (self.max_entries is not None and len(self.entries) > self.max_entries) or (
            self.max_bytes is not None and self.size > self.max_bytes
        ):
            self.size -= len(self.entries.popitem(last=False)[1][0])

    def _drop(self, key: UUID) -> tuple[bytes, T] | None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.size -= len(entry[0])
        return entry
