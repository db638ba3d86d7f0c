"""Each rule of the assessment regime, refused through the real store (SQLite and PostgreSQL).

Every test here fails if its rule is removed: it asserts the named error and that
nothing was written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from domain import commands as c
from domain import errors
from domain.events import Environment, Outcome, Qualification, Role, SampleOutcome, SampleStage
from domain.spec import Method
from service.handlers import Eportfolio
from tests.world import World


@pytest.fixture
def world(app: Eportfolio) -> World:
    return World(app)


def _refused(
    world: World, portfolio_id: UUID, error: type[Exception], actor: c.Actor, cmd: c.Command
) -> None:
    """The command is refused with `error` and the portfolio is unchanged."""
    before = world.app.portfolio(portfolio_id).version
    with pytest.raises(error):
        world.app.execute(actor, cmd, target=portfolio_id)
    assert world.app.portfolio(portfolio_id).version == before


def test_only_the_portfolios_assessor_records_observations(world: World) -> None:
    pid = world.enrol()
    cmd = c.RecordObservation(
        evidence_id=uuid4(), environment=Environment.WORKPLACE, criteria=("PC3",)
    )
    _refused(world, pid, errors.NotPortfolioAssessor, world.other_assessor, cmd)
    _refused(world, pid, errors.NotPortfolioAssessor, world.learner, cmd)
    world.app.execute(world.assessor, cmd, target=pid)
    assert world.app.portfolio(pid).evidence[cmd.evidence_id].method is Method.OBSERVATION


def test_only_the_portfolios_assessor_records_decisions(world: World) -> None:
    pid = world.enrol()
    evidence = world.observe(pid, ("PC3",))
    cmd = c.RecordDecision(
        decision_id=uuid4(), outcome=Outcome.MET, criteria=("PC3",), evidence_ids=(evidence,)
    )
    _refused(world, pid, errors.NotPortfolioAssessor, world.other_assessor, cmd)
    _refused(world, pid, errors.NotPortfolioAssessor, world.iqa, cmd)


def test_a_trainees_decision_is_pending_until_a_qualified_assessor_countersigns(
    world: World,
) -> None:
    pid = world.enrol(assessor=world.trainee)
    evidence = world.observe(pid, ("PC3",), by=world.trainee)
    decision_id = world.decide(pid, ("PC3",), (evidence,), by=world.trainee)
    assert not world.app.portfolio(pid).decisions[decision_id].stands

    world.app.execute(world.assessor, c.Countersign(decision_id=decision_id), target=pid)
    decision = world.app.portfolio(pid).decisions[decision_id]
    assert decision.stands
    assert decision.countersigned_by == world.assessor.id


def test_a_countersignature_must_come_from_a_qualified_assessor(world: World) -> None:
    second_trainee = world.staff(Role.ASSESSOR, "Toby Trainee", Qualification.TRAINEE)
    pid = world.enrol(assessor=world.trainee)
    evidence = world.observe(pid, ("PC3",), by=world.trainee)
    decision_id = world.decide(pid, ("PC3",), (evidence,), by=world.trainee)
    cmd = c.Countersign(decision_id=decision_id)
    _refused(world, pid, errors.CountersignerNotQualified, second_trainee, cmd)
    _refused(world, pid, errors.CountersignerNotQualified, world.iqa, cmd)


def test_qualification_counts_as_it_stood_on_the_day_of_signing(world: World) -> None:
    """A trainee who qualifies later still needed a countersignature for earlier work."""
    today = datetime.now(UTC).date()
    trainee = world.staff(
        Role.ASSESSOR, "Tam Early", Qualification.TRAINEE, on=today - timedelta(5)
    )
    pid = world.enrol(assessor=trainee)
    evidence = world.observe(pid, ("PC3",), by=trainee, on=today - timedelta(days=2))
    decision = c.RecordDecision(
        decision_id=uuid4(),
        outcome=Outcome.MET,
        criteria=("PC3",),
        evidence_ids=(evidence,),
        effective_on=today - timedelta(days=2),
    )
    world.app.execute(trainee, decision, target=pid)
    decision_id = decision.decision_id
    world.centre_cmd(
        c.ChangeQualification(
            staff_id=trainee.id, role=Role.ASSESSOR, qualification=Qualification.QUALIFIED
        )
    )
    assert world.app.portfolio(pid).decisions[decision_id].needs_countersignature
    # Countersigning as of yesterday, when the second trainee was not yet qualified, is refused.
    late = world.staff(Role.ASSESSOR, "Quinn Later", Qualification.TRAINEE)
    world.centre_cmd(
        c.ChangeQualification(
            staff_id=late.id, role=Role.ASSESSOR, qualification=Qualification.QUALIFIED
        )
    )
    backdated = c.Countersign(decision_id=decision_id, effective_on=today - timedelta(days=1))
    _refused(world, pid, errors.CountersignerNotQualified, late, backdated)


def test_nobody_countersigns_their_own_decision(world: World) -> None:
    pid = world.enrol(assessor=world.trainee)
    evidence = world.observe(pid, ("PC3",), by=world.trainee)
    decision_id = world.decide(pid, ("PC3",), (evidence,), by=world.trainee)
    world.centre_cmd(
        c.ChangeQualification(
            staff_id=world.trainee.id, role=Role.ASSESSOR, qualification=Qualification.QUALIFIED
        )
    )
    _refused(world, pid, errors.OwnDecision, world.trainee, c.Countersign(decision_id=decision_id))


def test_nobody_samples_their_own_decision(world: World) -> None:
    """A person who is both assessor and IQA may not quality-assure their own decision."""
    world.centre_cmd(
        c.RegisterStaff(
            staff_id=world.assessor.id,
            name="Alex Assessor",
            role=Role.IQA,
            qualification=Qualification.QUALIFIED,
        )
    )
    as_iqa = c.Actor(id=world.assessor.id, role=Role.IQA)
    pid = world.enrol()
    evidence = world.observe(pid, ("PC3",))
    decision_id = world.decide(pid, ("PC3",), (evidence,))
    cmd = c.RecordIqaSample(
        sample_id=uuid4(),
        stage=SampleStage.INTERIM,
        decision_ids=(decision_id,),
        outcome=SampleOutcome.AGREED,
    )
    _refused(world, pid, errors.OwnDecision, as_iqa, cmd)
    world.app.execute(world.iqa, cmd, target=pid)


def test_an_ev_samples_only_centres_allocated_to_them(world: World) -> None:
    pid = world.enrol()
    evidence = world.observe(pid, ("PC3",))
    decision_id = world.decide(pid, ("PC3",), (evidence,))
    stranger = c.Actor(id=uuid4(), role=Role.EV)
    cmd = c.RecordEvSample(
        sample_id=uuid4(), decision_ids=(decision_id,), outcome=SampleOutcome.AGREED
    )
    _refused(world, pid, errors.EvNotAllocated, stranger, cmd)
    world.app.execute(world.ev, cmd, target=pid)


def test_simulated_evidence_cannot_support_performance_criteria(world: World) -> None:
    pid = world.enrol()
    evidence = world.submit(pid, environment=Environment.SIMULATION)
    _refused(
        world,
        pid,
        errors.SimulationNotAllowed,
        world.learner,
        c.MapEvidence(evidence_id=evidence, criteria=("PC1",)),
    )
    _refused(
        world,
        pid,
        errors.SimulationNotAllowed,
        world.assessor,
        c.RecordObservation(
            evidence_id=uuid4(), environment=Environment.SIMULATION, criteria=("PC3",)
        ),
    )
    # Knowledge is not performance: written answers done in a simulation may still show it,
    # but nothing is inferred from simulated performance.
    answers = c.SubmitEvidence(
        evidence_id=uuid4(),
        method=Method.WORK_PRODUCT,
        title="Written answers, role-play debrief",
        environment=Environment.SIMULATION,
        written_answers=True,
        authenticity_declared=True,
    )
    world.app.execute(world.learner, answers, target=pid)
    world.app.execute(
        world.learner, c.MapEvidence(evidence_id=answers.evidence_id, criteria=("K1",)), target=pid
    )
    _refused(
        world,
        pid,
        errors.SimulationNotAllowed,
        world.assessor,
        c.RecordObservation(
            evidence_id=uuid4(), environment=Environment.SIMULATION, criteria=("K2",)
        ),
    )


def test_a_unit_that_forbids_realistic_working_environments_refuses_rwe_performance_evidence(
    world: World,
) -> None:
    pid = world.enrol("001")
    evidence = world.submit(pid, environment=Environment.REALISTIC_WORKING_ENVIRONMENT)
    _refused(
        world,
        pid,
        errors.EnvironmentNotAllowed,
        world.learner,
        c.MapEvidence(evidence_id=evidence, criteria=("1.1",)),
    )
    rwe_allowed = world.enrol("002")  # "a realistic working environment ... is permissible"
    allowed = world.submit(rwe_allowed, environment=Environment.REALISTIC_WORKING_ENVIRONMENT)
    world.app.execute(
        world.learner, c.MapEvidence(evidence_id=allowed, criteria=("PC1",)), target=rwe_allowed
    )


def test_a_witness_must_be_on_the_centres_list(world: World) -> None:
    pid = world.enrol()
    cmd = c.RecordWitnessTestimony(
        evidence_id=uuid4(),
        witness_id=uuid4(),
        environment=Environment.WORKPLACE,
        criteria=("PC5",),
        statement="I saw the candidate spot a stock system fault before customers did.",
    )
    _refused(world, pid, errors.WitnessNotListed, world.learner, cmd)
    listed = c.RecordWitnessTestimony(
        evidence_id=uuid4(),
        witness_id=world.witness_id,
        environment=Environment.WORKPLACE,
        criteria=("PC5",),
        statement="I saw the candidate spot a stock system fault before customers did.",
    )
    world.app.execute(world.learner, listed, target=pid)


def test_an_effective_date_cannot_be_later_than_the_time_it_is_recorded(world: World) -> None:
    pid = world.enrol()
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    cmd = c.SubmitEvidence(
        evidence_id=uuid4(),
        method=Method.WORK_PRODUCT,
        title="Future notes",
        environment=Environment.WORKPLACE,
        authenticity_declared=True,
        effective_on=tomorrow,
    )
    _refused(world, pid, errors.EffectiveDateInFuture, world.learner, cmd)


def test_withdrawn_evidence_cannot_be_relied_on_by_a_later_decision(world: World) -> None:
    pid = world.enrol()
    evidence = world.observe(pid, ("PC3",))
    world.app.execute(
        world.assessor,
        c.WithdrawEvidence(evidence_id=evidence, reason="Customer was a relative"),
        target=pid,
    )
    cmd = c.RecordDecision(
        decision_id=uuid4(), outcome=Outcome.MET, criteria=("PC3",), evidence_ids=(evidence,)
    )
    _refused(world, pid, errors.WithdrawnEvidence, world.assessor, cmd)


def test_a_correction_names_the_event_it_corrects(world: World) -> None:
    pid = world.enrol()
    evidence = world.observe(pid, ("PC3",))
    decision_id = world.decide(pid, ("PC3",), (evidence,))
    result = world.app.execute(
        world.assessor,
        c.RevokeDecision(decision_id=decision_id, reason="Relied on the wrong observation"),
        target=pid,
    )
    portfolio = world.app.portfolio(pid)
    assert not portfolio.decisions[decision_id].stands
    revoked = result.event
    assert revoked is not None
    assert getattr(revoked, "corrects_event_id", None) == portfolio.decisions[decision_id].event_id


def test_a_learner_must_declare_their_evidence_authentic(world: World) -> None:
    pid = world.enrol()
    cmd = c.SubmitEvidence(
        evidence_id=uuid4(),
        method=Method.WORK_PRODUCT,
        title="Email to customer",
        environment=Environment.WORKPLACE,
        authenticity_declared=False,
    )
    _refused(world, pid, errors.AuthenticityNotDeclared, world.learner, cmd)


def test_criteria_must_belong_to_the_unit(world: World) -> None:
    pid = world.enrol()
    cmd = c.RecordObservation(
        evidence_id=uuid4(), environment=Environment.WORKPLACE, criteria=("PC17",)
    )
    _refused(world, pid, errors.UnknownCriterion, world.assessor, cmd)


def test_a_learner_acts_only_on_their_own_portfolio(world: World) -> None:
    pid = world.enrol()
    stranger = c.Actor(id=uuid4(), role=Role.LEARNER)
    cmd = c.SubmitEvidence(
        evidence_id=uuid4(),
        method=Method.WORK_PRODUCT,
        title="Someone else's notes",
        environment=Environment.WORKPLACE,
        authenticity_declared=True,
    )
    _refused(world, pid, errors.NotPermitted, stranger, cmd)
    _refused(world, pid, errors.NotPermitted, world.other_assessor, cmd)
