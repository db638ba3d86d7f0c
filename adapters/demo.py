"""A realistic demo centre, the same every time for the same seed.

Ids come from a seeded generator and time from a simulated clock that walks through the
weeks of assessment, so the demo's events are identical run to run (their positions in
the log depend on what else is stored). Recorded times are simulated and say so: the
centre is named "(demo)".
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from domain import commands as c
from domain.events import Environment, Outcome, Qualification, Role, SampleOutcome, SampleStage
from domain.spec import Criterion, CriterionKind, Method, ObservationRule, SpecCatalogue, UnitSpec
from service.handlers import Eportfolio
from service.ledger import Ledger

DEMO_END = date(2026, 11, 20)
LEARNERS = (
    "Amira Khan", "Ben Okafor", "Chloe Price", "Dev Patel", "Ellie Murray", "Finn Walsh",
    "Grace Lee", "Hassan Ali", "Isla Brown", "Jack Evans", "Kiera Doyle", "Liam Hughes",
)  # fmt: skip


@dataclass
class DemoSummary:
    centre_id: UUID
    created: bool
    events: int = 0
    people: dict[str, UUID] = field(default_factory=dict)
    portfolios: list[tuple[str, str, bool, UUID]] = field(default_factory=list)


class _Clock:
    """Simulated time: commands are recorded a little after what they record."""

    def __init__(self, start: date) -> None:
        self.now = datetime.combine(start, time(9), UTC)

    def at(self, day: date, rng: random.Random) -> None:
        self.now = max(self.now, datetime.combine(day, time(9), UTC)) + timedelta(
            minutes=rng.randint(5, 600)
        )

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def demo_centre_id(seed: int) -> UUID:
    return UUID(int=random.Random(seed).getrandbits(128), version=4)


def load_demo(
    ledger: Ledger,
    specs: SpecCatalogue,
    *,
    seed: int = 2026,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> DemoSummary:
    """Load the demo centre unless it is already there."""
    centre_id = demo_centre_id(seed)
    if ledger.recorded(centre_id):
        return DemoSummary(centre_id=centre_id, created=False)
    rng = random.Random(seed)
    rng.getrandbits(128)  # the centre id
    clock = _Clock(DEMO_END - timedelta(weeks=12))
    app = Eportfolio(ledger, specs, clock=clock, new_id=lambda: _uuid(rng))
    builder = _Builder(app, rng, clock, centre_id)
    steps = [step for plan in builder.plans() for step in builder.portfolio(*plan)]
    steps.sort(key=lambda step: step.day)  # stable: a portfolio's steps keep their order
    for done, step in enumerate(steps, start=1):
        builder.run(step)
        progress(done, len(steps))
    return builder.summary


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


class _Builder:
    def __init__(self, app: Eportfolio, rng: random.Random, clock: _Clock, centre_id: UUID):
        self.app, self.rng, self.clock = app, rng, clock
        self.summary = DemoSummary(centre_id=centre_id, created=True)
        admin = c.Actor(id=_uuid(rng), role=Role.ADMIN)
        self._do(admin, c.RegisterCentre(centre_id=centre_id, name="Riverside Training (demo)"))
        self.centre_admin = self._staff(Role.CENTRE_ADMIN, "Morgan Reid", admin)
        self.assessor = self._staff(Role.ASSESSOR, "Alex Morgan")
        self.second_assessor = self._staff(Role.ASSESSOR, "Jo Singh")
        self.trainee = self._staff(
            Role.ASSESSOR, "Taylor Quinn", qualification=Qualification.TRAINEE
        )
        self.iqa = self._staff(Role.IQA, "Priya Shah")
        self.ev = c.Actor(id=_uuid(rng), role=Role.EV)
        self._do(admin, c.AllocateEv(ev_id=self.ev.id, name="Robin Hale"), centre_id)
        self.summary.people["ev"] = self.ev.id
        self.witness = _uuid(rng)
        self._do(
            self.centre_admin,
            c.AddWitness(witness_id=self.witness, name="Dana Frost", position="Duty manager"),
            centre_id,
        )
        self._do(
            self.centre_admin,
            c.SetSufficiencyPolicy(decision_ref="Standardisation 2026-09"),
            centre_id,
        )
        self._do(self.iqa, c.SetSamplingPlan(decision_ref="IQA strategy 2026"), centre_id)
        for spec in app.specs.specs:
            if spec.observation_rule is ObservationRule.CENTRE_SETS:
                circled = tuple(x.id for x in _performance(spec)[2:6])
                cmd = c.SetObservedCriteria(unit_code=spec.code, criteria=circled)
                self._do(self.centre_admin, cmd, centre_id)
        self.learners = [self._learner(name) for name in LEARNERS]

    def _do(self, actor: c.Actor, cmd: c.Command, target: UUID | None = None) -> None:
        self.app.execute(actor, cmd, target=target)
        self.summary.events += 1

    def _staff(
        self,
        role: Role,
        name: str,
        by: c.Actor | None = None,
        qualification: Qualification = Qualification.QUALIFIED,
    ) -> c.Actor:
        actor = c.Actor(id=_uuid(self.rng), role=role)
        cmd = c.RegisterStaff(staff_id=actor.id, name=name, role=role, qualification=qualification)
        self._do(by or self.centre_admin, cmd, self.summary.centre_id)
        self.summary.people[f"{role}:{name}"] = actor.id
        return actor

    def _learner(self, name: str) -> c.Actor:
        actor = c.Actor(id=_uuid(self.rng), role=Role.LEARNER)
        cmd = c.RegisterLearner(learner_id=actor.id, name=name)
        self._do(self.centre_admin, cmd, self.summary.centre_id)
        self.summary.people[f"learner:{name}"] = actor.id
        return actor

    def plans(self) -> list[tuple[c.Actor, UnitSpec, bool, c.Actor]]:
        """Every learner on one or two units; about half complete, the rest with gaps."""
        specs = sorted(self.app.specs.specs, key=lambda s: s.code)
        assessors = (self.assessor, self.second_assessor, self.trainee)
        plans = []
        for index, learner in enumerate(self.learners):
            for spec in self.rng.sample(specs, k=1 + index % 2):
                plans.append((learner, spec, self.rng.random() < 0.5, assessors[index % 3]))
        return plans

    def portfolio(
        self, learner: c.Actor, spec: UnitSpec, complete: bool, assessor: c.Actor
    ) -> list[Step]:
        """The steps of one portfolio, each on the day it happens."""
        portfolio_id = _uuid(self.rng)
        start = DEMO_END - timedelta(weeks=10) + timedelta(days=self.rng.randint(0, 14))
        enrol = c.Enrol(
            portfolio_id=portfolio_id,
            centre_id=self.summary.centre_id,
            learner_id=learner.id,
            unit_code=spec.code,
            assessor_id=assessor.id,
            iqa_id=self.iqa.id,
            effective_on=start,
        )
        name = next(k for k, v in self.summary.people.items() if v == learner.id)
        self.summary.portfolios.append(
            (name.removeprefix("learner:"), spec.code, complete, portfolio_id)
        )
        steps = [Step(start, self.centre_admin, enrol, None)]
        steps += self._evidence(
            portfolio_id,
            spec=spec,
            learner=learner,
            assessor=assessor,
            start=start,
            complete=complete,
        )
        # the first learner's portfolios stay open: the README's walk-through writes to them
        certifiable = complete and learner.id != self.learners[0].id
        steps += self._decisions(portfolio_id, assessor, steps, complete, certifiable)
        return steps

    def run(self, step: Step) -> None:
        self.clock.at(step.day, self.rng)
        self._do(step.actor, step.command, step.target)

    def _evidence(
        self,
        portfolio_id: UUID,
        *,
        spec: UnitSpec,
        learner: c.Actor,
        assessor: c.Actor,
        start: date,
        complete: bool,
    ) -> list[Step]:
        performance = [x.id for x in _performance(spec)]
        knowledge = [x.id for x in spec.criteria if x.kind is CriterionKind.KNOWLEDGE]
        range_ids = [x.id for x in spec.range.items] if spec.range else []
        tags = [r.id for r in spec.requirements]
        occasions = 4 if complete else self.rng.randint(1, 2)
        share = performance if complete else performance[: len(performance) // 2]
        steps = []
        for n in range(occasions):
            day = start + timedelta(days=7 + n * 12 + self.rng.randint(0, 3))
            observed = share if n == 0 else share[n::occasions]
            own_tags = tuple(tags[n::occasions]) if complete else ()
            observation = c.RecordObservation(
                evidence_id=_uuid(self.rng),
                occasion=f"shift {n + 1}",
                customer_ref=f"cust-{self.rng.randint(100, 999)}",
                environment=Environment.WORKPLACE,
                criteria=tuple(dict.fromkeys(observed + range_ids[n : n + 1])),
                requirement_tags=own_tags,
                location=self.rng.choice(("Front desk", "Contact centre", "Store floor")),
                notes="Observed handling a live customer problem end to end.",
                effective_on=day,
            )
            work = c.SubmitEvidence(
                evidence_id=_uuid(self.rng),
                method=Method.WORK_PRODUCT,
                title=f"Complaint record, occasion {n + 1}",
                occasion=f"shift {n + 1}",
                customer_ref=f"cust-{self.rng.randint(100, 999)}",
                environment=Environment.WORKPLACE,
                requirement_tags=own_tags,
                authenticity_declared=True,
                effective_on=day,
            )
            mapping = c.MapEvidence(
                evidence_id=work.evidence_id,
                criteria=tuple(share[n::occasions]) or (share[0],),
                effective_on=day,
            )
            steps += [
                Step(day, assessor, observation, portfolio_id),
                Step(day, learner, work, portfolio_id),
                Step(day, learner, mapping, portfolio_id),
            ]
        if complete and knowledge:
            day = start + timedelta(days=7 + occasions * 12)
            questioning = c.RecordQuestioning(
                evidence_id=_uuid(self.rng),
                method=Method.QUESTIONING,
                criteria=tuple(knowledge + range_ids[occasions:]),
                summary="Oral questions on procedures, negotiation and limits of authority.",
                effective_on=day,
            )
            steps.append(Step(day, assessor, questioning, portfolio_id))
        return steps

    def _decisions(
        self,
        portfolio_id: UUID,
        assessor: c.Actor,
        steps: list[Step],
        complete: bool,
        certifiable: bool,
    ) -> list[Step]:
        criteria: dict[str, None] = {}
        evidence: list[UUID] = []
        for step in steps:
            cmd = step.command
            if isinstance(cmd, c.RecordObservation | c.RecordQuestioning | c.MapEvidence):
                criteria.update(dict.fromkeys(cmd.criteria))
            if isinstance(cmd, c.RecordObservation | c.SubmitEvidence):
                criteria.update(dict.fromkeys(cmd.requirement_tags))  # the assessor confirms
            if isinstance(cmd, c.RecordObservation | c.RecordQuestioning | c.SubmitEvidence):
                evidence.append(cmd.evidence_id)
        day = max(step.day for step in steps) + timedelta(days=1)
        decision = c.RecordDecision(
            decision_id=_uuid(self.rng),
            outcome=Outcome.MET,
            criteria=tuple(criteria),
            evidence_ids=tuple(evidence),
            feedback="Consistent, confident handling of customer problems."
            if complete
            else "Good start; more occasions and the remaining criteria needed.",
            effective_on=day,
        )
        out = [Step(day, assessor, decision, portfolio_id)]
        if assessor.id == self.trainee.id and (complete or self.rng.random() < 0.5):
            countersign = c.Countersign(
                decision_id=decision.decision_id, effective_on=day + timedelta(days=2)
            )
            out.append(Step(day + timedelta(days=2), self.assessor, countersign, portfolio_id))
        sampled = complete and self.rng.random() < 0.6
        if sampled:
            sample = c.RecordIqaSample(
                sample_id=_uuid(self.rng),
                stage=SampleStage.SUMMATIVE,
                decision_ids=(decision.decision_id,),
                outcome=SampleOutcome.AGREED,
                location="Front desk",
                feedback="Decision sound; evidence valid, authentic, current and sufficient.",
                effective_on=day + timedelta(days=5),
            )
            out.append(Step(day + timedelta(days=5), self.iqa, sample, portfolio_id))
        if complete:
            certify = certifiable and sampled
            out += self._closing(portfolio_id, assessor, day + timedelta(days=6), certify=certify)
        return out

    def _closing(
        self, portfolio_id: UUID, assessor: c.Actor, day: date, *, certify: bool
    ) -> list[Step]:
        """The assessor signs a complete unit off; the centre certifies the sampled ones."""
        sign_off = c.SignOffUnit(
            feedback="All criteria met over several weeks with different customers; well done.",
            effective_on=day,
        )
        out = [Step(day, assessor, sign_off, portfolio_id)]
        if certify:
            later = day + timedelta(days=2)
            cmd = c.CertifyUnit(certificate_ref=f"CERT-{self.rng.randint(10000, 99999)}",
                                effective_on=later)  # fmt: skip
            out.append(Step(later, self.centre_admin, cmd, portfolio_id))
        return out


@dataclass(frozen=True)
class Step:
    day: date
    actor: c.Actor
    command: c.Command
    target: UUID | None


def _performance(spec: UnitSpec) -> list[Criterion]:
    return [x for x in spec.criteria if x.kind is CriterionKind.PERFORMANCE]
