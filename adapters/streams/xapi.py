"""Ledger events as xAPI 1.0.3 statements: a pure mapping, no I/O (docs/xapi.md, ADR 0018).

The learner is every statement's actor, as a pseudonymous account (`account: {homePage,
name}`, the name a keyed hash of their id: never a name or an email); the member of staff
who acted is `context.instructor`, pseudonymous the same way. The unit and each criterion
are activities. A statement's id is a UUIDv5 of the event's id (and the criterion's), so
building it again, for a retry or after a restart, names the same statement and an LRS
stores it once.

Personal data follows the erasure: once the learner is erased (`erased` says so when the
statement is built) the actor is the anonymous `ERASED_NAME` account, there is no
registration and no free text; an erased member of staff leaves no instructor. Free text
that reads as `ERASED` (its key is destroyed) is never sent either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any
from uuid import UUID, uuid5

from domain.events import (
    ERASED,
    DecisionCountersigned,
    DecisionRecorded,
    Event,
    LearnerEnrolled,
    ObservationRecorded,
    Outcome,
    PortfolioEvent,
    QuestioningRecorded,
    UnitCertified,
)

XAPI_VERSION = "1.0.3"
STATEMENT_NAMESPACE = UUID("6f1c1f0e-7c55-5d2b-9a52-3f1d0d8e2a18")
"""Statement ids are uuid5(this, "<event id>[/<criterion>]"): fixed for good."""

ADL_VERB = "http://adlnet.gov/expapi/verbs/"
ADL_ACTIVITY = "http://adlnet.gov/expapi/activities/"
OWN = "urn:eportfolio:xapi:"
"""Our own IRIs (verbs and extensions the ADL vocabulary has no word for); docs/xapi.md."""

VERBS: dict[str, tuple[str, str]] = {
    "observed": (OWN + "verb:observed", "was observed"),
    "answered": (ADL_VERB + "answered", "answered"),
    "passed": (ADL_VERB + "passed", "passed"),
    "failed": (ADL_VERB + "failed", "failed"),
    "countersigned": (OWN + "verb:countersigned", "had a decision countersigned"),
    "completed": (ADL_VERB + "completed", "completed"),
}
UNIT_TYPE = ADL_ACTIVITY + "module"
CRITERION_TYPE = ADL_ACTIVITY + "objective"
EXT = OWN + "ext:"
ERASED_NAME = "erased"
"""The account name of every erased learner: one anonymous agent, linking no one."""

MAPPED: tuple[type[PortfolioEvent], ...] = (
    ObservationRecorded,
    QuestioningRecorded,
    DecisionRecorded,
    DecisionCountersigned,
    UnitCertified,
)
MAPPED_TOPICS = frozenset(cls.TOPIC for cls in MAPPED)

Statement = dict[str, Any]
Pseudonym = Callable[[UUID], str]


def pseudonymiser(key: bytes) -> Pseudonym:
    """A stable pseudonym per person under `key` (one key per LRS: LRSs cannot be linked)."""

    def pseudonym(subject_id: UUID) -> str:
        return "ep-" + hmac.new(key, subject_id.bytes, hashlib.sha256).hexdigest()[:32]

    return pseudonym


def statement_id(event_id: UUID, criterion: str | None = None) -> UUID:
    name = str(event_id) if criterion is None else f"{event_id}/{criterion}"
    return uuid5(STATEMENT_NAMESPACE, name)


class Mapper:
    """Builds the statements of one event of a portfolio, given its enrolment."""

    def __init__(self, home_page: str, pseudonym: Pseudonym) -> None:
        self.home = home_page.rstrip("/")
        self.pseudonym = pseudonym

    def statements(
        self, event: Event, enrolment: LearnerEnrolled, erased: Callable[[UUID], bool]
    ) -> list[Statement]:
        """The event's statements, in order ([] for an event that is not sent)."""
        if not isinstance(event, MAPPED):
            return []
        gone = erased(enrolment.learner_id)
        base = self._base(event, enrolment, gone=gone, staff_gone=erased(event.actor_id))
        unit = self._unit(enrolment.unit_code)
        if isinstance(event, ObservationRecorded):
            return self._per_criterion(base, event, unit, "observed", text=event.notes)
        if isinstance(event, QuestioningRecorded):
            return self._per_criterion(base, event, unit, "answered", text=event.summary)
        if isinstance(event, DecisionRecorded):
            met = event.outcome is Outcome.MET
            extra = {EXT + "decision": str(event.decision_id)}
            result = {"success": met}
            return self._per_criterion(
                base, event, unit, "passed" if met else "failed",
                text=event.feedback, result=result, extensions=extra,
            )  # fmt: skip
        if isinstance(event, DecisionCountersigned):
            extra = {EXT + "decision": str(event.decision_id)}
            return [
                self._one(base, event, unit, "countersigned", text=event.comment, extensions=extra)
            ]
        if not isinstance(event, UnitCertified):  # pragma: no cover - MAPPED lists no other
            return []
        result = {"completion": True, "success": True}
        extra = {EXT + "certificate": event.certificate_ref} if event.certificate_ref else {}
        return [self._one(base, event, unit, "completed", result=result, extensions=extra)]

    def _agent(self, name: str) -> dict[str, Any]:
        return {"objectType": "Agent", "account": {"homePage": self.home, "name": name}}

    def _unit(self, unit_code: str) -> dict[str, Any]:
        return {
            "objectType": "Activity",
            "id": f"{self.home}/units/{unit_code}",
            "definition": {"type": UNIT_TYPE, "name": {"en": f"Unit {unit_code}"}},
        }

    def _criterion(self, unit_code: str, criterion: str) -> dict[str, Any]:
        return {
            "objectType": "Activity",
            "id": f"{self.home}/units/{unit_code}#{criterion}",
            "definition": {"type": CRITERION_TYPE, "name": {"en": f"{unit_code} {criterion}"}},
        }

    def _base(
        self, event: PortfolioEvent, enrolment: LearnerEnrolled, *, gone: bool, staff_gone: bool
    ) -> Statement:
        context: dict[str, Any] = {
            "platform": "eportfolio",
            "extensions": {EXT + "role": event.actor_role.value},
        }
        if not gone:
            context["registration"] = str(event.portfolio_id)
        if not staff_gone:
            context["instructor"] = self._agent(self.pseudonym(event.actor_id))
        learner = ERASED_NAME if gone else self.pseudonym(enrolment.learner_id)
        return {
            "actor": self._agent(learner),
            "timestamp": _timestamp(event),
            "context": context,
        }

    def _one(
        self,
        base: Statement,
        event: PortfolioEvent,
        obj: dict[str, Any],
        verb: str,
        *,
        criterion: str | None = None,
        text: str = "",
        result: dict[str, Any] | None = None,
        extensions: dict[str, str] | None = None,
    ) -> Statement:
        verb_id, display = VERBS[verb]
        statement = {**base, "context": {**base["context"]}}
        statement["id"] = str(statement_id(event.event_id, criterion))
        statement["verb"] = {"id": verb_id, "display": {"en": display}}
        statement["object"] = obj
        if criterion is not None:
            unit = self._unit_of(obj)
            statement["context"]["contextActivities"] = {"parent": [unit]}
        statement["context"]["extensions"] = {
            **base["context"]["extensions"],
            EXT + "event": str(event.event_id),
            **(extensions or {}),
        }
        answer = dict(result or {})
        if text and text != ERASED and "registration" in base["context"]:  # not erased
            answer["response"] = text
        if answer:
            statement["result"] = answer
        return statement

    def _per_criterion(
        self,
        base: Statement,
        event: ObservationRecorded | QuestioningRecorded | DecisionRecorded,
        unit: dict[str, Any],
        verb: str,
        **more: Any,
    ) -> list[Statement]:
        code = unit["id"].rsplit("/", 1)[1]
        return [
            self._one(base, event, self._criterion(code, c), verb, criterion=c, **more)
            for c in event.criteria
        ]

    @staticmethod
    def _unit_of(criterion: dict[str, Any]) -> dict[str, Any]:
        return {"objectType": "Activity", "id": criterion["id"].partition("#")[0]}


def _timestamp(event: Event) -> str:
    """When it happened: the effective date (CloudEvents' `effectivedate`), midnight UTC."""
    return datetime.combine(event.effective_on, time(), UTC).isoformat().replace("+00:00", "Z")
