"""Response bodies: what the API promises, apart from the domain's state and events.

Reports (coverage, sufficiency, history, audit) are the read models' own Structs, which
are already shaped for reading; the portfolio and centre are translated from the domain's
in-memory state here, so a change to that state never silently changes the API.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import msgspec

from domain.centre import CentreState
from domain.events import Environment, Outcome, Qualification, Role
from domain.portfolio import Decision, EvidenceItem, PortfolioState
from domain.spec import Method


class Written(msgspec.Struct, frozen=True, kw_only=True):
    """Every write's answer: the event it recorded and where that sits in the log."""

    event_id: UUID
    stream_id: UUID
    version: int
    position: int
    #: True when this answers a retried Idempotency-Key: nothing new was written.
    replayed: bool
    #: True when every read view already shows the event (always so after ?wait=true,
    #: unless the wait timed out).
    visible: bool
    #: The id of what the write created (portfolio, evidence, decision, sample, person...).
    created_id: UUID | None = None


class PersonCreated(Written, frozen=True, kw_only=True):
    #: The new person's bearer token, shown this once (null on a replay: ask an admin).
    token: str | None = None


class TokenIssued(msgspec.Struct, frozen=True, kw_only=True):
    token_id: UUID
    subject_id: UUID
    role: Role
    centre_id: UUID | None
    label: str
    #: The bearer token, shown this once (null on a replay of the same Idempotency-Key).
    token: str | None
    expires_at: datetime | None = None


class Me(msgspec.Struct, frozen=True, kw_only=True):
    subject_id: UUID
    role: Role
    centre_id: UUID | None
    token_id: UUID | None


class BlobStored(msgspec.Struct, frozen=True, kw_only=True):
    sha256: str
    size: int
    #: False if this centre had already uploaded the same bytes.
    created: bool


class UnitSummary(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    version: int
    title: str
    awarding_body: str
    level: int | None
    credit: int | None
    guided_learning_hours: int | None


# ---- centre -----------------------------------------------------------------------------


class StaffView(msgspec.Struct, frozen=True, kw_only=True):
    staff_id: UUID
    name: str
    role: Role
    qualification: Qualification | None  # as of today


class PersonView(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str


class CentreView(msgspec.Struct, frozen=True, kw_only=True):
    centre_id: UUID
    name: str
    version: int
    staff: tuple[StaffView, ...]
    learners: tuple[PersonView, ...]
    witnesses: tuple[PersonView, ...]
    evs: tuple[PersonView, ...]
    observed_criteria: dict[str, tuple[str, ...]]
    sufficiency_policy_version: int | None
    sampling_plan_version: int | None

    @classmethod
    def of(cls, centre: CentreState, today: date) -> CentreView:
        def people(names: dict[UUID, str]) -> tuple[PersonView, ...]:
            return tuple(PersonView(id=k, name=v) for k, v in names.items())

        return cls(
            centre_id=centre.centre_id,
            name=centre.name,
            version=centre.version,
            staff=tuple(
                StaffView(
                    staff_id=s.staff_id,
                    name=s.name,
                    role=s.role,
                    qualification=s.qualification_on(today),
                )
                for s in centre.staff.values()
            ),
            learners=people(centre.learners),
            witnesses=people(centre.witnesses),
            evs=people(centre.evs),
            observed_criteria=dict(centre.observed_criteria),
            sufficiency_policy_version=(
                centre.sufficiency_policy.policy_version if centre.sufficiency_policy else None
            ),
            sampling_plan_version=(
                centre.sampling_plan.plan_version if centre.sampling_plan else None
            ),
        )


# ---- portfolio --------------------------------------------------------------------------


class EvidenceView(msgspec.Struct, frozen=True, kw_only=True):
    evidence_id: UUID
    event_id: UUID
    method: Method
    author_id: UUID
    effective_on: date
    recorded_at: datetime
    environment: Environment
    occasion: str
    customer_ref: str | None
    location: str
    witness_id: UUID | None
    criteria: tuple[str, ...]
    requirement_tags: tuple[str, ...]
    withdrawn: bool

    @classmethod
    def of(cls, item: EvidenceItem) -> EvidenceView:
        return cls(
            evidence_id=item.evidence_id,
            event_id=item.event_id,
            method=item.method,
            author_id=item.author_id,
            effective_on=item.effective_on,
            recorded_at=item.recorded_at,
            environment=item.environment,
            occasion=item.occasion,
            customer_ref=item.customer_ref,
            location=item.location,
            witness_id=item.witness_id,
            criteria=tuple(sorted(item.criteria)),
            requirement_tags=tuple(sorted(item.requirement_tags)),
            withdrawn=item.withdrawn,
        )


class DecisionView(msgspec.Struct, frozen=True, kw_only=True):
    decision_id: UUID
    event_id: UUID
    outcome: Outcome
    criteria: tuple[str, ...]
    evidence_ids: tuple[UUID, ...]
    author_id: UUID
    author_qualification: Qualification
    effective_on: date
    recorded_at: datetime
    countersigned_by: UUID | None
    countersigned_at: datetime | None
    iqa_sample_ids: tuple[UUID, ...]
    ev_sample_ids: tuple[UUID, ...]
    revoked: bool
    #: Counts towards the unit: not revoked, countersigned if a trainee made it.
    stands: bool

    @classmethod
    def of(cls, decision: Decision) -> DecisionView:
        return cls(
            decision_id=decision.decision_id,
            event_id=decision.event_id,
            outcome=decision.outcome,
            criteria=decision.criteria,
            evidence_ids=decision.evidence_ids,
            author_id=decision.author_id,
            author_qualification=decision.author_qualification,
            effective_on=decision.effective_on,
            recorded_at=decision.recorded_at,
            countersigned_by=decision.countersigned_by,
            countersigned_at=decision.countersigned_at,
            iqa_sample_ids=tuple(s.sample_id for s in decision.iqa_samples),
            ev_sample_ids=tuple(s.sample_id for s in decision.ev_samples),
            revoked=decision.revoked,
            stands=decision.stands,
        )


class PortfolioView(msgspec.Struct, frozen=True, kw_only=True):
    portfolio_id: UUID
    centre_id: UUID
    learner_id: UUID
    unit_code: str
    spec_version: int
    assessor_id: UUID
    iqa_id: UUID
    enrolled_on: date
    #: The stream's version: also the ETag, and what If-Match must name.
    version: int
    evidence: tuple[EvidenceView, ...]
    decisions: tuple[DecisionView, ...]

    @classmethod
    def of(cls, portfolio: PortfolioState) -> PortfolioView:
        return cls(
            portfolio_id=portfolio.portfolio_id,
            centre_id=portfolio.centre_id,
            learner_id=portfolio.learner_id,
            unit_code=portfolio.unit_code,
            spec_version=portfolio.spec_version,
            assessor_id=portfolio.assessor_id,
            iqa_id=portfolio.iqa_id,
            enrolled_on=portfolio.enrolled_on,
            version=portfolio.version,
            evidence=tuple(EvidenceView.of(i) for i in portfolio.evidence.values()),
            decisions=tuple(DecisionView.of(d) for d in portfolio.decisions.values()),
        )


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A signed statement of the Merkle root over the first `tree_size` stored events."""

    event_id: UUID
    recorded_at: datetime
    origin: str
    tree_size: int
    root_hash: str
    key_id: str
    #: "scheduled", "on_demand" or "ev_sample".
    reason: str
    #: The C2SP signed note: check it with the public key (`eportfolio verify`).
    signed_note: str


class PublicKey(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    key_id: str
    #: The C2SP verifier key, `<name>+<key id>+<base64 Ed25519 key>`.
    vkey: str
