"""Command handling: load, decide, save — with idempotency keys and optimistic concurrency.

One command writes one event to one stream. Rules run against freshly loaded state; when
another writer wins the race the command is decided again on the new state, so a
conflict never loses a write and never lets a rule be skipped.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import msgspec
from eventsourcing.persistence import IntegrityError

from domain import assessment as a
from domain import centre_rules, portfolio_rules
from domain import commands as c
from domain.centre import CentreState, fold_centre
from domain.errors import AlreadyExists, NotFound
from domain.events import Event
from domain.portfolio import PortfolioState, fold_portfolio
from domain.spec import SpecCatalogue, UnitSpec
from projections.judgement import judge
from service import claims
from service.codec import Receipt, Recorded
from service.errors import ConcurrencyConflict, IdempotencyKeyReused, VersionMismatch
from service.ledger import Ledger
from service.reactions import Reactions
from service.travel import Centres, Timeline

RETRIES = 20
BACKOFF_CAP = 0.05  # seconds
RECEIPTS = uuid5(NAMESPACE_URL, "urn:eportfolio:idempotency")


class WriteResult(msgspec.Struct, frozen=True, kw_only=True):
    """What every write returns: the new event and where it sits."""

    event_id: UUID
    stream_id: UUID
    version: int
    position: int
    replayed: bool = False
    event: Event | None = None  # what was decided; None on a replay
    effects: dict[str, int] = {}  # what the reactions to the event counted (service.reactions)


class Eportfolio:
    """The application service: every write goes through `execute`."""

    def __init__(
        self,
        ledger: Ledger,
        specs: SpecCatalogue,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], UUID] = uuid4,
        reactions: Reactions | None = None,
    ) -> None:
        self.ledger = ledger
        self.specs = specs
        self.clock = clock
        self.new_id = new_id
        self.reactions = reactions or Reactions()
        self._claims_settled = False
        self._claims_lock = threading.Lock()
        self.reads = _LedgerReads(self)
        self._pinned: dict[tuple[str, str], UnitSpec] = {}  # spec_of; the catalogue is fixed
        # What writes and access checks decide on, folded on from held states by the
        # events since: a 1,000-event portfolio is not folded from its first event per
        # write. Folds of facts (personal fields sealed), shared with time travel.
        self.timeline = Timeline()
        self._centres = Centres()

    # ---- reads -----------------------------------------------------------------------

    def centre(self, centre_id: UUID) -> CentreState:
        state = fold_centre(self.ledger.centre_events(centre_id))
        if state is None:
            raise NotFound(f"no centre {centre_id}", field="centre_id")
        return state

    def portfolio(self, portfolio_id: UUID) -> PortfolioState:
        state = fold_portfolio(self.ledger.portfolio_events(portfolio_id))
        if state is None:
            raise NotFound(f"no portfolio {portfolio_id}", field="portfolio_id")
        return state

    def centre_facts(self, centre_id: UUID) -> CentreState:
        """The centre as the rules see it: names and texts sealed (rules never read them).

        From the ledger's decoded facts, so no key is used: what access checks read too.
        The state is held for the next read (`service.travel.Centres`): never change it.
        """
        state = self._centres.latest(centre_id, self.ledger.centre_facts(centre_id))
        if state is None:
            raise NotFound(f"no centre {centre_id}", field="centre_id")
        return state

    def _portfolio_facts(self, portfolio_id: UUID) -> PortfolioState:
        """The portfolio as the rules see it, folded on from a held state: never change it."""
        state = self.timeline.latest(portfolio_id, self.ledger.portfolio_facts(portfolio_id))
        if state is None:
            raise NotFound(f"no portfolio {portfolio_id}", field="portfolio_id")
        return state

    def spec(self, unit_code: str, version: int | None = None) -> UnitSpec:
        spec = self.specs.get(unit_code, version)
        if spec is None:
            raise NotFound(f"no unit {unit_code}", field="unit_code")
        return spec

    def spec_of(self, portfolio: PortfolioState) -> UnitSpec:
        """The spec a portfolio pinned. Found once per (unit, hash): `by_hash` hashes every
        version of the unit on each call, and every portfolio write asks."""
        key = (portfolio.unit_code, portfolio.spec_hash)
        spec = self._pinned.get(key)
        if spec is None:
            spec = self.specs.by_hash(*key)
            if spec is not None:
                self._pinned[key] = spec
        if spec is None:
            raise NotFound(
                f"unit {portfolio.unit_code} v{portfolio.spec_version} "
                f"({portfolio.spec_hash[:12]}) is no longer in the catalogue",
                field="unit_code",
            )
        return spec

    # ---- writes ----------------------------------------------------------------------

    def execute(
        self,
        actor: c.Actor,
        command: c.Command,
        *,
        target: UUID | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> WriteResult:
        """Decide `command` on the current state of its stream and save the event.

        `target` is the centre (centre commands) or portfolio (portfolio commands);
        RegisterCentre and Enrol name their new stream in the command itself.
        """
        self.settle_claims()
        receipt_id = fingerprint = None
        if idempotency_key is not None:
            receipt_id = uuid5(RECEIPTS, f"{actor.id}/{idempotency_key}")
            fingerprint = _fingerprint(command, target)
        for attempt in range(RETRIES):
            if receipt_id is not None and fingerprint is not None:
                replay = self._replay(receipt_id, fingerprint)
                if replay is not None:
                    return replay
            stamp = c.Stamp(event_id=self.new_id(), actor=actor, recorded_at=self.clock())
            stream_id, version, event = self._decide(command, target, stamp)
            if expected_version is not None and version - 1 != expected_version:
                raise VersionMismatch(
                    f"stream is at version {version - 1}, not {expected_version}",
                    field="If-Match",
                )
            # The ids it takes first: the event stays the last record of its save
            # but for the receipt, so a checkpoint covering it covers its claims too.
            records = [  # first without reading claims: a held id fails the save, see claims_for
                *claims.claims_for(self.ledger, stream_id, event, look=attempt > 0),
                Recorded(stream_id, version, event),
            ]
            at = len(records) - 1
            if receipt_id is not None and fingerprint is not None:
                receipt = Receipt(
                    fingerprint=fingerprint,
                    event_ids=(event.event_id,),
                    streams=((stream_id, version),),
                )
                records.append(Recorded(receipt_id, 1, receipt))
            try:
                recordings = self.ledger.save(*records)
            except IntegrityError:  # decided again: If-Match then fails if the stream moved,
                _backoff(attempt)  # and a claim or receipt someone else saved is found
                continue
            position = recordings[at].notification.id
            return WriteResult(
                event_id=event.event_id,
                stream_id=stream_id,
                version=version,
                position=position,
                event=event,
                effects=self.reactions.run(event, position),
            )
        raise ConcurrencyConflict(f"gave up after {RETRIES} conflicting attempts; retry")

    def _decide(
        self, command: c.Command, target: UUID | None, stamp: c.Stamp
    ) -> tuple[UUID, int, Event]:
        """One lookup in the stream's rule table; the rule gets None for a stream it opens."""
        stream_id = self._stream_of(command, target)
        opens = type(command).OPENS is not None
        centre_rule = centre_rules.RULES.get(type(command))
        if centre_rule is not None:
            centre = None if opens else self.centre_facts(stream_id)
            event: Event = centre_rule(centre, command, stamp, self.reads)
            return stream_id, (0 if centre is None else centre.version) + 1, event
        portfolio_rule = portfolio_rules.RULES.get(type(command))
        if portfolio_rule is None:
            msg = f"no rule decides {type(command).__name__}"
            raise TypeError(msg)
        ctx = None if opens else self._context(stream_id)
        event = portfolio_rule(ctx, command, stamp, self.reads)
        return stream_id, (0 if ctx is None else ctx.portfolio.version) + 1, event

    def _stream_of(self, command: c.Command, target: UUID | None) -> UUID:
        """The stream a command opens (named in the command itself), else its target."""
        opens = type(command).OPENS
        if opens is not None:
            stream_id: UUID = getattr(command, opens)
            self._require_new(stream_id, opens)
            return stream_id
        if target is None:
            msg = f"{type(command).__name__} needs a target stream"
            raise TypeError(msg)
        return target

    def _context(self, portfolio_id: UUID) -> a.Context:
        portfolio = self._portfolio_facts(portfolio_id)
        centre = self.centre_facts(portfolio.centre_id)
        return a.Context(portfolio, centre, self.spec_of(portfolio), judge)

    def settle_claims(self) -> None:
        """Claim the ids of a store written before claims existed, once per process."""
        if self._claims_settled:
            return
        with self._claims_lock:
            if not self._claims_settled and not claims.settled(self.ledger):
                claims.backfill(self.ledger)
            self._claims_settled = True

    def _centres_holding(self, learner_id: UUID, *, besides: UUID) -> list[CentreState]:
        """Every other centre that registered this learner (stores from before claims)."""
        return [
            self.centre_facts(c_id)
            for c_id in self.ledger.learner_centres(learner_id)
            if c_id != besides
        ]

    def _require_new(self, stream_id: UUID, field: str) -> None:
        if self.ledger.recorded(stream_id):
            raise AlreadyExists(f"{stream_id} already exists", field=field)

    def _replay(self, receipt_id: UUID, fingerprint: str) -> WriteResult | None:
        receipt = self.ledger.receipt(receipt_id)
        if receipt is None:
            return None
        if receipt.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "this idempotency key was used for a different request", field="Idempotency-Key"
            )
        (stream_id, version), event_id = receipt.streams[0], receipt.event_ids[0]
        return WriteResult(
            event_id=event_id,
            stream_id=stream_id,
            version=version,
            position=self.ledger.position_of(stream_id, version),
            replayed=True,
        )


class _LedgerReads:
    """The rules' `Reads`, answered from the ledger: facts only, personal fields sealed."""

    def __init__(self, app: Eportfolio) -> None:
        self._app = app

    @property
    def specs(self) -> SpecCatalogue:
        return self._app.specs

    def spec(self, unit_code: str) -> UnitSpec:
        return self._app.spec(unit_code)

    def centre(self, centre_id: UUID) -> CentreState:
        return self._app.centre_facts(centre_id)

    def learner_portfolios(self, learner_id: UUID) -> list[PortfolioState]:
        return self._app.ledger.learner_portfolios(learner_id)

    def centres_holding(self, learner_id: UUID, *, besides: UUID) -> list[CentreState]:
        return self._app._centres_holding(learner_id, besides=besides)


def _backoff(attempt: int) -> None:
    """Full jitter: racing writers spread out instead of colliding again in lockstep."""
    time.sleep(random.uniform(0, min(BACKOFF_CAP, 0.001 * 2**attempt)))


def _fingerprint(command: c.Command, target: UUID | None) -> str:
    # fields in name order: the fingerprint never depends on how a command class is laid out
    body = msgspec.json.encode([type(command).__name__, str(target), command], order="sorted")
    return hashlib.sha256(body).hexdigest()
