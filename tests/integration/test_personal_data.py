"""Sealed personal fields: what is stored, what reads back, and how it fails closed.

Tampering with a sealed value, or moving it to another event or field, makes the event
undecodable (MapperDeserialisationError naming the topic): it is an integrity failure of
the store, like any corrupted stored event, and the Merkle log's verifier also names it.
A destroyed key is not a failure: its fields read as ERASED, so views keep rebuilding.
A key that is simply missing (a wrong key file) is a failure, not a silent erasure.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import MapperDeserialisationError, Notification

from adapters.bootstrap import build
from adapters.config import Config
from adapters.store import subject_keys
from adapters.store.kek import KeyRing, load_ring
from adapters.store.subject_keys import sqlite_subject_keys
from domain import commands as c
from domain.events import ERASED, EVENT_TYPES, Environment, EvidenceSubmitted, LearnerRegistered
from domain.spec import Method
from service.codec import decode
from service.erasure import erase_learner
from service.handlers import Eportfolio
from service.personal_data import SEALED, KeyDestroyed
from tests.conftest import with_kek
from tests.world import World


def ring(directory: Path) -> KeyRing:
    return load_ring(with_kek(Config(data_dir=directory / "data")))


def names(app: Eportfolio, centre_id: UUID) -> list[str]:
    """The learners' names as this process reads them from the log now."""
    events = app.ledger.centre_events(centre_id)
    return [e.name for e in events if isinstance(e, LearnerRegistered)]


def stored(app: Eportfolio, event_id: UUID) -> Notification:
    for notification in app.ledger.notifications():
        is_event = notification.topic in EVENT_TYPES  # an id claim names its event too
        if is_event and str(event_id).encode() in notification.state:
            return notification
    raise LookupError(event_id)


def stream_of(notification: Notification) -> UUID:
    return UUID(str(notification.originator_id))


def reread(app: Eportfolio, notification: Notification, state: bytes) -> object:
    keys = app.ledger.subject_keys
    return decode(notification.topic, state, keys=keys, stream_id=stream_of(notification))


def evidence(world: World, title: str = "Till audit for Mr Shah") -> tuple[UUID, Notification]:
    pid = world.enrol()
    world.submit(pid)
    cmd = c.SubmitEvidence(
        evidence_id=uuid4(),
        method=Method.WORK_PRODUCT,
        title=title,
        description="Found the £20 error",
        environment=Environment.WORKPLACE,
        authenticity_declared=True,
    )
    written = world.app.execute(world.learner, cmd, target=pid)
    return pid, stored(world.app, written.event_id)


def test_personal_fields_are_stored_sealed_and_read_back_in_clear(app: Eportfolio) -> None:
    world = World(app)
    _, notification = evidence(world)
    assert b"Mr Shah" not in notification.state
    assert b"20 error" not in notification.state
    state = json.loads(notification.state)
    assert set(state["title"]) == {"sealed", "subject"}
    assert state["title"]["subject"] == str(world.learner.id)
    assert state["method"] == "WP"  # assessment facts stay clear
    event = app.ledger.decode(notification).event
    assert isinstance(event, EvidenceSubmitted)
    assert (event.title, event.description) == ("Till audit for Mr Shah", "Found the £20 error")
    assert event.location == ""  # a field at its default is not sealed: it says nothing


def test_a_tampered_sealed_value_fails_closed(app: Eportfolio) -> None:
    _, notification = evidence(World(app))
    state = json.loads(notification.state)
    sealed = bytearray(base64.b64decode(state["title"]["sealed"]))
    sealed[-1] ^= 1
    state["title"]["sealed"] = base64.b64encode(sealed).decode()
    with pytest.raises(MapperDeserialisationError, match="does not authenticate"):
        reread(app, notification, json.dumps(state).encode())


def test_a_sealed_value_moved_to_another_field_or_event_fails_closed(app: Eportfolio) -> None:
    world = World(app)
    _, first = evidence(world, "First")
    _, second = evidence(world, "Second")
    one, two = json.loads(first.state), json.loads(second.state)
    swapped = {**one, "title": one["description"], "description": one["title"]}
    with pytest.raises(MapperDeserialisationError, match="does not authenticate"):
        reread(app, first, json.dumps(swapped).encode())
    moved = {**two, "title": one["title"]}  # same learner, same key, another event
    with pytest.raises(MapperDeserialisationError, match="does not authenticate"):
        reread(app, second, json.dumps(moved).encode())


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ({"sealed": "not base64!", "subject": None}, "not a well-formed sealed value"),
        ({"sealed": "AAAA", "subject": "not-a-uuid"}, "not a well-formed sealed value"),
        ({"sealed": 7, "subject": None}, "not a well-formed sealed value"),
        ({"sealed": "AAAA", "subject": None, "extra": 1}, "not a well-formed sealed value"),
        ({"sealed": "AAAA====", "subject": None}, "does not authenticate"),  # excess padding reads
    ],
)
def test_a_malformed_token_fails_closed(
    app: Eportfolio, token: dict[str, object], why: str
) -> None:
    world = World(app)
    _, notification = evidence(world)
    state = json.loads(notification.state)
    state["title"] = {k: str(world.learner.id) if v is None else v for k, v in token.items()}
    with pytest.raises(MapperDeserialisationError, match=why):
        reread(app, notification, json.dumps(state).encode())


def test_a_token_opens_in_any_form_the_full_conversion_accepts(app: Eportfolio) -> None:
    """The subject without hyphens, the base64 unpadded-but-valid: each field's associated
    data is the same bytes `associated_data` makes (the seal binds them)."""
    world = World(app)
    _, notification = evidence(world)
    state = json.loads(notification.state)
    state["title"]["subject"] = world.learner.id.hex
    event = reread(app, notification, json.dumps(state).encode())
    assert isinstance(event, EvidenceSubmitted)
    assert (event.title, event.description) == ("Till audit for Mr Shah", "Found the £20 error")


def test_a_destroyed_key_reads_as_erased_and_seals_nothing_more(app: Eportfolio) -> None:
    world = World(app)
    pid, notification = evidence(world)
    assert app.ledger.destroy_key(world.learner.id)
    event = app.ledger.decode(notification).event
    assert isinstance(event, EvidenceSubmitted)
    assert (event.title, event.description) == (ERASED, ERASED)
    assert names(app, world.centre_id) == [ERASED]
    with pytest.raises(KeyDestroyed):
        world.submit(pid)
    assert not app.ledger.destroy_key(world.learner.id)  # already gone


def test_without_the_key_store_sealed_fields_read_as_sealed(app: Eportfolio) -> None:
    _, notification = evidence(World(app))
    event = decode(notification.topic, notification.state)  # as the offline verifier reads
    assert isinstance(event, EvidenceSubmitted)
    assert (event.title, event.description) == (SEALED, SEALED)


def test_a_missing_key_is_an_error_not_an_erasure(app: Eportfolio, tmp_path: Path) -> None:
    _, notification = evidence(World(app))
    other = sqlite_subject_keys(tmp_path / "another-keys.sqlite", ring(tmp_path))  # a wrong file
    try:
        with pytest.raises(MapperDeserialisationError, match="no key for subject"):
            decode(
                notification.topic,
                notification.state,
                keys=other,
                stream_id=stream_of(notification),
            )
    finally:
        other.close()


def test_an_erasure_in_another_process_takes_effect_here_once_the_cached_key_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.sqlite"
    kek = ring(tmp_path)
    server, eraser = sqlite_subject_keys(path, kek), sqlite_subject_keys(path, kek)  # two processes
    try:
        subject, aad = uuid4(), b"event"
        sealed = server.seal(subject, b"Lee Learner", aad)
        assert server.open(subject, sealed, aad) == b"Lee Learner"  # now cached here
        assert eraser.destroy(subject)
        assert server.open(subject, sealed, aad) == b"Lee Learner"  # within the lifetime
        monkeypatch.setattr(subject_keys, "KEY_TTL_SECONDS", 0.0)
        assert server.open(subject, sealed, aad) is None  # expired: read again, erased
    finally:
        server.close()
        eraser.close()


def test_a_reader_racing_destroy_cannot_put_the_key_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader fetches the live key, `destroy()` runs and returns, then the reader caches
    what it fetched: the key must stay destroyed for every read after `destroy()` returned."""
    kek, path = ring(tmp_path), tmp_path / "keys.sqlite"
    writer = sqlite_subject_keys(path, kek)
    subject, aad = uuid4(), b"event"
    sealed = writer.seal(subject, b"Lee Learner", aad)
    writer.close()
    keys = sqlite_subject_keys(path, kek)  # nothing cached yet
    fetched, resume = threading.Event(), threading.Event()
    stored = keys._stored

    def slow_read(subject_id: UUID) -> bytes | None:
        key = stored(subject_id)  # the live key, read before the destruction
        fetched.set()
        resume.wait(5)
        return key

    monkeypatch.setattr(keys, "_stored", slow_read)
    reader = threading.Thread(target=keys.open, args=(subject, sealed, aad))
    try:
        reader.start()
        assert fetched.wait(5)
        assert keys.destroy(subject)  # returns while the reader still holds the key
        resume.set()
        reader.join(5)
        monkeypatch.undo()
        assert keys.open(subject, sealed, aad) is None  # erased, not "Lee Learner"
    finally:
        resume.set()
        keys.close()


def test_another_process_drops_the_key_as_soon_as_it_reads_the_erasure_on_the_log(
    config: Config,
) -> None:
    eraser, server = build(config), build(config)  # two processes on one store
    try:
        world = World(eraser)
        assert names(server, world.centre_id) == ["Lee Learner"]  # its key is cached there
        erase_learner(
            eraser,
            world.centre_admin,
            world.centre_id,
            c.EraseLearner(learner_id=world.learner.id, reason="Art. 17 request"),
        )
        for notification in server.ledger.notifications():  # as its projections follow
            server.ledger.decode(notification)
        assert names(server, world.centre_id) == [ERASED]  # at once, not when the key expires
    finally:
        eraser.ledger.close()
        server.ledger.close()
