"""The folds writes decide on, folded on from held states, equal the folds from zero; and
no state handed out changes when a later read folds on from it (copy on write)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import events as e
from domain.centre import CentreState, fold_centre
from domain.portfolio import fold_portfolio
from service.travel import Centres, Timeline
from tests.unit.test_timeline import PORTFOLIO, _enrolment, _event, streams

START = datetime(2026, 9, 1, 9, tzinfo=UTC)
CENTRE = uuid4()
PEOPLE = [uuid4() for _ in range(4)]
ROLES = (e.Role.ASSESSOR, e.Role.IQA)


def _centre_event(kind: int, pick: int, n: int) -> e.CentreEvent:
    common = {
        "event_id": uuid4(),
        "actor_id": PEOPLE[0],
        "actor_role": e.Role.CENTRE_ADMIN,
        "recorded_at": START + timedelta(minutes=n),
        "effective_on": date(2026, 9, 1) + timedelta(days=n),
        "centre_id": CENTRE,
    }
    person, role = PEOPLE[pick % 4], ROLES[pick % 2]
    status = e.Qualification.QUALIFIED if pick % 3 else e.Qualification.TRAINEE
    match kind:
        case 0:
            return e.StaffRegistered(
                **common, staff_id=person, name=f"S{n}", role=role, qualification=status,  # type: ignore[arg-type]
            )  # fmt: skip
        case 1:
            return e.StaffQualificationChanged(
                **common, staff_id=person, role=role, qualification=status,  # type: ignore[arg-type]
            )  # fmt: skip
        case 2:
            return e.LearnerRegistered(**common, learner_id=person, name=f"L{n}")  # type: ignore[arg-type]
        case 3:
            return e.WitnessAdded(**common, witness_id=person, name=f"W{n}")  # type: ignore[arg-type]
        case _:
            return e.SubjectErased(
                **common, subject_id=person, subject_role=role, reason="Art. 17 request",  # type: ignore[arg-type]
            )  # fmt: skip


def _centre_stream(picks: list[tuple[int, int]]) -> list[e.CentreEvent]:
    first = _centre_event(0, 0, 0)
    registered = e.CentreRegistered(
        event_id=uuid4(),
        actor_id=first.actor_id,
        actor_role=e.Role.ADMIN,
        recorded_at=START,
        effective_on=first.effective_on,
        centre_id=CENTRE,
        name="Northgate",
    )
    events: list[e.CentreEvent] = [registered]
    staff: set[tuple[object, e.Role]] = set()
    for n, (kind, pick) in enumerate(picks):
        event = _centre_event(kind, pick, n + 1)
        if isinstance(event, e.StaffRegistered):
            staff.add((event.staff_id, event.role))
        elif (
            isinstance(event, e.StaffQualificationChanged)
            and (event.staff_id, event.role) not in staff
        ):
            continue  # the rules refuse a change for someone not on the staff
        events.append(event)
    return events


centre_streams = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 11)), max_size=40).map(
    _centre_stream
)


@settings(max_examples=150, deadline=None)
@given(events=centre_streams, reads=st.lists(st.integers(1, 41), min_size=1, max_size=12))
def test_a_centre_read_again_folds_on_to_the_fold_from_zero(
    events: list[e.CentreEvent], reads: list[int]
) -> None:
    centres, seen = Centres(), []
    for n in reads:  # growing, the same, or shorter (then folded afresh)
        state = centres.latest(CENTRE, events[:n])
        assert state == fold_centre(events[:n])
        seen.append((state, copy.deepcopy(state)))
    for state, then in seen:
        assert state == then


@settings(max_examples=150, deadline=None)
@given(events=streams, every=st.integers(2, 6), reads=st.lists(st.integers(0, 61), max_size=12))
def test_a_portfolio_read_again_folds_on_to_the_fold_from_zero(
    events: list[e.PortfolioEvent], every: int, reads: list[int]
) -> None:
    timeline, seen = Timeline(every=every), []
    for n in sorted(reads):  # a stream as writes read it: growing
        state = timeline.latest(PORTFOLIO, events[:n])
        assert state == fold_portfolio(events[:n])
        seen.append((state, copy.deepcopy(state)))
    for state, then in seen:
        assert state == then


def test_a_forked_centre_is_folded_no_further_and_reads_the_same() -> None:
    events = _centre_stream([(0, 0), (2, 1), (1, 0), (4, 0)])
    held = fold_centre(events[:2])
    assert held is not None
    twin = held.fork()
    for event in events[2:]:
        twin.apply(event)
    assert held == fold_centre(events[:2])
    assert twin == fold_centre(events)
    assert held.forked
    with pytest.raises(RuntimeError):
        held.apply(events[2])


def test_only_immutable_values_are_shared_by_a_fork() -> None:
    mutable = (dict, list, set)
    state = CentreState(centre_id=CENTRE, name="x")
    twin = state.fork()
    for name, value in vars(state).items():
        if isinstance(value, mutable):
            assert getattr(twin, name) is not value, name


def test_streams_held_are_bounded_and_short_ones_take_no_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("service.travel.STREAMS", 3)
    timeline = Timeline(every=2)
    short: list[e.PortfolioEvent] = [_enrolment()]
    long = [*short, *(_event(0, n, n + 1) for n in range(5))]
    for _ in range(6):
        assert timeline.latest(uuid4(), short) == fold_portfolio(short)
    assert not timeline._streams  # shorter than `every`: nothing held, no entry
    for _ in range(6):
        assert timeline.latest(uuid4(), long) == fold_portfolio(long)
    assert len(timeline._streams) == 3
