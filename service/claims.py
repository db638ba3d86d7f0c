"""Ids are taken once in the whole store: a claim per id, saved with the event that uses it.

Clients may choose the ids of what they create (a learner, evidence, a decision). Checked
only within a centre or a portfolio, a centre admin at B could register a learner id that
exists at A and then erase A's learner, or reuse A's decision id and take over its routes.
So the event that first uses an id is saved, in the same atomic `Ledger.save`, with a
`Claim` at version 1 of the stream `uuid5(CLAIMS, "id/{id}")`: of two racing writers one
loses on the version conflict, is decided again on fresh state, and is refused. Who may
share an id:

- a person (staff, learner, witness) belongs to one centre, where the same id may hold
  other roles too (an assessor who is also the IQA, a witness, or a learner there), so
  conflict-of-interest rules can see it is one person;
- an EV is the awarding body's person: allocated to many centres, never a centre's person;
- everything else (centre, portfolio, evidence, decision, sample, legal hold, appeal, RWE
  approval) is single-use.

Stores written before claims existed are claimed once, in log order, by `backfill`
(the first use of an id keeps it; later uses are reported, not rewritten).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import IntegrityError, Notification

from domain import events as e
from service.codec import Claim, Recorded
from service.errors import IdAlreadyUsed
from service.ledger import Ledger

CLAIMS = uuid5(NAMESPACE_URL, "urn:eportfolio:id-claims")
PAGE = 1_000
log = logging.getLogger(__name__)


class Kind(StrEnum):
    CENTRE = "centre"
    STAFF = "staff"
    LEARNER = "learner"
    WITNESS = "witness"
    EV = "ev"
    LEGAL_HOLD = "legal_hold"
    PORTFOLIO = "portfolio"
    EVIDENCE = "evidence"
    DECISION = "decision"
    SAMPLE = "sample"
    APPEAL = "appeal"
    RWE_APPROVAL = "rwe_approval"


PEOPLE = frozenset({Kind.STAFF, Kind.LEARNER, Kind.WITNESS})

#: The ids an event brings into the store: (field, kind). Every event type is either here or
#: in REFERENCES_ONLY (a test holds the two to the catalogue), so a new event is decided on.
NEW_IDS: Mapping[type[e.Event], tuple[tuple[str, Kind], ...]] = {
    e.CentreRegistered: (("centre_id", Kind.CENTRE),),
    e.StaffRegistered: (("staff_id", Kind.STAFF),),
    e.LearnerRegistered: (("learner_id", Kind.LEARNER),),
    e.WitnessAdded: (("witness_id", Kind.WITNESS),),
    e.EvAllocated: (("ev_id", Kind.EV),),
    e.LegalHoldPlaced: (("hold_id", Kind.LEGAL_HOLD),),
    e.LearnerEnrolled: (("portfolio_id", Kind.PORTFOLIO),),
    e.EvidenceSubmitted: (("evidence_id", Kind.EVIDENCE),),
    e.ObservationRecorded: (("evidence_id", Kind.EVIDENCE),),
    e.WitnessTestimonyRecorded: (("evidence_id", Kind.EVIDENCE),),
    e.QuestioningRecorded: (("evidence_id", Kind.EVIDENCE),),
    e.DecisionRecorded: (("decision_id", Kind.DECISION),),
    e.IqaSampleRecorded: (("sample_id", Kind.SAMPLE),),
    e.EvSampleRecorded: (("sample_id", Kind.SAMPLE),),
    e.AppealOpened: (("appeal_id", Kind.APPEAL),),
    e.RealisticEnvironmentApproved: (("approval_id", Kind.RWE_APPROVAL),),
}
#: Events that only name ids already in the store (or ids the server makes: event ids).
REFERENCES_ONLY: frozenset[type[e.Event]] = frozenset(
    {
        e.StaffQualificationChanged,
        e.ObservedCriteriaSet,
        e.SufficiencyPolicySet,
        e.SamplingPlanSet,
        e.RetentionPolicySet,
        e.LegalHoldLifted,
        e.SubjectErased,
        e.EvidenceMapped,
        e.DecisionCountersigned,
        e.EvidenceWithdrawn,
        e.DecisionRevoked,
        e.UnitCertified,
        e.LearnerWithdrawn,
        e.CheckpointIssued,
        e.IqaSampleCountersigned,
        e.SampleResponded,
        e.SampleResponseAccepted,
        e.UnitCompletionSignedOff,
    }
)
TOPICS = sorted(cls.TOPIC for cls in NEW_IDS)


def claim_stream(id_: UUID) -> UUID:
    return uuid5(CLAIMS, f"id/{id_}")


def may_share(held: Claim, kind: Kind, centre_id: UUID | None) -> bool:
    """Whether a record of `kind` at `centre_id` may use an id someone already holds."""
    if held.kind in PEOPLE and kind in PEOPLE:
        return held.centre_id == centre_id
    return held.kind == kind == Kind.EV


def claims_for(
    ledger: Ledger, stream_id: UUID, event: e.Event, *, look: bool = True
) -> list[Recorded]:
    """The claims to save with `event`; raises IdAlreadyUsed if an id it brings is taken.

    `look=False` assumes every id is new and claims it without reading its claim stream:
    the claim goes in at version 1, so if the id is held after all the save fails on
    that version (IntegrityError) and the caller decides again with `look=True`, which
    reads the holder and shares or refuses. Ids are fresh nearly always (the server makes
    most of them), so the usual write skips a read.
    """
    wanted = NEW_IDS.get(type(event), ())
    if not wanted:
        return []
    centre_id = _centre_of(ledger, stream_id, event)
    records: list[Recorded] = []
    for field, kind in wanted:
        id_: UUID = getattr(event, field)
        held = held_claim(ledger, id_) if look else None
        if held is None:
            claim = new_claim(id_, kind, centre_id, stream_id, event)
            records.append(Recorded(claim_stream(id_), 1, claim))
        elif not may_share(held, kind, centre_id):
            raise IdAlreadyUsed(
                f"the {kind.replace('_', ' ')} id {id_} is already in use: choose another, "
                f"or leave {field} out and the server makes one",
                field=field,
            )
    return records


def held_claim(ledger: Ledger, id_: UUID) -> Claim | None:
    for recorded in ledger.recorded(claim_stream(id_)):
        if isinstance(recorded.event, Claim):
            return recorded.event
    return None


def new_claim(
    id_: UUID, kind: Kind, centre_id: UUID | None, stream_id: UUID, event: e.Event
) -> Claim:
    return Claim(
        id=id_,
        kind=kind,
        centre_id=None if kind is Kind.EV else centre_id,
        stream_id=stream_id,
        event_id=event.event_id,
    )


def _centre_of(ledger: Ledger, stream_id: UUID, event: e.Event) -> UUID | None:
    """The centre an event belongs to: its own field, else its portfolio's enrolment (which
    the ledger holds once read: no read per write)."""
    centre_id = getattr(event, "centre_id", None)
    if isinstance(centre_id, UUID):
        return centre_id
    enrolment = ledger.enrolment(stream_id)
    return None if enrolment is None else enrolment.centre_id


# ---- stores written before claims ----------------------------------------------------


def settled(ledger: Ledger) -> bool:
    """Whether every id in the log is claimed: true when the last event bringing ids is.

    The write path claims atomically and `backfill` claims in log order, so once the last
    such event has its claims, every earlier one has too.
    """
    last = _last(ledger)
    if last is None:
        return True
    event = ledger.fact(last).event
    if not isinstance(event, e.Event):  # pragma: no cover - selected by event topics
        return True
    wanted = NEW_IDS.get(type(event), ())
    return all(held_claim(ledger, getattr(event, field)) is not None for field, _ in wanted)


def backfill(ledger: Ledger) -> int:
    """Claim every id of the log that has no claim yet, first use first; how many were made.

    Ids used twice before claims existed are left as they are and logged: the first use
    keeps the id, and erasure asks every centre holding a person (`Ledger.learner_centres`).
    """
    held = {claim.id: claim for claim in _claims(ledger)}
    centres: dict[UUID, UUID] = {}  # portfolio -> centre
    made: list[Recorded] = []
    for notification in _notifications(ledger, TOPICS):
        stream_id = UUID(str(notification.originator_id))
        event = ledger.fact(notification).event
        if not isinstance(event, e.Event):
            continue
        if isinstance(event, e.LearnerEnrolled):
            centres[stream_id] = event.centre_id
        centre_id = getattr(event, "centre_id", None) or centres.get(stream_id)
        for field, kind in NEW_IDS.get(type(event), ()):
            id_: UUID = getattr(event, field)
            claim = held.get(id_)
            if claim is None:
                claim = held[id_] = new_claim(id_, kind, centre_id, stream_id, event)
                made.append(Recorded(claim_stream(id_), 1, claim))
            elif not may_share(claim, kind, centre_id) and claim.event_id != event.event_id:
                log.warning(
                    "%s %s (event %s) reuses an id first used as %s: left as recorded",
                    kind,
                    id_,
                    event.event_id,
                    claim.kind,
                )
    for start in range(0, len(made), PAGE):
        _save(ledger, made[start : start + PAGE])
    return len(made)


def _save(ledger: Ledger, claims: list[Recorded]) -> None:
    """Saved together; if a live writer claimed one meanwhile, the others one by one."""
    try:
        ledger.save(*claims)
    except IntegrityError:
        for claim in claims:
            try:
                ledger.save(claim)
            except IntegrityError:
                continue


def _claims(ledger: Ledger) -> Iterator[Claim]:
    for notification in _notifications(ledger, [Claim.TOPIC]):
        claim = ledger.fact(notification).event
        if isinstance(claim, Claim):
            yield claim


def _notifications(ledger: Ledger, topics: list[str]) -> Iterator[Notification]:
    after = 0
    while True:
        page = ledger.recorder.select_notifications(
            start=after, limit=PAGE, topics=topics, inclusive_of_start=False
        )
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].id


def _last(ledger: Ledger) -> Notification | None:
    """The last notification bringing ids, searched backwards from the head in windows."""
    high = ledger.recorder.max_notification_id() or 0
    window = 10 * PAGE
    while high > 0:
        low = max(1, high - window + 1)
        page = ledger.recorder.select_notifications(
            start=low, limit=window, stop=high, topics=TOPICS
        )
        if page:
            return page[-1]
        high = low - 1
    return None
