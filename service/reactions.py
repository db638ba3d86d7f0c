"""What happens after an event is saved, in one place: reactions keyed by event type.

A command's event is decided by the rules and saved first; only then do its side effects
run (a checkpoint after an EV sample; after an erasure, the learner's key destroyed, their
orphaned attachments deleted and their tokens revoked). They are registered here by the
composition root, not written into a handler's tail or a subclass, so every way in (HTTP,
CLI, a test) gets the same effects. A reaction may run again for the same event (a retry
finishing a half-done erasure), so each must be idempotent. What a reaction counts (blobs
deleted, tokens revoked) comes back in the write's result as `effects`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from domain.events import Event

Reaction = Callable[[Event, int], Mapping[str, int] | None]
"""Called with the saved event and its log position; may return counts of what it did."""


class Reactions:
    """Reactions by event type, run in the order they were registered."""

    def __init__(self) -> None:
        self._by_type: dict[type[Event], list[Reaction]] = {}

    def on(self, event_type: type[Event], reaction: Reaction) -> None:
        self._by_type.setdefault(event_type, []).append(reaction)

    def run(self, event: Event, position: int) -> dict[str, int]:
        """Every reaction to `event`; the counts they report, summed by name."""
        effects: dict[str, int] = {}
        for reaction in self._by_type.get(type(event), ()):
            for name, count in (reaction(event, position) or {}).items():
                effects[name] = effects.get(name, 0) + count
        return effects
