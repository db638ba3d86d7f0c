"""Time travel from held states equals the fold from the first event, whatever was asked
before: a fork folded on never changes the state it was forked from (copy on write)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import events as e
from domain.portfolio import fold_portfolio
from domain.spec import Method
from service.travel import Timeline

START = datetime(2026, 9, 1, 9, tzinfo=UTC)
ON = date(2026, 9, 1)
PORTFOLIO, CENTRE, LEARNER, ASSESSOR, IQA, EV = (uuid4() for _ in range(6))
EVIDENCE = [uuid4() for _ in range(4)]
DECISIONS = [uuid4() for _ in range(3)]
SAMPLES = [uuid4() for _ in range(3)]
CRITERIA = ("PC1", "PC2", "PC3", "K1")


def _common(n: int) -> dict[str, object]:
    return {
        "event_id": uuid4(),
        "actor_id": ASSESSOR,
        "actor_role": e.Role.ASSESSOR,
        "recorded_at": START + timedelta(minutes=n),
        "effective_on": ON,
        "portfolio_id": PORTFOLIO,
    }


def _enrolment() -> e.LearnerEnrolled:
    return e.LearnerEnrolled(
        **_common(0),  # type: ignore[arg-type]
        centre_id=CENTRE,
        learner_id=LEARNER,
        unit_code="U1",
        spec_version=1,
        spec_hash="h",
        assessor_id=ASSESSOR,
        iqa_id=IQA,
    )


def _event(kind: int, pick: int, n: int) -> e.PortfolioEvent:  # noqa: PLR0912
    """One of the events that add to, or change in place, what the fold holds."""
    common = _common(n)
    evidence, decision, sample = EVIDENCE[pick % 4], DECISIONS[pick % 3], SAMPLES[pick % 3]
    criteria = CRITERIA[pick % 4 :] or CRITERIA[:1]
    match kind:
        case 0:
            return e.ObservationRecorded(
                **common, evidence_id=evidence, environment=e.Environment.WORKPLACE,  # type: ignore[arg-type]
                criteria=criteria[:2],
            )  # fmt: skip
        case 1:
            return e.EvidenceSubmitted(
                **common, evidence_id=evidence, method=Method.WORK_PRODUCT, title="log",  # type: ignore[arg-type]
                environment=e.Environment.WORKPLACE, authenticity_declared=True,
                requirement_tags=criteria[-1:],
            )  # fmt: skip
        case 2:
            return e.EvidenceMapped(**common, evidence_id=evidence, criteria=criteria)  # type: ignore[arg-type]
        case 3:
            return e.EvidenceWithdrawn(
                **common, evidence_id=evidence, corrects_event_id=uuid4(), reason="wrong",  # type: ignore[arg-type]
            )  # fmt: skip
        case 4:
            return e.DecisionRecorded(
                **common, decision_id=decision, outcome=e.Outcome.MET, criteria=criteria,  # type: ignore[arg-type]
                evidence_ids=tuple(EVIDENCE[: pick % 4 + 1]),
                assessor_qualification=e.Qualification.TRAINEE,
            )  # fmt: skip
        case 5:
            return e.DecisionCountersigned(**common, decision_id=decision)  # type: ignore[arg-type]
        case 6:
            return e.DecisionRevoked(
                **common, decision_id=decision, corrects_event_id=uuid4(), reason="again",  # type: ignore[arg-type]
            )  # fmt: skip
        case 7:
            return e.IqaSampleRecorded(
                **common, sample_id=sample, stage=e.SampleStage.INTERIM,  # type: ignore[arg-type]
                decision_ids=tuple(DECISIONS[: pick % 3 + 1]), outcome=e.SampleOutcome.REFERRED,
                iqa_qualification=e.Qualification.TRAINEE,
            )  # fmt: skip
        case 8:
            return e.EvSampleRecorded(
                **common, sample_id=sample, decision_ids=(decision,),  # type: ignore[arg-type]
                outcome=e.SampleOutcome.REFERRED, actions=("fix",),
            )  # fmt: skip
        case 9:
            return e.IqaSampleCountersigned(**common, sample_id=sample)  # type: ignore[arg-type]
        case 10:
            return e.SampleResponded(**common, sample_id=sample, response="done")  # type: ignore[arg-type]
        case 11:
            return e.SampleResponseAccepted(**common, sample_id=sample)  # type: ignore[arg-type]
        case 12:
            return e.UnitCompletionSignedOff(**common, feedback="ok")  # type: ignore[arg-type]
        case _:
            return e.AppealOpened(**common, appeal_id=uuid4(), reason="unfair")  # type: ignore[arg-type]


streams = st.lists(st.tuples(st.integers(0, 13), st.integers(0, 11)), max_size=60).map(
    lambda picks: [_enrolment(), *(_event(k, p, n + 1) for n, (k, p) in enumerate(picks))]
)


@settings(max_examples=150, deadline=None)
@given(
    events=streams,
    every=st.integers(2, 6),
    asked=st.lists(st.integers(0, 61), min_size=1, max_size=12),
)
def test_known_at_any_moment_equals_the_fold_of_the_events_recorded_by_then(
    events: list[e.PortfolioEvent], every: int, asked: list[int]
) -> None:
    timeline = Timeline(every=every)
    answers = []
    for minutes in asked:
        moment = START + timedelta(minutes=minutes, seconds=30 * (minutes % 2))
        state, count = timeline.known_at(PORTFOLIO, events, moment)
        expected = fold_portfolio([x for x in events if x.recorded_at <= moment])
        assert count == sum(x.recorded_at <= moment for x in events)
        assert state == expected
        answers.append((moment, expected))
    # Asking for later moments folded on from held states: the earlier answers still hold.
    for moment, expected in answers:
        assert timeline.known_at(PORTFOLIO, events, moment)[0] == expected


@given(events=streams, moment=st.integers(0, 61))
def test_a_stream_whose_times_go_back_is_folded_from_its_first_event(
    events: list[e.PortfolioEvent], moment: int
) -> None:
    shuffled = [events[0], *reversed(events[1:])]
    at = START + timedelta(minutes=moment)
    state, count = Timeline(every=2).known_at(PORTFOLIO, shuffled, at)
    assert state == fold_portfolio([x for x in shuffled if x.recorded_at <= at])
    assert count is None or len(shuffled) <= 2  # ordered only if at most 2


def test_a_held_stream_that_is_not_the_one_asked_about_is_folded_afresh() -> None:
    first = [_enrolment(), *(_event(0, n, n + 1) for n in range(8))]
    second = [_enrolment(), *(_event(1, n, n + 1) for n in range(8))]
    timeline = Timeline(every=2)
    late = START + timedelta(hours=1)
    assert timeline.known_at(PORTFOLIO, first, late)[0] == fold_portfolio(first)
    assert timeline.known_at(PORTFOLIO, second, late)[0] == fold_portfolio(second)
