"""A small centre to test against: the people of a real assessment team.

Everything is done through the service, as a user would; ids are the people's ids.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

from domain import commands as c
from domain.events import Environment, Outcome, Qualification, Role
from domain.spec import Method, UnitSpec
from service.handlers import Eportfolio, WriteResult


def seed_spec(app: Eportfolio, seed_prefix: str) -> UnitSpec:
    """The catalogue's spec made from seed file `seed_prefix`_*."""
    return next(s for s in app.specs.specs if s.seed.startswith(seed_prefix))


class World:
    def __init__(self, app: Eportfolio) -> None:
        self.app = app
        self.admin = c.Actor(id=uuid4(), role=Role.ADMIN)
        self.centre_id = uuid4()
        app.execute(
            self.admin, c.RegisterCentre(centre_id=self.centre_id, name="Northgate College")
        )
        self.centre_admin = self.staff(Role.CENTRE_ADMIN, "Pat Admin", by=self.admin)
        self.assessor = self.staff(Role.ASSESSOR, "Alex Assessor")
        self.other_assessor = self.staff(Role.ASSESSOR, "Sam Second")
        self.trainee = self.staff(Role.ASSESSOR, "Tia Trainee", Qualification.TRAINEE)
        self.iqa = self.staff(Role.IQA, "Ida Quality")
        self.learner = c.Actor(id=uuid4(), role=Role.LEARNER)
        self.centre_cmd(c.RegisterLearner(learner_id=self.learner.id, name="Lee Learner"))
        self.witness_id = uuid4()
        self.centre_cmd(c.AddWitness(witness_id=self.witness_id, name="Wendy Witness"))
        self.ev = c.Actor(id=uuid4(), role=Role.EV)
        self.centre_cmd(c.AllocateEv(ev_id=self.ev.id, name="Evan Verifier"), by=self.admin)

    def staff(
        self,
        role: Role,
        name: str,
        qualification: Qualification = Qualification.QUALIFIED,
        by: c.Actor | None = None,
        on: date | None = None,
    ) -> c.Actor:
        actor = c.Actor(id=uuid4(), role=role)
        cmd = c.RegisterStaff(
            staff_id=actor.id, name=name, role=role, qualification=qualification, effective_on=on
        )
        self.centre_cmd(cmd, by=by)
        return actor

    def centre_cmd(self, cmd: c.Command, by: c.Actor | None = None) -> WriteResult:
        return self.app.execute(by or self.centre_admin, cmd, target=self.centre_id)

    def enrol(self, seed_prefix: str = "000", assessor: c.Actor | None = None) -> UUID:
        portfolio_id = uuid4()
        self.app.execute(
            self.centre_admin,
            c.Enrol(
                portfolio_id=portfolio_id,
                centre_id=self.centre_id,
                learner_id=self.learner.id,
                unit_code=seed_spec(self.app, seed_prefix).code,
                assessor_id=(assessor or self.assessor).id,
                iqa_id=self.iqa.id,
            ),
        )
        return portfolio_id

    def submit(
        self,
        portfolio_id: UUID,
        *,
        environment: Environment = Environment.WORKPLACE,
        on: date | None = None,
        customer: str | None = "cust-1",
    ) -> UUID:
        evidence_id = uuid4()
        self.app.execute(
            self.learner,
            c.SubmitEvidence(
                evidence_id=evidence_id,
                method=Method.WORK_PRODUCT,
                title="Complaint log extract",
                environment=environment,
                customer_ref=customer,
                authenticity_declared=True,
                effective_on=on,
            ),
            target=portfolio_id,
        )
        return evidence_id

    def observe(
        self,
        portfolio_id: UUID,
        criteria: tuple[str, ...],
        *,
        by: c.Actor | None = None,
        on: date | None = None,
    ) -> UUID:
        evidence_id = uuid4()
        self.app.execute(
            by or self.assessor,
            c.RecordObservation(
                evidence_id=evidence_id,
                environment=Environment.WORKPLACE,
                criteria=criteria,
                customer_ref="cust-2",
                effective_on=on,
            ),
            target=portfolio_id,
        )
        return evidence_id

    def decide(
        self,
        portfolio_id: UUID,
        criteria: tuple[str, ...],
        evidence_ids: tuple[UUID, ...],
        *,
        by: c.Actor | None = None,
    ) -> UUID:
        decision_id = uuid4()
        self.app.execute(
            by or self.assessor,
            c.RecordDecision(
                decision_id=decision_id,
                outcome=Outcome.MET,
                criteria=criteria,
                evidence_ids=evidence_ids,
            ),
            target=portfolio_id,
        )
        return decision_id

    def complete(self, assessor: c.Actor | None = None, *, sign_off: bool = True) -> UUID:
        """A seed 003 portfolio with every criterion met over time (a trainee's decision
        countersigned) and, unless told not to, signed off: ready for certification. Seed 003
        names no must-observe criteria and infers only K4, so two observed occasions of
        every PC and questioning on K1-K3 cover it."""
        by = assessor or self.assessor
        pid = self.enrol("003", assessor=by)
        spec = seed_spec(self.app, "003")
        pcs = tuple(x.id for x in spec.criteria if x.kind == "performance")
        today = self.app.clock().date()
        evidence = [
            self._observation(pid, (*pcs, "K4"), by, on=today - timedelta(days=20), customer="a"),
            self._observation(pid, pcs, by, on=today - timedelta(days=2), customer="b"),
        ]
        questioning = c.RecordQuestioning(
            evidence_id=uuid4(), method=Method.QUESTIONING, criteria=("K1", "K2", "K3")
        )
        self.app.execute(by, questioning, target=pid)
        evidence.append(questioning.evidence_id)
        criteria = (*pcs, "K1", "K2", "K3", "K4")
        decision = c.RecordDecision(
            decision_id=uuid4(), outcome=Outcome.MET, criteria=criteria, evidence_ids=(*evidence,)
        )
        self.app.execute(by, decision, target=pid)
        if self.app.portfolio(pid).decisions[decision.decision_id].needs_countersignature:
            countersign = c.Countersign(decision_id=decision.decision_id)
            self.app.execute(self.assessor, countersign, target=pid)
        if sign_off:
            sign = c.SignOffUnit(feedback="Consistently good; well done.")
            self.app.execute(by, sign, target=pid)
        return pid

    def certified(self) -> UUID:
        pid = self.complete()
        self.app.execute(self.centre_admin, c.CertifyUnit(certificate_ref="C-1"), target=pid)
        return pid

    def _observation(
        self, pid: UUID, criteria: tuple[str, ...], by: c.Actor, *, on: date, customer: str
    ) -> UUID:
        cmd = c.RecordObservation(
            evidence_id=uuid4(),
            environment=Environment.WORKPLACE,
            criteria=criteria,
            customer_ref=f"cust-{customer}",
            occasion=f"shift {customer}",
            effective_on=on,
        )
        self.app.execute(by, cmd, target=pid)
        return cmd.evidence_id


def days_ago(n: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=n)
