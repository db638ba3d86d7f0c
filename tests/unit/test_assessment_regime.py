"""The assessment regime as an assessor, IQA and EV read the units, through the real store.

Each test is one rule of the unit texts or of assessment practice; each asserts the named
refusal (and that nothing was written) or what coverage, sufficiency and the audit chain
then say. Seed 000 is "Resolve customer service problems" (hospitality), 001 OCR 354, 002
the workbook, 003 "Monitor and solve" (hospitality), 004 the checklist.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from adapters.specs import default_specs_dir, load_catalogue
from domain import commands as c
from domain import errors
from domain.events import (
    Environment,
    Outcome,
    Qualification,
    Role,
    SampleOutcome,
    SampleStage,
    SummativeRule,
)
from domain.portfolio import Decision, EvidenceItem, PortfolioState
from domain.spec import Method
from projections.audit import ChainState, chains_with_context, names
from projections.coverage import CoverageReport, CriterionCoverage, coverage
from projections.judgement import coverage_of, sufficiency_of
from projections.sufficiency import SufficiencyReport, sufficiency
from service.handlers import Eportfolio
from service.queries import Queries
from tests.world import World, seed_spec


def today() -> date:
    """Read when used, not at import: a run may cross midnight."""
    return datetime.now(UTC).date()


class RegimeWorld(World):
    """The shared centre, plus the acts the rules are about."""

    def act(self, pid: UUID, cmd: c.Command, by: c.Actor | None = None) -> None:
        self.app.execute(by or self.assessor, cmd, target=pid)

    def refused(
        self, pid: UUID, error: type[Exception], actor: c.Actor, cmd: c.Command
    ) -> errors.DomainError:
        """`cmd` is refused with `error`, and the portfolio is unchanged."""
        before = self.app.portfolio(pid).version
        with pytest.raises(error) as caught:
            self.app.execute(actor, cmd, target=pid)
        assert self.app.portfolio(pid).version == before
        assert isinstance(caught.value, errors.DomainError)
        return caught.value

    def work(
        self,
        pid: UUID,
        *,
        by: c.Actor | None = None,
        method: Method = Method.WORK_PRODUCT,
        environment: Environment = Environment.WORKPLACE,
        on: date | None = None,
        tags: tuple[str, ...] = (),
        **extra: object,
    ) -> UUID:
        cmd = c.SubmitEvidence(
            evidence_id=uuid4(),
            method=method,
            title="Complaint record",
            environment=environment,
            customer_ref="cust-9",
            requirement_tags=tags,
            authenticity_declared=True,
            effective_on=on,
            **extra,  # type: ignore[arg-type]
        )
        self.app.execute(by or self.learner, cmd, target=pid)
        return cmd.evidence_id

    def map(self, pid: UUID, evidence: UUID, *criteria: str, by: c.Actor | None = None) -> None:
        self.act(pid, c.MapEvidence(evidence_id=evidence, criteria=criteria), by or self.learner)

    def question(self, pid: UUID, *criteria: str, method: Method = Method.QUESTIONING) -> UUID:
        cmd = c.RecordQuestioning(evidence_id=uuid4(), method=method, criteria=criteria)
        self.act(pid, cmd)
        return cmd.evidence_id

    def testimony(self, pid: UUID, *criteria: str, by: c.Actor | None = None) -> UUID:
        cmd = c.RecordWitnessTestimony(
            evidence_id=uuid4(),
            witness_id=self.witness_id,
            environment=Environment.WORKPLACE,
            criteria=criteria,
            statement="I saw the candidate resolve it.",
        )
        self.act(pid, cmd, by or self.learner)
        return cmd.evidence_id

    def decision(
        self, *criteria: str, evidence: tuple[UUID, ...], **extra: object
    ) -> c.RecordDecision:
        return c.RecordDecision(
            decision_id=uuid4(),
            outcome=Outcome.MET,
            criteria=criteria,
            evidence_ids=evidence,
            **extra,  # type: ignore[arg-type]
        )

    def ev_sample(
        self, pid: UUID, decision: UUID, outcome: SampleOutcome, actions: tuple[str, ...] = ()
    ) -> UUID:
        cmd = c.RecordEvSample(
            sample_id=uuid4(), decision_ids=(decision,), outcome=outcome, actions=actions
        )
        self.act(pid, cmd, self.ev)
        return cmd.sample_id

    def iqa_sample(
        self,
        pid: UUID,
        decision: UUID,
        outcome: SampleOutcome = SampleOutcome.AGREED,
        *,
        by: c.Actor | None = None,
        stage: SampleStage = SampleStage.INTERIM,
    ) -> UUID:
        cmd = c.RecordIqaSample(
            sample_id=uuid4(), stage=stage, decision_ids=(decision,), outcome=outcome
        )
        self.act(pid, cmd, by or self.iqa)
        return cmd.sample_id

    def coverage(self, pid: UUID) -> CoverageReport:
        portfolio = self.app.portfolio(pid)
        return coverage_of(portfolio, self.app.centre(self.centre_id), self.app.spec_of(portfolio))

    def sufficiency(self, pid: UUID) -> SufficiencyReport:
        portfolio = self.app.portfolio(pid)
        centre = self.app.centre(self.centre_id)
        return sufficiency_of(portfolio, centre, self.app.spec_of(portfolio))

    def row(self, pid: UUID, cid: str) -> CriterionCoverage:
        return next(r for r in self.coverage(pid).criteria if r.id == cid)


@pytest.fixture
def world(app: Eportfolio) -> RegimeWorld:
    return RegimeWorld(app)


# ---- 1. knowledge inference, per statement --------------------------------------------


def test_k1_of_seed_000_is_not_met_by_observation_or_a_work_product_alone(
    world: RegimeWorld,
) -> None:
    """K1 "Organisational procedures and systems ..." is not about how to do something."""
    pid = world.enrol("000")
    cmd = c.RecordObservation(
        evidence_id=uuid4(), environment=Environment.WORKPLACE, criteria=("PC3", "K1")
    )
    refusal = world.refused(pid, errors.KnowledgeNotInferable, world.assessor, cmd)
    assert refusal.field == "criteria"
    work = world.work(pid)
    world.refused(pid, errors.KnowledgeNotInferable, world.learner, _mapping(work, "K1"))


def test_written_answers_questioning_discussion_and_explained_other_evidence_show_k1(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("000")
    answers = world.work(pid, written_answers=True)
    world.map(pid, answers, "K1")
    other = world.work(pid, method=Method.OTHER, other_reason="Recorded induction quiz")
    world.map(pid, other, "K6")
    asked = world.question(pid, "K7", method=Method.PROFESSIONAL_DISCUSSION)
    world.act(pid, world.decision("K1", "K6", "K7", evidence=(answers, other, asked)))
    for cid in ("K1", "K6", "K7"):
        row = world.row(pid, cid)
        assert (row.complete, row.inferred, row.inferable) == (True, False, False)


def test_how_to_knowledge_of_seed_003_is_inferred_only_for_k4(world: RegimeWorld) -> None:
    pid = world.enrol("003")
    observed = c.RecordObservation(
        evidence_id=uuid4(), environment=Environment.WORKPLACE, criteria=("PC1", "K4")
    )
    world.act(pid, observed)
    world.act(pid, world.decision("K4", evidence=(observed.evidence_id,)))
    assert (world.row(pid, "K4").complete, world.row(pid, "K4").inferred) == (True, True)
    for cid in ("K1", "K2", "K3"):
        cmd = c.MapEvidence(evidence_id=observed.evidence_id, criteria=(cid,))
        world.refused(pid, errors.KnowledgeNotInferable, world.assessor, cmd)


def test_other_evidence_must_say_what_it_is_and_only_a_work_product_is_written_answers(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("000")
    bare = _evidence(method=Method.OTHER)
    assert world.refused(pid, errors.OtherNeedsReason, world.learner, bare).field == (
        "other_reason"
    )
    odd = _evidence(method=Method.OTHER, other_reason="Quiz", written_answers=True)
    assert world.refused(pid, errors.MethodNotAllowed, world.learner, odd).field == (
        "written_answers"
    )


# ---- 2. who may touch whose record ---------------------------------------------------


def test_a_learner_cannot_map_the_assessors_observation_onto_pc5(world: RegimeWorld) -> None:
    pid = world.enrol("000")
    observation = world.observe(pid, ("PC3",))
    refusal = world.refused(
        pid, errors.NotPortfolioAssessor, world.learner, _mapping(observation, "PC5")
    )
    assert refusal.field == "evidence_id"
    world.map(pid, observation, "PC5", by=world.assessor)
    assert "PC5" in world.app.portfolio(pid).evidence[observation].criteria


def test_a_learner_maps_and_withdraws_only_evidence_they_recorded(world: RegimeWorld) -> None:
    pid = world.enrol("000")
    on_behalf = world.work(pid, by=world.assessor)  # the assessor records it for the learner
    world.refused(pid, errors.NotOwnEvidence, world.learner, _mapping(on_behalf, "PC1"))
    withdrawal = c.WithdrawEvidence(evidence_id=on_behalf, reason="Not mine")
    world.refused(pid, errors.NotOwnEvidence, world.learner, withdrawal)
    own = world.work(pid)
    world.map(pid, own, "PC1")
    world.map(pid, own, "PC2")  # and maps it again, to more criteria
    world.act(pid, c.WithdrawEvidence(evidence_id=own, reason="Duplicate"), world.learner)
    assert world.app.portfolio(pid).evidence[own].withdrawn


def test_questioning_belongs_to_the_assessor_and_a_learner_cannot_submit_a_discussion(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("000")
    asked = world.question(pid, "K2")
    world.refused(
        pid,
        errors.NotPortfolioAssessor,
        world.learner,
        c.WithdrawEvidence(evidence_id=asked, reason="x"),
    )
    world.refused(pid, errors.NotPortfolioAssessor, world.learner, _mapping(asked, "K3"))
    discussion = _evidence(method=Method.PROFESSIONAL_DISCUSSION)
    assert world.refused(pid, errors.MethodNotAllowed, world.learner, discussion).field == (
        "method"
    )


def test_only_the_assessor_extends_a_testimony_beyond_what_the_witness_attested(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("000")
    testimony = world.testimony(pid, "PC1")
    world.refused(pid, errors.NotPortfolioAssessor, world.learner, _mapping(testimony, "PC2"))
    world.map(pid, testimony, "PC2", by=world.assessor)
    assert world.app.portfolio(pid).evidence[testimony].criteria == {"PC1", "PC2"}


def test_the_assessor_withdraws_a_learners_evidence_with_a_reason_and_is_named_for_it(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("000")
    work = world.work(pid)
    world.act(pid, c.WithdrawEvidence(evidence_id=work, reason="Not authentic: a template"))
    item = world.app.portfolio(pid).evidence[work]
    assert (item.withdrawn, item.withdrawn_by) == (True, world.assessor.id)


# ---- 3. a decision rests on its evidence ------------------------------------------------


def test_a_met_decision_names_only_criteria_its_cited_evidence_shows(world: RegimeWorld) -> None:
    pid = world.enrol("000")
    work = world.work(pid)
    world.map(pid, work, "PC1")
    refusal = world.refused(
        pid,
        errors.DecisionUnsupported,
        world.assessor,
        world.decision("PC1", "PC2", evidence=(work,)),
    )
    assert refusal.reasons == ("PC2: no cited evidence is mapped to it",)
    not_yet = c.RecordDecision(
        decision_id=uuid4(), outcome=Outcome.NOT_YET, criteria=("PC2",), evidence_ids=(work,)
    )
    world.act(pid, not_yet)  # "not yet" claims nothing


def test_a_must_observe_criterion_needs_a_cited_observation(world: RegimeWorld) -> None:
    pid = world.enrol("000")
    testimony = world.testimony(pid, "PC3")
    observation = world.observe(pid, ("PC3",))
    cmd = world.decision("PC3", evidence=(testimony,))
    world.refused(pid, errors.ObservationRequired, world.assessor, cmd)
    world.act(pid, world.decision("PC3", evidence=(testimony, observation)))


def test_nothing_is_dated_before_what_it_rests_on(world: RegimeWorld) -> None:
    early = world.staff(
        Role.ASSESSOR, "Eli Early", Qualification.TRAINEE, on=today() - timedelta(9)
    )
    world.staff(Role.ASSESSOR, "Quin Qualified", on=today() - timedelta(9))
    pid = world.enrol("000", assessor=early)
    evidence = world.observe(pid, ("PC3",), by=early, on=today() - timedelta(3))
    backdated = world.decision("PC3", evidence=(evidence,), effective_on=today() - timedelta(4))
    refusal = world.refused(pid, errors.DecisionBeforeEvidence, early, backdated)
    assert refusal.field == "effective_on"
    decision = world.decision("PC3", evidence=(evidence,), effective_on=today() - timedelta(2))
    world.act(pid, decision, early)
    before = c.Countersign(decision_id=decision.decision_id, effective_on=today() - timedelta(3))
    world.refused(pid, errors.CountersignatureBeforeDecision, world.assessor, before)
    sample = c.RecordIqaSample(
        sample_id=uuid4(),
        stage=SampleStage.INTERIM,
        decision_ids=(decision.decision_id,),
        outcome=SampleOutcome.AGREED,
        effective_on=today() - timedelta(3),
    )
    world.refused(pid, errors.SampleBeforeDecision, world.iqa, sample)


def test_withdrawn_evidence_stops_a_decision_standing_only_for_what_it_supported(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("000")
    pc3, pc4 = world.observe(pid, ("PC3",)), world.observe(pid, ("PC4",))
    decision = world.decision("PC3", "PC4", evidence=(pc3, pc4))
    world.act(pid, decision)
    world.act(pid, c.WithdrawEvidence(evidence_id=pc3, reason="Customer was a relative"))
    assert world.row(pid, "PC4").complete
    row = world.row(pid, "PC3")
    assert not row.complete
    assert any(
        "no longer stands for it: the evidence it relied on was withdrawn" in g for g in row.gaps
    )
    portfolio = world.app.portfolio(pid)
    [chain] = chains_with_context(portfolio, names(world.app.centre(world.centre_id)))
    assert chain.chain.lapsed == ("PC3",)


def test_withdrawing_evidence_never_revives_the_decision_a_later_one_replaced(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("000")
    first, second = world.observe(pid, ("PC3",)), world.observe(pid, ("PC3",))
    world.act(pid, world.decision("PC3", evidence=(first,)))
    later = world.decision("PC3", evidence=(second,))
    world.act(pid, later)
    world.act(pid, c.WithdrawEvidence(evidence_id=second, reason="Recorded on the wrong day"))
    row = world.row(pid, "PC3")
    assert (row.complete, row.decision_id) == (False, None)
    assert any(f"the decision of {today()} no longer stands" in g for g in row.gaps)
    world.act(pid, c.RevokeDecision(decision_id=later.decision_id, reason="Wrong record"))
    assert world.row(pid, "PC3").complete  # revoking it, unlike withdrawing, undoes it


# ---- 4. environments ------------------------------------------------------------------


def test_seed_000_counts_realistic_working_environment_evidence_only_when_approved(
    world: RegimeWorld,
) -> None:
    """ "in the workplace or approved realistic working environment"."""
    pid = world.enrol("000")
    rwe = Environment.REALISTIC_WORKING_ENVIRONMENT
    unapproved = world.work(pid, environment=rwe)
    refusal = world.refused(
        pid, errors.EnvironmentNotAllowed, world.learner, _mapping(unapproved, "PC1")
    )
    assert "approved" in refusal.message
    approval = c.ApproveRealisticEnvironment(approval_id=uuid4(), location="Training restaurant")
    with pytest.raises(errors.NotPermitted):
        world.centre_cmd(approval)  # a centre does not approve its own
    other_unit = c.ApproveRealisticEnvironment(
        approval_id=uuid4(), location="Kitchen", unit_codes=(seed_spec(world.app, "003").code,)
    )
    world.centre_cmd(other_unit, by=world.ev)
    wrong = world.work(pid, environment=rwe, rwe_approval_id=other_unit.approval_id)
    world.refused(pid, errors.EnvironmentNotAllowed, world.learner, _mapping(wrong, "PC1"))
    world.centre_cmd(approval, by=world.admin)
    approved = world.work(pid, environment=rwe, rwe_approval_id=approval.approval_id)
    world.map(pid, approved, "PC1")


def test_ocr_354_refuses_work_placement_evidence_and_seed_002_accepts_it(
    world: RegimeWorld,
) -> None:
    ocr, workbook = world.enrol("001"), world.enrol("002")
    placement = Environment.WORK_PLACEMENT
    refused = world.work(ocr, environment=placement)
    world.refused(ocr, errors.EnvironmentNotAllowed, world.learner, _mapping(refused, "1.1"))
    world.map(workbook, world.work(workbook, environment=placement), "PC1")


def test_simulated_evidence_cannot_evidence_a_range_item_or_a_requirement(
    world: RegimeWorld,
) -> None:
    seed_000, seed_002 = world.enrol("000"), world.enrol("002")
    simulated = c.RecordObservation(
        evidence_id=uuid4(), environment=Environment.SIMULATION, criteria=("a",)
    )
    world.refused(seed_000, errors.SimulationNotAllowed, world.assessor, simulated)
    tagged = _evidence(environment=Environment.SIMULATION, requirement_tags=("RP1",))
    refusal = world.refused(seed_002, errors.SimulationNotAllowed, world.learner, tagged)
    assert refusal.field == "requirement_tags"


# ---- 5. evidence requirements need the assessor ----------------------------------------


def test_a_learners_tag_on_ocr_354_requirement_4a_counts_once_the_assessor_confirms_it(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("001")
    tagged = world.work(pid, tags=("4a",))
    row = world.row(pid, "4a")
    assert (row.complete, row.gaps) == (False, ("Requirement 4a: no assessment decision yet",))
    world.act(pid, world.decision("4a", evidence=(tagged,)))
    assert world.row(pid, "4a").complete


# ---- 6. "if observation is not possible" ------------------------------------------------


def test_a_decision_on_testimony_for_pc8_says_why_observation_was_not_possible(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("000")
    testimony = world.testimony(pid, "PC8")
    world.act(pid, world.decision("PC8", evidence=(testimony,)))
    assert "does not record why observation was not possible" in world.row(pid, "PC8").gaps[0]
    reason = "Options were weighed in a back-office meeting the assessor could not attend."
    world.act(pid, world.decision("PC8", evidence=(testimony,), observation_not_possible=reason))
    assert world.row(pid, "PC8").complete
    observed = world.observe(pid, ("PC9",))
    world.act(pid, world.decision("PC9", evidence=(observed,)))
    assert world.row(pid, "PC9").complete  # observed: nothing to explain


# ---- 7. conflicts of interest -----------------------------------------------------------


def test_the_learner_is_never_their_own_assessor_iqa_witness_or_countersigner(
    world: RegimeWorld,
) -> None:
    learner = world.learner.id
    as_assessor = c.Actor(id=learner, role=Role.ASSESSOR)
    register = c.RegisterStaff(
        staff_id=learner,
        name="Lee Learner",
        role=Role.ASSESSOR,
        qualification=Qualification.QUALIFIED,
    )
    world.centre_cmd(register)  # an assessor at the centre who is also learning a unit
    world.centre_cmd(c.AddWitness(witness_id=learner, name="Lee Learner"))
    enrol = c.Enrol(
        portfolio_id=uuid4(),
        centre_id=world.centre_id,
        learner_id=learner,
        unit_code=seed_spec(world.app, "000").code,
        assessor_id=learner,
        iqa_id=world.iqa.id,
    )
    with pytest.raises(errors.ConflictOfInterest) as caught:
        world.app.execute(world.centre_admin, enrol)
    assert caught.value.field == "assessor_id"
    pid = world.enrol("000", assessor=world.trainee)
    own_witness = c.RecordWitnessTestimony(
        evidence_id=uuid4(),
        witness_id=learner,
        environment=Environment.WORKPLACE,
        criteria=("PC1",),
        statement="I did it well.",
    )
    world.refused(pid, errors.ConflictOfInterest, world.learner, own_witness)
    observed = world.observe(pid, ("PC3",), by=world.trainee)
    decision = world.decision("PC3", evidence=(observed,))
    world.act(pid, decision, world.trainee)
    countersign = c.Countersign(decision_id=decision.decision_id)
    world.refused(pid, errors.ConflictOfInterest, as_assessor, countersign)


def test_an_external_verifier_is_never_staff_of_a_centre_allocated_to_them(
    world: RegimeWorld,
) -> None:
    staff = c.RegisterStaff(
        staff_id=world.ev.id, name="Evan", role=Role.IQA, qualification=Qualification.QUALIFIED
    )
    with pytest.raises(errors.ConflictOfInterest):
        world.centre_cmd(staff)
    with pytest.raises(errors.ConflictOfInterest):
        world.centre_cmd(c.AllocateEv(ev_id=world.assessor.id, name="Alex"), by=world.admin)


def test_a_trainee_iqas_sample_counts_only_once_a_qualified_iqa_countersigns_it(
    world: RegimeWorld,
) -> None:
    trainee_iqa = world.staff(Role.IQA, "Tess Trainee", Qualification.TRAINEE)
    pid = world.enrol("000")
    decision = world.decision("PC3", evidence=(world.observe(pid, ("PC3",)),))
    world.act(pid, decision)
    sample = world.iqa_sample(pid, decision.decision_id, by=trainee_iqa)
    portfolio = world.app.portfolio(pid)
    [chain] = chains_with_context(portfolio, names(world.app.centre(world.centre_id)))
    assert (chain.chain.state, chain.chain.iqa_samples[0].counts) == (ChainState.STANDS, False)
    countersign = c.CountersignIqaSample(sample_id=sample)
    world.refused(pid, errors.OwnDecision, trainee_iqa, countersign)
    world.refused(pid, errors.IqaCountersignerNotQualified, world.assessor, countersign)
    world.act(pid, countersign, world.iqa)
    [chain] = chains_with_context(
        world.app.portfolio(pid), names(world.app.centre(world.centre_id))
    )
    assert (chain.chain.state, chain.chain.iqa_samples[0].counts) == (ChainState.IQA_SAMPLED, True)


def test_an_iqa_agreed_after_an_ev_referred_does_not_put_the_decision_back_in_force(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("000")
    decision = world.decision("PC3", evidence=(world.observe(pid, ("PC3",)),))
    world.act(pid, decision)
    referral = world.ev_sample(pid, decision.decision_id, SampleOutcome.REFERRED)
    world.iqa_sample(pid, decision.decision_id, SampleOutcome.AGREED)
    row = world.row(pid, "PC3")
    assert not row.complete
    assert f"PC3: the EV referred the decision of {today()} back to the assessor" in row.gaps
    accept = c.AcceptSampleResponse(sample_id=referral)
    world.refused(pid, errors.NoOpenReferral, world.ev, accept)  # nothing to accept yet
    world.act(pid, c.RespondToSample(sample_id=referral, response="Re-observed on a busy day."))
    world.refused(pid, errors.EvNotAllocated, world.iqa, accept)  # the EV's referral
    world.act(pid, accept, world.ev)
    assert world.row(pid, "PC3").complete


def test_a_new_decision_by_the_assessor_clears_a_referral(world: RegimeWorld) -> None:
    pid = world.enrol("000")
    first = world.decision("PC3", evidence=(world.observe(pid, ("PC3",)),))
    world.act(pid, first)
    world.ev_sample(pid, first.decision_id, SampleOutcome.REFERRED)
    world.act(pid, world.decision("PC3", evidence=(world.observe(pid, ("PC3",)),)))
    assert world.row(pid, "PC3").complete


# ---- 8. unit completion and certification ----------------------------------------------


def test_an_incomplete_portfolio_cannot_be_signed_off_or_certified_and_each_says_why(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("003")
    sign_off = c.SignOffUnit(feedback="Well done")
    refusal = world.refused(pid, errors.UnitNotComplete, world.assessor, sign_off)
    assert "PC1: no evidence yet" in refusal.reasons
    refusal = world.refused(pid, errors.CertificationRefused, world.centre_admin, c.CertifyUnit())
    assert "Coverage: PC1: no evidence yet" in refusal.reasons
    assert "The assessor has not signed off unit completion" in refusal.reasons
    assert any(
        r.startswith("Sufficiency: assessed performance evidence from 0") for r in refusal.reasons
    )


def test_a_complete_signed_off_portfolio_is_certified_and_then_closed_until_an_appeal(
    world: RegimeWorld,
) -> None:
    pid = world.complete()
    world.act(pid, c.CertifyUnit(certificate_ref="C-42"), world.centre_admin)
    closed = [
        (world.learner, _evidence()),
        (
            world.assessor,
            c.RecordQuestioning(evidence_id=uuid4(), method=Method.QUESTIONING, criteria=("K1",)),
        ),
        (world.assessor, c.SignOffUnit(feedback="Again")),
        (world.centre_admin, c.WithdrawLearner(reason="Left")),
        (world.centre_admin, c.CertifyUnit()),
    ]
    for actor, cmd in closed:
        world.refused(pid, errors.PortfolioClosed, actor, cmd)
    [decision] = world.app.portfolio(pid).decisions
    world.ev_sample(pid, decision, SampleOutcome.AGREED)  # quality assurance goes on
    appeal = c.OpenAppeal(appeal_id=uuid4(), reason="The learner appeals the K2 decision")
    world.refused(world.enrol("003"), errors.PortfolioNotClosed, world.centre_admin, appeal)
    world.act(pid, appeal, world.centre_admin)
    portfolio = world.app.portfolio(pid)
    assert (portfolio.closed, portfolio.certified_on, portfolio.appeal_ids) == (
        False,
        None,
        {appeal.appeal_id},
    )
    world.work(pid)  # open again


def test_an_open_ev_referral_or_action_blocks_certification(world: RegimeWorld) -> None:
    pid = world.complete()
    [decision] = world.app.portfolio(pid).decisions
    sample = world.ev_sample(pid, decision, SampleOutcome.AGREED, ("File the rota",))
    refusal = world.refused(pid, errors.CertificationRefused, world.centre_admin, c.CertifyUnit())
    assert refusal.reasons == (
        f"The EV's sample of {today()} set 1 action: not yet closed (no response yet)",
    )
    world.act(pid, c.RespondToSample(sample_id=sample, response="Rota filed."))
    world.act(pid, c.AcceptSampleResponse(sample_id=sample), world.ev)
    world.act(pid, c.CertifyUnit(), world.centre_admin)


def test_the_sampling_plan_decides_which_portfolios_need_an_agreed_summative_sample(
    world: RegimeWorld,
) -> None:
    world.centre_cmd(
        c.SetSamplingPlan(summative_before_certification=SummativeRule.EVERY_PORTFOLIO),
        by=world.iqa,
    )
    pid = world.complete()
    refusal = world.refused(pid, errors.CertificationRefused, world.centre_admin, c.CertifyUnit())
    assert refusal.reasons == (
        "The sampling plan v1 requires an agreed IQA summative sample of every portfolio "
        "before certification: none recorded",
    )
    [decision] = world.app.portfolio(pid).decisions
    world.iqa_sample(pid, decision, stage=SampleStage.SUMMATIVE)
    world.act(pid, c.CertifyUnit(), world.centre_admin)


def test_a_trainee_assessed_portfolio_needs_a_summative_sample_by_default(
    world: RegimeWorld,
) -> None:
    pid = world.complete(assessor=world.trainee)
    refusal = world.refused(pid, errors.CertificationRefused, world.centre_admin, c.CertifyUnit())
    assert refusal.reasons[0].startswith(
        "The default sampling rule (no plan) requires an agreed IQA summative sample of "
        "trainee-assessed work"
    )


def test_a_sign_off_older_than_a_later_decision_must_be_given_again(world: RegimeWorld) -> None:
    pid = world.complete()
    [decision] = world.app.portfolio(pid).decisions
    cited = world.app.portfolio(pid).decisions[decision].evidence_ids
    world.act(pid, world.decision("PC1", evidence=cited[:1]))
    refusal = world.refused(pid, errors.CertificationRefused, world.centre_admin, c.CertifyUnit())
    assert refusal.reasons[0].startswith("The assessor's sign-off of")


# ---- 9. sufficiency you can rely on -------------------------------------------------------


def test_a_certified_portfolio_is_judged_by_the_policy_it_was_certified_under(
    world: RegimeWorld,
) -> None:
    world.centre_cmd(c.SetSufficiencyPolicy(decision_ref="SM-1"))
    pid = world.certified()
    stricter = c.SufficiencyThresholds(min_occasions=9)
    world.centre_cmd(c.SetSufficiencyPolicy(default=stricter, decision_ref="SM-2"))
    report = world.sufficiency(pid)
    assert (report.policy_version, report.passed, report.reasons) == (1, True, ())
    assert world.sufficiency(world.complete(sign_off=False)).reasons == (
        "assessed performance evidence from 2 occasions; policy v2 needs 9 (different "
        "occasions, so the standard is shown consistently)",
    )


def test_a_policy_naming_an_unknown_unit_or_criterion_is_refused(world: RegimeWorld) -> None:
    lenient = c.SufficiencyThresholds(min_occasions=1)
    unknown_unit = c.SetSufficiencyPolicy(
        per_unit=(c.UnitThresholds(unit_code="NOPE-1", thresholds=lenient),)
    )
    with pytest.raises(errors.NotFound) as caught:
        world.centre_cmd(unknown_unit)
    assert caught.value.field == "per_unit[0].unit_code"
    unknown_pc = c.SetSufficiencyPolicy(
        per_unit=(
            c.UnitThresholds(
                unit_code=seed_spec(world.app, "000").code,
                thresholds=lenient,
                per_criterion={"PC99": lenient},
            ),
        )
    )
    with pytest.raises(errors.UnknownCriterion) as caught_pc:
        world.centre_cmd(unknown_pc)
    assert caught_pc.value.field == "per_unit[0].per_criterion"


def test_sufficiency_counts_only_evidence_an_assessor_has_decided_on(world: RegimeWorld) -> None:
    pid = world.enrol("000")
    unassessed = world.work(pid, on=today() - timedelta(30))
    world.map(pid, unassessed, "PC1")
    assert world.sufficiency(pid).figures.evidence_count == 0
    world.act(pid, world.decision("PC1", evidence=(unassessed,)))
    assert world.sufficiency(pid).figures.evidence_count == 1


# ---- 10. follow the text, no more ----------------------------------------------------------


def test_seed_004_needs_no_centre_list_of_must_observe_criteria_but_a_centre_may_set_one(
    world: RegimeWorld,
) -> None:
    pid = world.enrol("004")
    gaps = world.coverage(pid).gaps
    assert not any("must be observed" in g or g.startswith("The centre") for g in gaps)
    code = seed_spec(world.app, "004").code
    world.centre_cmd(c.SetObservedCriteria(unit_code=code, criteria=("1.1",)))
    assert world.row(pid, "1.1").must_observe


# ---- helpers ---------------------------------------------------------------------------------


def _mapping(evidence_id: UUID, *criteria: str) -> c.MapEvidence:
    return c.MapEvidence(evidence_id=evidence_id, criteria=criteria)


def _evidence(**fields: object) -> c.SubmitEvidence:
    values: dict[str, object] = {
        "evidence_id": uuid4(),
        "method": Method.WORK_PRODUCT,
        "title": "Notes",
        "environment": Environment.WORKPLACE,
        "authenticity_declared": True,
    }
    return c.SubmitEvidence(**(values | fields))  # type: ignore[arg-type]


# ---- time travel agrees with the rules ----------------------------------------------------


def test_as_known_at_the_referral_the_decision_shows_referred_and_after_the_response_met(
    world: RegimeWorld,
) -> None:
    queries = Queries(world.app)
    pid = world.enrol("000")
    decision = world.decision("PC3", evidence=(world.observe(pid, ("PC3",)),))
    world.act(pid, decision)
    referral = world.ev_sample(pid, decision.decision_id, SampleOutcome.REFERRED)
    referred_at = datetime.now(UTC)
    world.act(pid, c.RespondToSample(sample_id=referral, response="Re-observed."))
    world.act(pid, c.AcceptSampleResponse(sample_id=referral), world.ev)
    then = queries.coverage(pid, as_known_at=referred_at)
    now = queries.coverage(pid)
    assert f"PC3: the EV referred the decision of {today()} back to the assessor" in then.gaps
    assert not any(g.startswith("PC3") for g in now.gaps)
    portfolio, centre = queries.portfolio_at(pid, as_known_at=referred_at)
    [chain] = chains_with_context(portfolio, names(centre))
    assert chain.chain.state is ChainState.REFERRED


# ---- history recorded before these rules is judged by them -----------------------------------

SEED_000_SPEC = next(
    s for s in load_catalogue(default_specs_dir()).specs if s.seed.startswith("000")
)
AT = datetime(2024, 3, 1, 9, tzinfo=UTC)


def _old_portfolio(*items: EvidenceItem) -> PortfolioState:
    """A portfolio as an earlier release could have recorded it: every item decided met."""
    zero = UUID(int=0)
    state = PortfolioState(
        portfolio_id=zero,
        centre_id=zero,
        learner_id=zero,
        unit_code=SEED_000_SPEC.code,
        spec_version=SEED_000_SPEC.version,
        spec_hash=SEED_000_SPEC.content_hash,
        assessor_id=zero,
        iqa_id=zero,
        enrolled_on=AT.date(),
    )
    state.evidence = {i.evidence_id: i for i in items}
    criteria = tuple(sorted({cid for i in items for cid in i.criteria}))
    state.decisions[UUID(int=99)] = Decision(
        decision_id=UUID(int=99),
        event_id=UUID(int=99),
        outcome=Outcome.MET,
        criteria=criteria,
        evidence_ids=tuple(state.evidence),
        author_id=zero,
        author_qualification=Qualification.QUALIFIED,
        effective_on=AT.date(),
        recorded_at=AT,
    )
    return state


def _old_item(n: int, method: Method, env: Environment, *criteria: str) -> EvidenceItem:
    return EvidenceItem(
        evidence_id=UUID(int=n),
        event_id=UUID(int=n),
        method=method,
        author_id=UUID(int=0),
        effective_on=AT.date() - timedelta(days=n * 10),
        recorded_at=AT,
        environment=env,
        customer_ref=f"c{n}",
        criteria=set(criteria),
    )


def test_a_simulated_observation_never_counts_towards_two_from_a_to_d() -> None:
    simulated = _old_item(1, Method.OBSERVATION, Environment.SIMULATION, "a", "b")
    report = coverage(_old_portfolio(simulated), SEED_000_SPEC)
    assert report.range is not None
    assert (report.range.observed, report.range.rule_met) == ((), False)
    assert (
        "Range (a): its evidence cannot show it (simulated evidence is never performance "
        "evidence)" in report.gaps
    )


def test_unapproved_rwe_evidence_counts_neither_for_coverage_nor_for_sufficiency() -> None:
    rwe = Environment.REALISTIC_WORKING_ENVIRONMENT
    items = [_old_item(n, Method.OBSERVATION, rwe, "PC3") for n in (1, 2, 3)]
    portfolio = _old_portfolio(*items)
    assert not next(
        r for r in coverage(portfolio, SEED_000_SPEC).criteria if r.id == "PC3"
    ).complete
    report = sufficiency(portfolio, SEED_000_SPEC, None)
    assert report.figures.evidence_count == 0
    real = [_old_item(n, Method.OBSERVATION, Environment.WORKPLACE, "PC3") for n in (1, 2, 3)]
    workplace = _old_portfolio(*real)
    assert sufficiency(workplace, SEED_000_SPEC, None).figures.evidence_count == 3


def test_an_old_decision_on_testimony_for_a_must_observe_criterion_shows_its_gap() -> None:
    testimony = _old_item(1, Method.WITNESS_TESTIMONY, Environment.WORKPLACE, "PC5", "K4")
    rows = {r.id: r for r in coverage(_old_portfolio(testimony), SEED_000_SPEC).criteria}
    assert rows["PC5"].gaps == (
        "PC5 must be observed by the assessor; so far it has only witness testimony",
        f"PC5: the decision of {AT.date()} cites no observation of it",
    )
    assert rows["K4"].gaps[0].startswith("K4: its evidence cannot show it (witness testimony")


def test_a_tag_proposes_an_evidence_requirement_and_nothing_else(world: RegimeWorld) -> None:
    """Criteria are mapped, by whoever may map them; a tag only proposes a requirement."""
    pid = world.enrol("002")
    refusal = world.refused(
        pid, errors.UnknownCriterion, world.learner, _evidence(requirement_tags=("PC5",))
    )
    assert refusal.field == "requirement_tags"
    world.work(pid, tags=("RP1",))


def test_a_centre_administrator_who_is_the_learner_never_closes_their_own_portfolio(
    world: RegimeWorld,
) -> None:
    pid = world.complete()
    as_admin = c.Actor(id=world.learner.id, role=Role.CENTRE_ADMIN)
    world.centre_cmd(
        c.RegisterStaff(
            staff_id=world.learner.id,
            name="Lee Learner",
            role=Role.CENTRE_ADMIN,
            qualification=Qualification.QUALIFIED,
        )
    )
    for cmd in (c.CertifyUnit(), c.WithdrawLearner(reason="Leaving")):
        world.refused(pid, errors.ConflictOfInterest, as_admin, cmd)
    world.act(pid, c.CertifyUnit(), world.centre_admin)
    appeal = c.OpenAppeal(appeal_id=uuid4(), reason="My own appeal")
    world.refused(pid, errors.ConflictOfInterest, as_admin, appeal)
