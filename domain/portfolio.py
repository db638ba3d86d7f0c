"""A learner's portfolio for one unit: a fold over its stream.

The state keeps what the rules need and what the projections read: each evidence item
with its method, dates, customer and the criteria it is mapped to; each decision with its
signature chain. Corrections mark items, they never remove them.
"""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import ClassVar
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
    withdrawn_by: UUID | None = None
    written_answers: bool = False  # a work product of written answers to knowledge questions
    other_reason: bool = False  # "Oth" evidence that says what it is and why it counts
    rwe_approval_id: UUID | None = None

    @property
    def assessor_observed(self) -> bool:
        return self.method is Method.OBSERVATION

    def evidences(self, cid: str) -> bool:
        """Mapped to `cid`, or (for evidence requirements) tagged with it."""
        return cid in self.criteria or cid in self.requirement_tags


@dataclass
class Sample:
    """An IQA or EV sample as it bears on one decision (each sampled decision holds a copy)."""

    sample_id: UUID
    event_id: UUID
    actor_id: UUID
    role: e.Role
    outcome: e.SampleOutcome
    recorded_at: datetime
    stage: e.SampleStage | None = None
    qualification: e.Qualification = e.Qualification.QUALIFIED
    countersigned_by: UUID | None = None
    actions: int = 0  # how many actions the EV set
    responded: bool = False  # the assessor recorded a response
    accepted: bool = False  # the sampler's side accepted the response
    effective_on: date | None = None

    @property
    def counts(self) -> bool:
        """A trainee IQA's sample counts only once a qualified IQA countersigns it."""
        return self.qualification is e.Qualification.QUALIFIED or self.countersigned_by is not None

    @property
    def open_referral(self) -> bool:
        """Referred back and not yet closed by an accepted response: the decision does not
        count meanwhile."""
        return self.counts and self.outcome is e.SampleOutcome.REFERRED and not self.accepted

    @property
    def open_actions(self) -> bool:
        """The EV set actions and no accepted response has closed them yet."""
        return self.actions > 0 and not self.accepted

    @property
    def open(self) -> bool:
        return self.open_referral or self.open_actions


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
    observation_not_possible: bool = False  # the decision records why observation was not

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

    def samples(self) -> list[Sample]:
        return [*self.iqa_samples, *self.ev_samples]

    def open_referrals(self) -> list[Sample]:
        """Samples that referred it (or set actions) and are not closed: it does not count.

        Only the assessor acting on a referral clears it — a new decision, or a response the
        sampler's side accepts; a later "agreed" sample by someone else does not.
        """
        return [s for s in self.samples() if s.open_referral]


@dataclass
class SignOff:
    """The assessor's unit-completion sign-off, and the portfolio version it signed."""

    actor_id: UUID
    effective_on: date
    recorded_at: datetime
    version: int


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
    #: the centre's sufficiency policy version the certification was judged by (0: built-in)
    certified_policy_version: int | None = None
    signed_off: SignOff | None = None
    #: the version of the last event that changed what is assessed (evidence, decisions)
    assessed_version: int = 1
    appeal_ids: set[UUID] = field(default_factory=set)
    #: After `fork`, the evidence and decisions this state made or copied itself, which it
    #: may change in place; None (the class default: not forked) for all of them. Kept in
    #: the instance's __dict__, not as fields: not compared, encoded or stored.
    _own_evidence: ClassVar[set[UUID] | None] = None
    _own_decisions: ClassVar[set[UUID] | None] = None
    #: The state this one was forked from (its items but `_own_evidence` are that one's),
    #: which is folded no further.
    forked_from: ClassVar[PortfolioState | None] = None
    _frozen: ClassVar[bool] = False

    @property
    def closed_on(self) -> date | None:
        """When the retention clock started: certification or withdrawal (None once an
        appeal reopens the portfolio)."""
        return self.certified_on or self.withdrawn_on

    @property
    def closed(self) -> bool:
        return self.closed_on is not None

    def decisions_in_order(self) -> list[Decision]:
        """Decisions by effective date, then recording time: the later one governs."""
        return sorted(
            self.decisions.values(),
            key=lambda d: (d.effective_on, d.recorded_at, str(d.decision_id)),
        )

    def replaced(self, decision: Decision) -> bool:
        """Revoked, or every criterion it decided was decided again later by a decision that
        stands: the assessor has acted on it, so a referral of it is no longer open."""
        if decision.revoked:
            return True
        ordered = self.decisions_in_order()
        later = ordered[ordered.index(decision) + 1 :]
        return all(any(cid in d.criteria and d.stands for d in later) for cid in decision.criteria)

    def open_ev_samples(self) -> list[Sample]:
        """EV samples that referred decisions or set actions, with nothing yet closing them."""
        seen: dict[UUID, Sample] = {}
        for decision in self.decisions.values():
            for sample in decision.ev_samples:
                if sample.open_actions or (sample.open_referral and not self.replaced(decision)):
                    seen.setdefault(sample.sample_id, sample)
        return sorted(seen.values(), key=lambda s: s.recorded_at)

    def sample(self, sample_id: UUID) -> Sample | None:
        """A sample by its id (the first decision's copy), or None."""
        return next((s for s in self._copies(sample_id)), None)

    def _copies(self, sample_id: UUID) -> list[Sample]:
        return [s for d in self.decisions.values() for s in d.samples() if s.sample_id == sample_id]

    def ev_sampled_on(self) -> date | None:
        """The day of the first EV sample: evidence artefacts may go after it (by policy)."""
        days = [s.recorded_at.date() for d in self.decisions.values() for s in d.ev_samples]
        return min(days, default=None)

    def fork(self) -> PortfolioState:
        """A copy to fold on from, sharing this state's items until either changes one.

        Time travel holds folded states every few versions and folds on from the nearest;
        copying every item would cost as much as the fold it saves. The fork changes in
        place no item it did not make or copy itself (copy on write), and this state is
        folded no further (`apply` refuses): it reads the same however far its forks go,
        and a fork's items are this state's but for `_own_evidence`.
        """
        twin = copy(self)
        twin.evidence = dict(self.evidence)
        twin.decisions = dict(self.decisions)
        twin.sample_ids = set(self.sample_ids)
        twin.appeal_ids = set(self.appeal_ids)
        twin.__dict__.update(
            _own_evidence=set(), _own_decisions=set(), forked_from=self, _frozen=False
        )
        self.__dict__["_frozen"] = True
        return twin

    @property
    def evidence_since_fork(self) -> set[UUID] | None:
        """The evidence made or copied since this state was forked (None: not a fork); the
        rest is the items of `forked_from`, the same objects."""
        return self._own_evidence

    @property
    def forked(self) -> bool:
        """Forked, so folded no further: it reads the same from now on."""
        return self._frozen

    def _changing_evidence(self, evidence_id: UUID) -> EvidenceItem | None:
        """The item, to change in place: a copy of it first if it is shared after a fork."""
        item = self.evidence.get(evidence_id)
        own = self._own_evidence
        if item is None or own is None or evidence_id in own:
            return item
        item = self.evidence[evidence_id] = replace(
            item, criteria=set(item.criteria), requirement_tags=set(item.requirement_tags)
        )
        own.add(evidence_id)
        return item

    def _changing_decision(self, decision_id: UUID) -> Decision | None:
        """The decision (and its samples), to change in place: copied if shared."""
        decision = self.decisions.get(decision_id)
        own = self._own_decisions
        if decision is None or own is None or decision_id in own:
            return decision
        decision = self.decisions[decision_id] = replace(
            decision,
            iqa_samples=[replace(s) for s in decision.iqa_samples],
            ev_samples=[replace(s) for s in decision.ev_samples],
        )
        own.add(decision_id)
        return decision

    def _changing_copies(self, sample_id: UUID) -> list[Sample]:
        """Every decision's copy of a sample, to change in place (`_changing_decision`)."""
        if self._own_decisions is not None:
            for decision in list(self.decisions.values()):
                if any(s.sample_id == sample_id for s in decision.samples()):
                    self._changing_decision(decision.decision_id)
        return self._copies(sample_id)

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

    def apply(self, event: e.PortfolioEvent) -> None:
        """Fold one event. References to items a time-travel filter left out are skipped."""
        if self._frozen:
            msg = "this state was forked: fold its fork on instead"
            raise RuntimeError(msg)
        self.version += 1
        if isinstance(event, ASSESSED):
            self.assessed_version = self.version
        if not self._apply_assessment(event):
            self._apply_quality(event)

    def _apply_assessment(self, event: e.PortfolioEvent) -> bool:  # noqa: PLR0912
        """Evidence and decisions; False if `event` is not one of them."""
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
                if mapped := self._changing_evidence(event.evidence_id):
                    mapped.criteria.update(event.criteria)
            case e.EvidenceWithdrawn():
                if withdrawn := self._changing_evidence(event.evidence_id):
                    withdrawn.withdrawn = True
                    withdrawn.withdrawn_by = event.actor_id
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
                    observation_not_possible=bool(event.observation_not_possible),
                )
                if self._own_decisions is not None:
                    self._own_decisions.add(event.decision_id)
            case e.DecisionCountersigned():
                if decision := self._changing_decision(event.decision_id):
                    decision.countersigned_by = event.actor_id
                    decision.countersigned_at = event.recorded_at
            case e.DecisionRevoked():
                if decision := self._changing_decision(event.decision_id):
                    decision.revoked = True
            case _:
                return False
        return True

    def _apply_quality(self, event: e.PortfolioEvent) -> None:
        """Samples, responses, sign-off, certification, withdrawal and appeals."""
        match event:
            case e.IqaSampleRecorded():
                self._sample(event, event.decision_ids, "iqa", event.outcome, event.stage)
            case e.EvSampleRecorded():
                self._sample(event, event.decision_ids, "ev", event.outcome, None)
            case e.IqaSampleCountersigned():
                for sample in self._changing_copies(event.sample_id):
                    sample.countersigned_by = event.actor_id
            case e.SampleResponded():
                for sample in self._changing_copies(event.sample_id):
                    sample.responded = True
            case e.SampleResponseAccepted():
                for sample in self._changing_copies(event.sample_id):
                    sample.accepted = True
            case e.UnitCompletionSignedOff():
                self.signed_off = SignOff(
                    actor_id=event.actor_id,
                    effective_on=event.effective_on,
                    recorded_at=event.recorded_at,
                    version=self.version,
                )
            case e.UnitCertified():
                self.certified_on = event.effective_on
                self.certified_policy_version = event.sufficiency_policy_version
            case e.LearnerWithdrawn():
                self.withdrawn_on = event.effective_on
            case e.AppealOpened():
                self.appeal_ids.add(event.appeal_id)
                self.certified_on = self.withdrawn_on = None
                self.certified_policy_version = None

    def _add(
        self, event: EvidenceEvent, method: Method, tags: tuple[str, ...] = ()
    ) -> EvidenceItem:
        item = self.evidence[event.evidence_id] = evidence_item(event, method, tags)
        if self._own_evidence is not None:
            self._own_evidence.add(event.evidence_id)
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
        for decision_id in decision_ids:
            if (decision := self._changing_decision(decision_id)) is None:
                continue  # a time-travel view that cut the decision off
            sample = Sample(
                sample_id=event.sample_id,
                event_id=event.event_id,
                actor_id=event.actor_id,
                role=event.actor_role,
                outcome=outcome,
                recorded_at=event.recorded_at,
                stage=stage,
                qualification=getattr(event, "iqa_qualification", e.Qualification.QUALIFIED),
                actions=len(getattr(event, "actions", ())),
                effective_on=event.effective_on,
            )
            (decision.iqa_samples if kind == "iqa" else decision.ev_samples).append(sample)


EvidenceEvent = (
    e.EvidenceSubmitted | e.ObservationRecorded | e.WitnessTestimonyRecorded | e.QuestioningRecorded
)


def evidence_item(event: EvidenceEvent, method: Method, tags: tuple[str, ...] = ()) -> EvidenceItem:
    """The evidence item an evidence event records (before any mapping)."""
    return EvidenceItem(
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
        rwe_approval_id=getattr(event, "rwe_approval_id", None),
        written_answers=getattr(event, "written_answers", False),
        other_reason=bool(getattr(event, "other_reason", "")),
    )


#: Events that change what the assessment stands on: a sign-off older than the last of
#: them signed something else. (New evidence alone takes nothing away.)
ASSESSED = (e.EvidenceWithdrawn, e.DecisionRecorded, e.DecisionRevoked)


def fold_portfolio(events: list[e.PortfolioEvent]) -> PortfolioState | None:
    """Rebuild a portfolio from its stream; None if nobody was enrolled on it."""
    if not events or not isinstance(events[0], e.LearnerEnrolled):
        return None
    state = PortfolioState.enrolled(events[0])
    for event in events[1:]:
        state.apply(event)
    return state
