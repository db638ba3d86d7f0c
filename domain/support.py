"""What a piece of evidence can show: the unit texts' rules, in one place.

The write rules (may this be mapped, may a decision rest on it) and the coverage report
(is this criterion really met) ask the same questions, so they ask them here:

- **Environment.** Evidence for performance — criteria, range items and evidence
  requirements alike — must come from real work, a realistic working environment or a work
  placement only where the unit allows them (an *approved* RWE only with the centre's
  approval on record), and never from a simulation.
- **Method.** Knowledge is shown by questioning, professional discussion or written work
  (a work product of written answers, or "other" evidence that says why it counts); it is
  inferred from observed performance or a product of work only where the statement is
  about how to do something. Witness testimony never shows knowledge. A range item is
  covered by observation or the other methods its rule names.
- **Observation.** A must-observe criterion needs the assessor's own observation of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from domain.centre import RweApproval
from domain.events import Environment
from domain.portfolio import EvidenceItem
from domain.spec import CriterionKind, Method, ObservationRule, RweRule, UnitSpec

#: Methods that show knowledge directly (WP and Oth only as written or explained work).
DIRECT_KNOWLEDGE = frozenset({Method.QUESTIONING, Method.PROFESSIONAL_DISCUSSION})
#: What knowledge may be inferred from: observed performance, products of work.
INFERENCE = frozenset({Method.OBSERVATION, Method.WORK_PRODUCT})


def label(cid: str) -> str:
    """How an assessor names an id: "PC3", "K1", "AC 1.1"."""
    return f"AC {cid}" if cid[:1].isdigit() else cid


class Support:
    """The rules of one unit, at one centre: its circled criteria and approved RWEs."""

    def __init__(
        self,
        spec: UnitSpec,
        centre_observed: Iterable[str] = (),
        approvals: Mapping[UUID, RweApproval] | None = None,
    ) -> None:
        self.spec = spec
        self.performance = spec.performance_ids()
        self.knowledge = {c.id: c for c in spec.criteria if c.kind is CriterionKind.KNOWLEDGE}
        self.range_ids = {i.id for i in spec.range.items} if spec.range else set()
        self.range_methods = {Method.OBSERVATION, *(spec.range.other_methods if spec.range else ())}
        circled = (
            set(centre_observed) if spec.observation_rule is not ObservationRule.NAMED else set()
        )
        self.must = {c.id for c in spec.criteria if c.must_observe} | circled
        self.approvals = approvals or {}

    # ---- environment ----------------------------------------------------------------

    def environment_problem(self, item: EvidenceItem) -> str | None:
        """Why evidence from where `item` was produced is not performance evidence, or None."""
        rule, env = self.spec.environment, item.environment
        unit = f"unit {self.spec.code}"
        if env is Environment.SIMULATION and not rule.simulation_allowed_for_performance:
            return "simulated evidence is never performance evidence"
        if env is Environment.WORK_PLACEMENT and not rule.work_placement_allowed:
            return f"{unit} does not accept evidence from a work placement"
        if env is Environment.REALISTIC_WORKING_ENVIRONMENT:
            rwe = rule.realistic_working_environment
            if rwe is RweRule.FORBIDDEN:
                return f"{unit} does not accept evidence from a realistic working environment"
            if rwe is RweRule.APPROVED_ONLY and not self._approved(item.rwe_approval_id):
                return (
                    f"{unit} accepts a realistic working environment only where it is approved: "
                    "name the centre's approval (rwe_approval_id)"
                )
        return None

    def _approved(self, approval_id: UUID | None) -> bool:
        approval = self.approvals.get(approval_id) if approval_id is not None else None
        return approval is not None and approval.covers(self.spec.code)

    # ---- method -----------------------------------------------------------------------

    def method_problem(self, item: EvidenceItem, cid: str) -> str | None:
        """Why `item`, by its method, cannot show `cid` (mapped or not), or None."""
        if cid in self.knowledge:
            return self._knowledge_problem(item, cid)
        if cid in self.range_ids and item.method not in self.range_methods:
            names = _join((m.label for m in Method if m in self.range_methods), "or")
            return f"range item ({cid}) is covered by {names}, not {item.method.label}"
        return None

    def _knowledge_problem(self, item: EvidenceItem, cid: str) -> str | None:
        if self.shows_directly(item):
            return None
        if item.method in INFERENCE and self.knowledge[cid].inferable:
            return None
        if item.method is Method.WITNESS_TESTIMONY:
            return f"witness testimony never shows knowledge ({label(cid)})"
        if item.method is Method.OTHER:
            return f"'other' evidence shows {label(cid)} only when it says why (other_reason)"
        return (
            f"{label(cid)} cannot be inferred from {item.method.label}: it needs questioning, "
            "professional discussion or written work"
        )

    @staticmethod
    def shows_directly(item: EvidenceItem) -> bool:
        """Knowledge shown without inference: asked, discussed, or written and explained."""
        if item.method in DIRECT_KNOWLEDGE:
            return True
        if item.method is Method.WORK_PRODUCT:
            return item.written_answers
        return item.method is Method.OTHER and item.other_reason

    # ---- together -----------------------------------------------------------------------

    def problem(self, item: EvidenceItem, cid: str) -> str | None:
        """Why `item` cannot count for `cid` — its method, or where it was produced — or None.

        Where it was produced matters for performance evidence, and for knowledge inferred
        from performance (a simulation shows no performance to infer from).
        """
        if (method := self.method_problem(item, cid)) is not None:
            return method
        if cid in self.performance or self.inferring(item, cid):
            return self.environment_problem(item)
        return None

    def inferring(self, item: EvidenceItem, cid: str) -> bool:
        """Knowledge read from performance or a product of work rather than shown directly."""
        return cid in self.knowledge and not self.shows_directly(item)

    def shows(self, item: EvidenceItem, cid: str) -> bool:
        """Live, mapped (or, for requirements, tagged) and able to count for `cid`."""
        return not item.withdrawn and item.evidences(cid) and self.problem(item, cid) is None

    def observes(self, item: EvidenceItem, cid: str) -> bool:
        """The assessor's own observation of `cid`, from an environment that counts."""
        return item.assessor_observed and self.shows(item, cid)

    def inferred(self, item: EvidenceItem, cid: str) -> bool:
        return self.inferring(item, cid) and self.shows(item, cid)


def _join(words: Iterable[str], conjunction: str) -> str:
    """ "a", "a and b", "a, b and c"."""
    listed = list(words)
    return f" {conjunction} ".join(filter(None, [", ".join(listed[:-1]), *listed[-1:]]))
