"""What a rule may read beyond the stream it decides on; the service answers from the ledger.

Rules stay pure functions of what they are given: the few that look past their own stream
(an enrolment reads its centre, an erasure every portfolio of the learner) ask this port,
never the store, so the domain knows nothing of how or where anything is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from domain.centre import CentreState
from domain.portfolio import PortfolioState
from domain.spec import SpecCatalogue, UnitSpec


class Reads(Protocol):
    """Reads of other streams and of the unit catalogue, personal fields left sealed."""

    @property
    def specs(self) -> SpecCatalogue: ...

    def spec(self, unit_code: str) -> UnitSpec:
        """The current spec of a unit; NotFound (field `unit_code`) if there is none."""
        ...

    def centre(self, centre_id: UUID) -> CentreState:
        """A centre as the rules see it; NotFound (field `centre_id`) if there is none."""
        ...

    def learner_portfolios(self, learner_id: UUID) -> Sequence[PortfolioState]:
        """Every portfolio of a learner, at every centre."""
        ...

    def centres_holding(self, learner_id: UUID, *, besides: UUID) -> Sequence[CentreState]:
        """The other centres that registered this learner (stores from before id claims)."""
        ...
