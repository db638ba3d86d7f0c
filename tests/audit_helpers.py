"""A centre with an audit trail: the service with EV samples checkpointed, on a store."""

from __future__ import annotations

from uuid import UUID, uuid4

from adapters.audit.merkle_index import MerkleIndex, open_merkle_index
from adapters.audit.signing import SigningKey
from adapters.bootstrap import build
from adapters.config import Config
from domain import commands as c
from domain.events import Outcome, SampleOutcome
from service.checkpoints import Checkpointer, with_checkpoints
from service.handlers import Eportfolio
from tests.world import World

KEY = SigningKey.generate("audit.example/log")


class Audited:
    """The audited service, its index and a small centre; close it when done."""

    def __init__(self, config: Config, key: SigningKey = KEY) -> None:
        app = build(config)
        self.index: MerkleIndex = open_merkle_index(config)
        self.checkpointer = Checkpointer(app.ledger, self.index, key)
        self.app: Eportfolio = with_checkpoints(app, self.checkpointer)
        self.ledger = app.ledger
        self.key = key
        self.world = World(self.app)
        self.portfolios: list[UUID] = []
        self.decisions: list[UUID] = []

    def assess(self, portfolios: int = 2) -> None:
        """Each portfolio: evidence, an observation, a decision (with an idempotency key)."""
        world = self.world
        for _ in range(portfolios):
            pid = world.enrol("000")
            evidence = world.submit(pid)
            observed = world.observe(pid, ("PC3", "PC4"))
            decision = uuid4()
            self.app.execute(
                world.assessor,
                c.RecordDecision(
                    decision_id=decision,
                    outcome=Outcome.MET,
                    criteria=("PC3", "PC4"),
                    evidence_ids=(evidence, observed),
                ),
                target=pid,
                idempotency_key=f"decide-{decision}",
            )
            self.portfolios.append(pid)
            self.decisions.append(decision)

    def ev_sample(self, pid: UUID, decision: UUID) -> int:
        """Record an EV sample; returns its position in the log."""
        cmd = c.RecordEvSample(
            sample_id=uuid4(), decision_ids=(decision,), outcome=SampleOutcome.AGREED
        )
        return self.app.execute(self.world.ev, cmd, target=pid).position

    def close(self) -> None:
        self.index.close()
        self.ledger.close()
