"""Stored form of events: msgspec JSON under the event's explicit TOPIC.

The topic, not the Python module path, names the class, so moving code never breaks the
store. A class whose schema changed beyond msgspec's evolution rules bumps `class_version`
and adds a pure upcast to its `UPCASTS` (`domain.events`, docs/adr/0014); a stored form
older than its class is upcast, as JSON, before msgspec converts it.

With a key store, an event's personal fields are sealed on the way in and opened on the way
out (`service.personal_data`), *after* upcasting: an upcast never sees personal data in
clear; without a key store (the offline verifier) they read as SEALED.
Reading a `SubjectErased` with a key store destroys that subject's key there too (at once,
idempotently): a process other than the eraser, following the log, drops the key as soon as
it sees the erasure instead of using a cached copy until it expires.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent

from domain.events import EVENT_TYPES, Event, SubjectErased, upcast
from service.personal_data import SealBroken, Sealer, SubjectKeys, open_fields


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """What a command with an idempotency key wrote: replaying the key returns this."""

    TOPIC = "eportfolio.service.command_receipt"
    class_version = 1
    fingerprint: str
    event_ids: tuple[UUID, ...]
    streams: tuple[tuple[UUID, int], ...]


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """A client-chosen id, taken: what kind of record it names, at which centre, since when.

    Saved with the event that first uses the id (`service.claims`), so an id can name only
    one record in the whole store; an EV's id names the same person at every centre.
    """

    TOPIC = "eportfolio.service.id_claim"
    class_version = 1
    id: UUID
    kind: str
    centre_id: UUID | None  # None: an EV, the awarding body's person
    stream_id: UUID  # where the first use is recorded
    event_id: UUID


Stored = Event | Receipt | Claim  # everything the ledger stores


class Recorded:
    """An event placed in a stream: what eventsourcing stores and returns."""

    __slots__ = ("event", "originator_id", "originator_version")

    def __init__(self, originator_id: UUID, originator_version: int, event: Stored):
        self.originator_id = originator_id
        self.originator_version = originator_version
        self.event = event


TYPES: dict[str, type[Stored]] = {**EVENT_TYPES, Receipt.TOPIC: Receipt, Claim.TOPIC: Claim}
_encoder = msgspec.json.Encoder()


@cache
def _decoder(cls: type[Stored]) -> Callable[[bytes], Stored]:
    return msgspec.json.Decoder(cls).decode


def encode(event: Stored) -> bytes:
    version = type(event).class_version
    if version == 1:
        return _encoder.encode(event)
    return _encoder.encode({**msgspec.to_builtins(event), "class_version": version})


def sealed(sealer: Sealer, stream_id: UUID, event: Event) -> bytes:
    """The stored form with the event's personal fields sealed for its subject."""
    state = msgspec.to_builtins(event)
    sealer.seal(stream_id, event, state)
    if (version := type(event).class_version) != 1:
        state["class_version"] = version
    return _encoder.encode(state)


_SEALED_MARK = b'{"sealed":'  # only structure, never inside a JSON string (quotes escape)


def decode(
    topic: str,
    state: bytes,
    *,
    keys: SubjectKeys | None = None,
    stream_id: UUID | None = None,
) -> Stored:
    """Decode stored bytes, opening sealed fields with `keys` (see `open_fields`).

    Raises MapperDeserialisationError naming the topic, also when a sealed field does not
    authenticate.
    """
    try:
        cls = TYPES[topic]
        personal = issubclass(cls, Event) and bool(cls.PERSONAL) and _SEALED_MARK in state
        if cls.class_version == 1 and not personal:
            return _decoder(cls)(state)
        raw: dict[str, Any] = msgspec.json.decode(state)
        version = raw.pop("class_version", 1)
        if issubclass(cls, Event):
            raw = upcast(raw, version, cls.UPCASTS)
            if personal:
                open_fields(cls, raw, stream_id, keys)
        return msgspec.convert(raw, cls)
    except (KeyError, msgspec.DecodeError, msgspec.ValidationError, SealBroken) as error:
        msg = f"cannot decode stored event of topic {topic!r}: {error}"
        raise MapperDeserialisationError(msg) from error


class EventMapper(Mapper[UUID]):
    """Maps `Recorded` to `StoredEvent` and back, keeping the library's cipher/compressor.

    With a `sealer` (the ledger sets it), personal fields are sealed per subject.
    """

    sealer: Sealer | None = None

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        recorded = cast(Recorded, domain_event)
        event = recorded.event
        if self.sealer is not None and isinstance(event, Event) and event.PERSONAL:
            state = sealed(self.sealer, recorded.originator_id, event)
        else:
            state = encode(event)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return StoredEvent(
            originator_id=recorded.originator_id,
            originator_version=recorded.originator_version,
            topic=recorded.event.TOPIC,
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        keys = self.sealer.keys if self.sealer is not None else None
        return self._recorded(stored_event, keys)

    def to_facts(self, stored_event: StoredEvent) -> Recorded:
        """The event with its personal fields left sealed (read as SEALED): no key is used."""
        return self._recorded(stored_event, None)

    def _recorded(self, stored_event: StoredEvent, keys: SubjectKeys | None) -> Recorded:
        state = stored_event.state
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        originator_id = stored_event.originator_id
        stream_id = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        event = decode(stored_event.topic, state, keys=keys, stream_id=stream_id)
        if keys is not None and isinstance(event, SubjectErased):
            keys.destroy(event.subject_id)  # the log says so: not one more read with it here
        return Recorded(stream_id, stored_event.originator_version, event)
