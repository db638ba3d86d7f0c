"""Random portfolio histories for property tests: each action played as far as the rules
allow it (a refused command simply leaves the history without it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID, uuid4

from domain import commands as c
from domain.errors import DomainError
from domain.events import Outcome, SampleOutcome, SampleStage
from tests.world import World

CRITERIA = (("PC3", "PC4"), ("PC5",), ("PC6", "PC7", "a"), ("PC1", "b"))
PORTFOLIO_ACTIONS = (
    *("observe", "submit", "map", "withdraw", "decide"),
    *("countersign", "revoke", "sample", "respond"),
)


@dataclass
class History:
    """One portfolio's history as it is played: what the later actions can refer to."""

    world: World
    portfolio_id: UUID
    assessor: c.Actor  # records, maps, decides; a qualified assessor countersigns
    evidence: list[UUID] = field(default_factory=list)
    observed: list[tuple[UUID, tuple[str, ...]]] = field(default_factory=list)
    decisions: list[UUID] = field(default_factory=list)
    samples: list[UUID] = field(default_factory=list)

    def run(self, by: c.Actor, command: c.Command, target: UUID | None = None) -> bool:
        """The command if the rules allow it; False if they refuse it."""
        try:
            self.world.app.execute(by, command, target=target or self.portfolio_id)
        except DomainError:
            return False
        return True

    def play(self, action: str, n: int) -> None:
        """One of PORTFOLIO_ACTIONS, its criteria and targets picked by `n`."""
        world, pid, assessor = self.world, self.portfolio_id, self.assessor
        criteria = CRITERIA[n % len(CRITERIA)]
        pick = self.evidence[n % len(self.evidence)] if self.evidence else uuid4()
        decision = self.decisions[n % len(self.decisions)] if self.decisions else uuid4()
        if action == "observe":
            self.evidence.append(world.observe(pid, criteria, by=assessor))
            self.observed.append((self.evidence[-1], criteria))
        elif action == "submit":
            self.evidence.append(world.submit(pid))
        elif action == "map":
            self.run(assessor, c.MapEvidence(evidence_id=pick, criteria=criteria))
        elif action == "withdraw":
            self.run(assessor, c.WithdrawEvidence(evidence_id=pick, reason="Wrong customer"))
        elif action == "decide" and self.observed:
            basis, decided = self.observed[n % len(self.observed)]
            made = c.RecordDecision(
                decision_id=uuid4(), outcome=Outcome.MET, criteria=decided, evidence_ids=(basis,)
            )
            if self.run(assessor, made):
                self.decisions.append(made.decision_id)
        elif action == "countersign":
            self.run(world.assessor, c.Countersign(decision_id=decision))
        elif action == "revoke":
            self.run(assessor, c.RevokeDecision(decision_id=decision, reason="Re-assess"))
        elif action == "sample":
            sample = c.RecordIqaSample(
                sample_id=uuid4(),
                stage=SampleStage.INTERIM,
                decision_ids=(decision,),
                outcome=SampleOutcome.REFERRED,
            )
            if self.run(world.iqa, sample):
                self.samples.append(sample.sample_id)
        elif action == "respond" and self.samples:
            self.run(
                assessor, c.RespondToSample(sample_id=self.samples[-1], response="Re-observed")
            )
