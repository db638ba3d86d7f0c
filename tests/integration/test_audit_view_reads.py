"""The EV audit view now reads the stored view (centre, chains, trail, indexed EV samples)
and says exactly what the fold of the log says; with time travel it still folds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import pytest

from adapters.bootstrap import build, build_projections
from adapters.config import Config
from adapters.store.projection_runner import ProjectionRunner
from domain import commands as c
from domain.events import ERASED, Qualification, SampleOutcome, SampleStage
from projections.portfolio_view import PortfolioStateProjection
from service.erasure import erase_learner
from service.handlers import Eportfolio
from service.queries import AuditPage, Queries
from tests.world import World, seed_spec

FEEDBACK = "Observation records lack the time taken."
ACTIONS = ("Record the time taken on observations", "Standardise witness statements")


class Centre:
    def __init__(self, app: Eportfolio, runner: ProjectionRunner) -> None:
        self.app, self.runner = app, runner
        self.world = World(app)
        self.queries = Queries(app, runner.store)

    def assess(self) -> tuple[UUID, UUID]:
        """Two portfolios, a trainee's decision countersigned, IQA and EV samples, a plan."""
        w = self.world
        w.centre_cmd(c.SetSamplingPlan(min_candidate_rate=0.5), by=w.iqa)
        first, second = w.enrol(), w.enrol("001", assessor=w.trainee)
        met = w.decide(first, ("PC3",), (w.observe(first, ("PC3",)),))
        pc = next(x.id for x in seed_spec(self.app, "001").criteria if x.kind == "performance")
        observed = w.observe(second, (pc,), by=w.trainee)
        trainee = w.decide(second, (pc,), (observed,), by=w.trainee)
        self.app.execute(w.assessor, c.Countersign(decision_id=trainee), target=second)
        iqa = c.RecordIqaSample(
            sample_id=uuid4(), stage=SampleStage.INTERIM, decision_ids=(trainee,),
            outcome=SampleOutcome.AGREED,
        )  # fmt: skip
        self.app.execute(w.iqa, iqa, target=second)
        for pid, decision in ((second, trainee), (first, met)):  # logged out of enrolment order
            ev = c.RecordEvSample(
                sample_id=uuid4(), decision_ids=(decision,), outcome=SampleOutcome.REFERRED,
                actions=ACTIONS, feedback=FEEDBACK,
            )  # fmt: skip
            self.app.execute(w.ev, ev, target=pid)
        return first, second

    def now(self) -> AuditPage:
        self.runner.catch_up()
        return self.queries.audit(self.world.centre_id)

    def folded(self) -> AuditPage:
        """The same page folded from the log: known by a moment after every event."""
        later = datetime.now(UTC) + timedelta(days=1)
        return self.queries.audit(self.world.centre_id, as_known_at=later)


@pytest.fixture
def centre(config: Config) -> Iterator[Centre]:
    app = build(config)
    with build_projections(config, app) as views:
        yield Centre(app, views[PortfolioStateProjection.name])
    app.ledger.close()


def same(live: AuditPage, folded: AuditPage) -> None:
    assert live.decisions == folded.decisions
    assert live.sampling == folded.sampling
    assert live.ev_samples == folded.ev_samples
    assert live.trail == folded.trail


def test_the_live_audit_view_equals_the_fold_of_the_log(centre: Centre) -> None:
    first, second = centre.assess()

    live = centre.now()

    same(live, centre.folded())
    assert len(live.decisions) == 2
    assert [s.portfolio_id for s in live.ev_samples] == [first, second]  # as enrolled
    assert all((s.feedback, s.actions) == (FEEDBACK, ACTIONS) for s in live.ev_samples)
    assert {s.ev_name for s in live.ev_samples} == {"Evan Verifier"}
    qualifications = {d.assessor.qualification for d in live.decisions}
    assert qualifications == {Qualification.QUALIFIED, Qualification.TRAINEE}


def test_the_live_audit_view_answers_from_the_stored_view(centre: Centre) -> None:
    first, _ = centre.assess()
    before = centre.now()
    w = centre.world
    w.decide(first, ("PC5",), (w.observe(first, ("PC5",)),))

    unprocessed = centre.queries.audit(w.centre_id)  # the view has not seen the decision yet

    assert unprocessed.decisions == before.decisions
    assert len(centre.folded().decisions) == 3
    assert len(centre.now().decisions) == 3  # once the view has processed it
    same(centre.now(), centre.folded())


def test_an_erased_learners_ev_feedback_reads_erased_live_as_in_the_fold(centre: Centre) -> None:
    first, second = centre.assess()
    w = centre.world
    w.centre_cmd(c.SetRetentionPolicy(records_years=0))
    for pid in (first, second):
        centre.app.execute(w.centre_admin, c.WithdrawLearner(reason="left"), target=pid)
    centre.now()
    erase = c.EraseLearner(learner_id=w.learner.id, reason="Art. 17 request")
    erase_learner(centre.app, w.centre_admin, w.centre_id, erase)

    live = centre.now()

    same(live, centre.folded())
    assert [(s.feedback, s.actions) for s in live.ev_samples] == [(ERASED, (ERASED, ERASED))] * 2
    assert b"Lee Learner" not in msgspec.json.encode(live)
    assert FEEDBACK.encode() not in msgspec.json.encode(live)
