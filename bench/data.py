"""Realistic stores, fast: the demo centre copied into many centres, saved in big batches.

The template is `adapters.demo.load_demo` run once through `Eportfolio.execute` (so every
event was decided by the domain rules): one centre, 5 staff, 12 learners, 18 portfolios,
223 events of ~480 bytes. Each copy gets its own ids (every UUID in every event's JSON and
every stream id is XORed with a per-copy random mask), so copies are distinct centres,
people, portfolios, evidence and decisions that fold exactly like the original. Copies are
interleaved 16 at a time, event by event, so the log mixes centres and portfolios as live
traffic would; each group's centre set-up and enrolments are saved first. Everything is
written with the library's own `Application.save` (the ledger built by `build`, so
personal fields are sealed as in production), up to 5,000 events per call: the rules are
not re-run, which is what makes a million events take minutes instead of hours.
"""

from __future__ import annotations

import random
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec

from adapters.bootstrap import build
from adapters.demo import load_demo
from bench.common import stopwatch, store_config
from domain.events import CentreEvent, Event, LearnerEnrolled
from domain.spec import SpecCatalogue
from service.codec import Recorded
from service.ledger import Ledger

UUID_TEXT = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
INTERLEAVE = 16
SAVE_BATCH = 5_000


@dataclass(frozen=True)
class PortfolioRef:
    portfolio_id: UUID
    centre_id: UUID
    learner_id: UUID
    assessor_id: UUID


@dataclass
class Generated:
    events: int = 0
    seconds: float = 0.0
    centres: list[UUID] = field(default_factory=list)
    portfolios: list[PortfolioRef] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class Template:
    """The demo centre's events, encoded once, ready to be copied under new ids."""

    def __init__(self, specs: SpecCatalogue) -> None:
        with tempfile.TemporaryDirectory(prefix="bench-template-") as directory:
            app = build(store_config(Path(directory)), specs=specs)
            try:
                load_demo(app.ledger, specs)
                items = [app.ledger.decode(n) for n in app.ledger.notifications()]
            finally:
                app.ledger.close()
        self.rows: list[tuple[type[Any], bytes, int, bytes]] = [
            (type(r.event), str(r.originator_id).encode(), r.originator_version,
             msgspec.json.encode(r.event))
            for r in items
        ]  # fmt: skip
        ids = {stream for _, stream, _, _ in self.rows}
        for _, _, _, body in self.rows:
            ids.update(UUID_TEXT.findall(body))
        self.ids = sorted(ids)
        self._decoders: dict[type[Any], Callable[[bytes], Any]] = {
            cls: msgspec.json.Decoder(cls).decode for cls, _, _, _ in self.rows
        }

    def __len__(self) -> int:
        return len(self.rows)

    def copy(self, rng: random.Random) -> list[Recorded]:
        """The demo centre again under fresh ids: same shapes, sizes and rule outcomes."""
        mask = rng.getrandbits(128)
        table = {old: str(UUID(int=UUID(old.decode()).int ^ mask)).encode() for old in self.ids}

        def swap(match: re.Match[bytes]) -> bytes:
            return table[match.group()]

        out = []
        for cls, stream, version, body in self.rows:
            event = self._decoders[cls](UUID_TEXT.sub(swap, body))
            out.append(Recorded(UUID(table[stream].decode()), version, event))
        return out


def interleaved(copies: list[list[Recorded]]) -> Iterator[Recorded]:
    """Event i of every copy, then event i+1: each stream keeps its order."""
    for row in zip(*copies, strict=True):
        yield from row


def generate(
    ledger: Ledger,
    template: Template,
    events: int,
    *,
    seed: int = 7,
    progress: Callable[[int], None] = lambda done: None,
) -> Generated:
    """At least `events` events (whole centres) saved into `ledger`; what was made."""
    rng = random.Random(seed)
    made = Generated()
    centres = max(1, -(-events // len(template)))
    with stopwatch() as elapsed:
        for first in range(0, centres, INTERLEAVE):
            copies = [template.copy(rng) for _ in range(min(INTERLEAVE, centres - first))]
            # Centres and enrolments first: a portfolio event's personal fields are sealed
            # with its learner's key, found from the stored enrolment that opens its stream.
            setup: list[Recorded] = []
            rest: list[Recorded] = []
            for recorded in interleaved(copies):
                _note(made, recorded)
                opens = isinstance(recorded.event, CentreEvent | LearnerEnrolled)
                (setup if opens else rest).append(recorded)
            for batch in (
                setup,
                *(rest[i : i + SAVE_BATCH] for i in range(0, len(rest), SAVE_BATCH)),
            ):
                ledger.save(*batch)
                made.events += len(batch)
            progress(made.events)
    made.seconds = elapsed()
    return made


def _note(made: Generated, recorded: Recorded) -> None:
    event = recorded.event
    if isinstance(event, LearnerEnrolled):
        made.portfolios.append(
            PortfolioRef(event.portfolio_id, event.centre_id, event.learner_id, event.assessor_id)
        )
    elif isinstance(event, Event) and recorded.originator_version == 1:
        made.centres.append(recorded.originator_id)
