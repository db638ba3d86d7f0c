"""A learner's portfolio for one unit: a fold over its stream.

The state keeps what the rules need and what the projections read: each evidence item
with its method, dates, customer and the criteria it is mapped to; each decision with its
signature chain. Corrections mark items, they never remove them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from uuid import UUID

from domain import events as e
from domain.spec import Method


@dataclass
class EvidenceItem:
    evidence_id: UUID
    event_id: UUID
    method: Method
    author_id: UUID
    effective_on: date
    recorded_at: datetime
    environment: e.Environment
    occasion: str = ""
    customer_ref: str | None = None
    location: str = ""
    witness_id: UUID | None = None
    criteria: set[str] = field(default_factory=set)
    requirement_tags: set[str] = field(default_factory=set)
    withdrawn: bool = False

    @property
    def assessor_observed(self) -> bool:
        return self.method is Method.OBSERVATION


@dataclass
class Sample:
    sample_id: UUID
    event_id: UUID
    actor_id: UUID
    role: e.Role
    outcome: e.SampleOutcome
    recorded_at: datetime
    stage: e.SampleStage | None = None


@dataclass
class Decision:
    decision_id: UUID
    event_id: UUID
    outcome: e.Outcome
    criteria: tuple[str, ...]
    evidence_ids: tuple[UUID, ...]
    author_id: UUID
    author_qualification: e.Qualification
    effective_on: date
    recorded_at: datetime
    countersigned_by: UUID | None = None
    countersigned_at: datetime | None = None
    iqa_samples: list[Sample] = field(default_factory=list)
    ev_samples: list[Sample] = field(default_factory=list)
    revoked: bool = False

    @property
    def needs_countersignature(self) -> bool:
        return self.author_qualification is e.Qualification.TRAINEE

    @property
    def stands(self) -> bool:
        """Counts towards the unit: not revoked, and countersigned if a trainee made it."""
        return not self.revoked and (
            not self.needs_countersignature or self.countersigned_by is not None
        )

    def signers(self) -> set[UUID]:
        """Everyone whose signature is on the decision: none of them may sample it."""
        return {self.author_id} | ({self.countersigned_by} if self.countersigned_by else set())


@dataclass
class PortfolioState:
    portfolio_id: UUID
    centre_id: UUID
    learner_id: UUID
    unit_code: str
    spec_version: int
    spec_hash: str
    assessor_id: UUID
    iqa_id: UUID
    enrolled_on: date
    version: int = 1
    evidence: dict[UUID, EvidenceItem] = field(default_factory=dict)
    decisions: dict[UUID, Decision] = field(default_factory=dict)
    sample_ids: set[UUID] = field(default_factory=set)
    certified_on: date | None = None
    withdrawn_on: date | None = None

    @property
    def closed_on(self) -> date | None:
        """When the retention clock started: certification or withdrawal."""
        return self.certified_on or self.withdrawn_on

    def ev_sampled_on(self) -> date | None:
        """The day of the first EV sample: evidence artefacts may go after it (by policy)."""
        days = [s.recorded_at.date() for d in self.decisions.values() for s in d.ev_samples]
        return min(days, default=None)

    @classmethod
    def enrolled(cls, event: e.LearnerEnrolled) -> PortfolioState:
        return cls(
            portfolio_id=event.portfolio_id,
            centre_id=event.centre_id,
            learner_id=event.learner_id,
            unit_code=event.unit_code,
            spec_version=event.spec_version,
            spec_hash=event.spec_hash,
            assessor_id=event.assessor_id,
            iqa_id=event.iqa_id,
            enrolled_on=event.effective_on,
        )

    def apply(self, event: e.PortfolioEvent) -> None:  # noqa: PLR0912 - one case per event
        """Fold one event. References to items a time-travel filter left out are skipped."""
        self.version += 1
        match event:
            case e.EvidenceSubmitted():
                self._add(event, event.method, tags=event.requirement_tags)
            case e.ObservationRecorded():
                item = self._add(event, Method.OBSERVATION, tags=event.requirement_tags)
                item.criteria.update(event.criteria)
            case e.WitnessTestimonyRecorded():
                item = self._add(event, Method.WITNESS_TESTIMONY)
                item.witness_id = event.witness_id
                item.criteria.update(event.criteria)
            case e.QuestioningRecorded():
                item = self._add(event, event.method)
                item.criteria.update(event.criteria)
            case e.EvidenceMapped():
                if mapped := self.evidence.get(event.evidence_id):
                    mapped.criteria.update(event.criteria)
            case e.EvidenceWithdrawn():
                if withdrawn := self.evidence.get(event.evidence_id):
                    withdrawn.withdrawn = True
            case e.DecisionRecorded():
                self.decisions[event.decision_id] = Decision(
                    decision_id=event.decision_id,
                    event_id=event.event_id,
                    outcome=event.outcome,
                    criteria=event.criteria,
                    evidence_ids=event.evidence_ids,
                    author_id=event.actor_id,
                    author_qualification=event.assessor_qualification,
                    effective_on=event.effective_on,
                    recorded_at=event.recorded_at,
                )
            case e.DecisionCountersigned():
                if decision := self.decisions.get(event.decision_id):
                    decision.countersigned_by = event.actor_id
                    decision.countersigned_at = event.recorded_at
            case e.DecisionRevoked():
                if decision := self.decisions.get(event.decision_id):
                    decision.revoked = True
            case e.IqaSampleRecorded():
                self._sample(event, event.decision_ids, "iqa", event.outcome, event.stage)
            case e.EvSampleRecorded():
                self._sample(event, event.decision_ids, "ev", event.outcome, None)
            case e.UnitCertified():
                self.certified_on = event.effective_on
            case e.LearnerWithdrawn():
                self.withdrawn_on = event.effective_on

    def _add(
        self,
        event: e.EvidenceSubmitted
        | e.ObservationRecorded
        | e.WitnessTestimonyRecorded
        | e.QuestioningRecorded,
        method: Method,
        tags: tuple[str, ...] = (),
    ) -> EvidenceItem:
        item = EvidenceItem(
            evidence_id=event.evidence_id,
            event_id=event.event_id,
            method=method,
            author_id=event.actor_id,
            effective_on=event.effective_on,
            recorded_at=event.recorded_at,
            environment=getattr(event, "environment", e.Environment.WORKPLACE),
            occasion=getattr(event, "occasion", ""),
            customer_ref=getattr(event, "customer_ref", None),
            location=getattr(event, "location", ""),
            requirement_tags=set(tags),
        )
        self.evidence[item.evidence_id] = item
        return item

    def _sample(
        self,
        event: e.IqaSampleRecorded | e.EvSampleRecorded,
        decision_ids: tuple[UUID, ...],
        kind: str,
        outcome: e.SampleOutcome,
        stage: e.SampleStage | None,
    ) -> None:
        self.sample_ids.add(event.sample_id)
        sample = Sample(
            sample_id=event.sample_id,
            event_id=event.event_id,
            actor_id=event.actor_id,
            role=event.actor_role,
            outcome=outcome,
            recorded_at=event.recorded_at,
            stage=stage,
        )
        for decision_id in decision_ids:
            if (decision := self.decisions.get(decision_id)) is None:
                continue  # a time-travel view that cut the decision off
            (decision.iqa_samples if kind == "iqa" else decision.ev_samples).append(sample)


def fold_portfolio(events: list[e.PortfolioEvent]) -> PortfolioState | None:
    """Rebuild a portfolio from its stream; None if nobody was enrolled on it."""
    if not events or not isinstance(events[0], e.LearnerEnrolled):
        return None
    state = PortfolioState.enrolled(events[0])
    for event in events[1:]:
        state.apply(event)
    return state
