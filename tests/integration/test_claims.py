"""Id claims: every id the store takes is taken once, by one centre, even under a race.

Also: a store written by release 0.1 (before claims) is claimed on first write, and in a
store that already holds one learner at two centres, every centre holding them decides
whether they may be erased.
"""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from adapters.bootstrap import build
from adapters.config import Config
from domain import commands as c
from domain import events as e
from domain.errors import LegalHoldApplies, RetentionApplies
from domain.events import EVENT_TYPES, HoldReason, Role
from service import claims
from service.codec import Claim, Recorded
from service.errors import IdAlreadyUsed
from service.handlers import Eportfolio
from tests.conftest import with_kek
from tests.world import World

RELEASE_01 = Path(__file__).parents[1] / "fixtures" / "release-0.1" / "data"
RELEASE_01_LEARNER = UUID("de0279e1-7f9a-4098-8df0-5f2595f19a51")


def test_every_event_type_is_decided_on_either_bringing_ids_or_only_naming_them() -> None:
    assert set(claims.NEW_IDS) | claims.REFERENCES_ONLY == set(EVENT_TYPES.values())
    assert not set(claims.NEW_IDS) & claims.REFERENCES_ONLY
    for cls, fields in claims.NEW_IDS.items():
        assert all(field in cls.__struct_fields__ for field, _ in fields), cls


def test_of_two_centres_racing_for_one_learner_id_exactly_one_gets_it(app: Eportfolio) -> None:
    centres = [World(app) for _ in range(2)]
    learner_id, barrier = uuid4(), threading.Barrier(8)
    won: list[UUID] = []
    refused: list[str] = []

    def register(world: World) -> None:
        barrier.wait()
        try:
            world.centre_cmd(c.RegisterLearner(learner_id=learner_id, name="Sam"))
            won.append(world.centre_id)
        except IdAlreadyUsed as error:
            refused.append(error.field or "")
        except Exception as error:  # the same centre twice: its own rule says so
            refused.append(type(error).__name__)

    threads = [threading.Thread(target=register, args=(centres[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(won) == 1
    loser = next(w for w in centres if w.centre_id != won[0])
    assert learner_id not in app.centre(loser.centre_id).learners
    assert refused.count("learner_id") >= 4  # every attempt from the other centre
    held = claims.held_claim(app.ledger, learner_id)
    assert held is not None
    assert (held.kind, held.centre_id) == ("learner", won[0])


def legacy_registration(app: Eportfolio, centre_id: UUID, learner_id: UUID) -> None:
    """A LearnerRegistered saved as release 0.1 could: no claim, whoever held the id."""
    event = e.LearnerRegistered(
        event_id=uuid4(),
        actor_id=uuid4(),
        actor_role=Role.CENTRE_ADMIN,
        recorded_at=datetime.now(UTC),
        effective_on=datetime.now(UTC).date(),
        centre_id=centre_id,
        learner_id=learner_id,
        name="Same Person",
    )
    app.ledger.save(Recorded(centre_id, app.centre(centre_id).version + 1, event))


def test_erasure_waits_for_every_centre_holding_the_learner(app: Eportfolio) -> None:
    a, b = World(app), World(app)
    learner = a.learner.id
    legacy_registration(app, b.centre_id, learner)
    hold = uuid4()
    a.centre_cmd(c.PlaceLegalHold(hold_id=hold, learner_id=learner, reason=HoldReason.APPEAL))
    erase = c.EraseLearner(learner_id=learner, reason="Learner request")

    with pytest.raises(LegalHoldApplies, match="another centre"):
        b.centre_cmd(erase)
    a.centre_cmd(c.LiftLegalHold(hold_id=hold))
    a.centre_cmd(c.SetRetentionPolicy(records_years=7))
    b.centre_cmd(c.SetRetentionPolicy(records_years=0))
    portfolio = a.enrol()
    app.execute(a.centre_admin, c.WithdrawLearner(reason="left"), target=portfolio)
    with pytest.raises(RetentionApplies, match=r"another centre.*7 years"):
        b.centre_cmd(erase)  # B's own policy would let it go today; A's keeps it
    a.centre_cmd(c.SetRetentionPolicy(records_years=0))

    b.centre_cmd(erase)
    assert learner in app.centre(b.centre_id).erased


def test_a_release_0_1_store_is_claimed_on_first_write_and_its_ids_are_then_refused(
    tmp_path: Path,
) -> None:
    shutil.copy(RELEASE_01 / "eportfolio.sqlite", tmp_path / "eportfolio.sqlite")
    app = build(with_kek(Config(data_dir=tmp_path)))
    try:
        assert not claims.settled(app.ledger)
        old = list(app.ledger.notifications())
        ids = {
            getattr(event, field)
            for n in old
            if isinstance(event := app.ledger.fact(n).event, e.Event)
            for field, _ in claims.NEW_IDS.get(type(event), ())
        }
        world = World(app)  # the first write claims what the store already holds
        assert claims.settled(app.ledger)
        made = [n for n in app.ledger.notifications(after=old[-1].id) if n.topic == Claim.TOPIC]
        assert {claims.held_claim(app.ledger, i) is not None for i in ids} == {True}
        assert len(made) == len(ids) + len(claims_of_world(world))

        with pytest.raises(IdAlreadyUsed) as refused:
            world.centre_cmd(c.RegisterLearner(learner_id=RELEASE_01_LEARNER, name="Amira"))
        assert refused.value.field == "learner_id"
        assert claims.backfill(app.ledger) == 0  # idempotent: nothing left to claim
    finally:
        app.ledger.close()


def claims_of_world(world: World) -> set[UUID]:
    """The ids a fresh World took: its centre, five staff, a learner, a witness, an EV."""
    centre = world.app.centre(world.centre_id)
    people = {staff.staff_id for staff in centre.staff.values()}
    return {world.centre_id, *people, *centre.learners, *centre.witnesses, *centre.evs}
