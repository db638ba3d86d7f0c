"""Personal fields sealed per data subject: the codec's half of crypto-shredding.

Each field an event class declares `PERSONAL` is stored as a token
`{"sealed": base64, "subject": id}` instead of its value: the value encrypted under the
subject's own data key, with the event's identity (topic, stream, event id, field, item)
as associated data, so a sealed value cannot be moved to another event or field. Destroying
the key (erasure) turns every such field into `ERASED` when read, everywhere at once, while
the stored bytes — and so the Merkle log over them — stay exactly as they were.

The cipher and the keys live in adapters behind `SubjectKeys`; this module only decides
what is sealed, under which subject and with which associated data. A field still at its
default (an empty note) carries no personal data and is stored as it is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

import msgspec

from domain.events import ERASED, Event
from domain.personal import sealable

SEALED = "[sealed]"
"""What a sealed field reads as to a reader without the key store (the offline verifier)."""
_AAD_PREFIX = b"eportfolio:personal:v1"


class KeyDestroyed(Exception):
    """Sealing for a subject whose key was destroyed: nothing new is stored about them."""


class SealBroken(Exception):
    """A sealed value does not authenticate: altered, moved to another event, or its key
    was never in this key store. Reading fails closed: the event does not decode."""


class SubjectKeys(Protocol):
    """One data key per subject, kept apart from the event store (adapters provide it)."""

    def seal(self, subject_id: UUID, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt under the subject's key, made on first use; KeyDestroyed once erased."""
        ...

    def open(self, subject_id: UUID, sealed: bytes, aad: bytes) -> bytes | None:
        """Decrypt; None if the subject's key was destroyed; SealBroken if it won't open."""
        ...

    def destroy(self, subject_id: UUID) -> bool:
        """Destroy the subject's key for good (idempotent); True if this call destroyed it.

        From its return on, no read in this process opens the subject's fields again.
        """
        ...

    def close(self) -> None: ...


class Token(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sealed: str
    subject: UUID


def is_token(value: object) -> bool:
    return isinstance(value, dict) and "sealed" in value and "subject" in value


def associated_data(topic: str, stream_id: UUID, event_id: str, field: str, item: int) -> bytes:
    """Binds a sealed value to its place: this event, this stream, this field and item."""
    parts = (topic, str(stream_id), event_id, field, str(item))
    return b"\x00".join((_AAD_PREFIX, *(p.encode() for p in parts)))


class Sealer:
    """Seals an event's personal fields for storage and opens them when it is read.

    `learner_of(portfolio_id)` names the subject of a portfolio event (its learner).
    """

    def __init__(self, keys: SubjectKeys, learner_of: Callable[[UUID], UUID]) -> None:
        self.keys = keys
        self.learner_of = learner_of

    def subject_of(self, stream_id: UUID, event: Event) -> UUID:
        field = type(event).SUBJECT
        if field is not None:
            subject = getattr(event, field)
            if not isinstance(subject, UUID):
                msg = f"{type(event).__name__}.{field} does not name a subject"
                raise TypeError(msg)
            return subject
        return self.learner_of(stream_id)

    def seal(self, stream_id: UUID, event: Event, state: dict[str, Any]) -> None:
        """Replace the personal fields of `state` (the event as builtins) by tokens."""
        cls = type(event)
        subject: UUID | None = None
        for field in sealable(event):
            value = state[field]
            subject = subject or self.subject_of(stream_id, event)
            event_id = str(event.event_id)
            if isinstance(value, list | tuple):
                state[field] = [
                    self._token(subject, item, cls.TOPIC, stream_id, event_id, field, index)
                    for index, item in enumerate(value)
                ]
            else:
                state[field] = self._token(subject, value, cls.TOPIC, stream_id, event_id, field, 0)

    def _token(  # noqa: PLR0917 - the associated data's parts, in order
        self,
        subject: UUID,
        value: str,
        topic: str,
        stream_id: UUID,
        event_id: str,
        field: str,
        item: int,
    ) -> dict[str, str]:
        aad = associated_data(topic, stream_id, event_id, field, item)
        sealed = self.keys.seal(subject, value.encode(), aad)
        return {"sealed": base64.b64encode(sealed).decode(), "subject": str(subject)}


def open_fields(
    cls: type[Event], state: dict[str, Any], stream_id: UUID | None, keys: SubjectKeys | None
) -> None:
    """Open the sealed personal fields of `state` in place.

    A destroyed key reads as ERASED; without a key store (or a stream id) as SEALED; a
    value that does not authenticate raises SealBroken.
    """
    for field in cls.PERSONAL:
        value = state.get(field)
        if isinstance(value, list):
            state[field] = [
                _open(cls.TOPIC, state, stream_id, keys, field, index, item)
                for index, item in enumerate(value)
            ]
        elif is_token(value):
            state[field] = _open(cls.TOPIC, state, stream_id, keys, field, 0, value)


def _open(  # noqa: PLR0917 - the associated data's parts, in order
    topic: str,
    state: dict[str, Any],
    stream_id: UUID | None,
    keys: SubjectKeys | None,
    field: str,
    item: int,
    value: object,
) -> object:
    if not is_token(value):
        return value  # stored in clear (a default, or written before sealing existed)
    if keys is None or stream_id is None:
        return SEALED
    try:
        token = msgspec.convert(value, Token)
        sealed = base64.b64decode(token.sealed, validate=True)
    except (msgspec.ValidationError, binascii.Error) as error:
        msg = f"{field} is not a well-formed sealed value: {error}"
        raise SealBroken(msg) from error
    aad = associated_data(topic, stream_id, str(state.get("event_id")), field, item)
    opened = keys.open(token.subject, sealed, aad)
    return ERASED if opened is None else opened.decode()
