"""What a verification found: problems named by where they are, and what did verify."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

import msgspec


class Located(Protocol):
    """Something at a place in the log: an exported row, a stored event."""

    @property
    def position(self) -> int: ...

    @property
    def event_id(self) -> UUID | None: ...

    @property
    def stream(self) -> UUID: ...


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    what: str
    position: int | None = None
    event_id: UUID | None = None
    stream: UUID | None = None

    def __str__(self) -> str:
        where = []
        if self.position is not None:
            where.append(f"position {self.position}")
        if self.event_id is not None:
            where.append(f"event {self.event_id}")
        if self.stream is not None:
            where.append(f"stream {self.stream}")
        return f"{', '.join(where)}: {self.what}" if where else self.what


class Report(msgspec.Struct, kw_only=True):
    """Problems (any one fails the check) and, in plain words, what was verified."""

    problems: list[Problem] = []
    checked: list[str] = []

    @property
    def verified(self) -> bool:
        return not self.problems

    def fail(
        self,
        what: str,
        where: Located | int | None = None,
        *,
        position: int | None = None,
        stream: UUID | None = None,
    ) -> None:
        if isinstance(where, int):
            position = where
        elif where is not None:
            position, stream = where.position, where.stream
            self.problems.append(
                Problem(what=what, position=position, event_id=where.event_id, stream=stream)
            )
            return
        self.problems.append(Problem(what=what, position=position, stream=stream))

    def ok(self, what: str) -> None:
        self.checked.append(what)

    def lines(self) -> list[str]:
        return [f"ok    {line}" for line in self.checked] + [
            f"FAIL  {problem}" for problem in self.problems
        ]
