"""The centre: its staff, learners, witness list, EV allocations and standardisation decisions.

`CentreState` is a fold over the centre's own stream; the functions below decide whether a
command is accepted and return the event that records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

import msgspec

from domain import commands as c
from domain import events as e
from domain.errors import AlreadyErased, AlreadyExists, NotFound, NotPermitted, UnknownCriterion
from domain.spec import ObservationRule, UnitSpec


@dataclass
class StaffMember:
    staff_id: UUID
    name: str
    role: e.Role
    #: (effective date, status) in recorded order; the status on a day is the last one
    #: effective by then.
    qualifications: list[tuple[date, e.Qualification]]

    def qualification_on(self, day: date) -> e.Qualification | None:
        effective = [q for when, q in self.qualifications if when <= day]
        return effective[-1] if effective else None


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """An open legal hold: the learner's records may not be erased until it is lifted."""

    hold_id: UUID
    learner_id: UUID
    reason: e.HoldReason
    placed_on: date


@dataclass
class CentreState:
    centre_id: UUID
    name: str
    version: int = 0
    #: keyed by (person, role): one person may be, say, both assessor and IQA
    staff: dict[tuple[UUID, e.Role], StaffMember] = field(default_factory=dict)
    learners: dict[UUID, str] = field(default_factory=dict)
    witnesses: dict[UUID, str] = field(default_factory=dict)
    evs: dict[UUID, str] = field(default_factory=dict)
    observed_criteria: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sufficiency_policy: e.SufficiencyPolicySet | None = None
    sampling_plan: e.SamplingPlanSet | None = None
    retention_policy: e.RetentionPolicySet | None = None
    holds: dict[UUID, Hold] = field(default_factory=dict)  # open ones only
    erased: dict[UUID, date] = field(default_factory=dict)  # subject -> erased on

    def apply(self, event: e.CentreEvent) -> None:
        self.version += 1
        match event:
            case e.StaffRegistered():
                self.staff[event.staff_id, event.role] = StaffMember(
                    event.staff_id,
                    event.name,
                    event.role,
                    [(event.effective_on, event.qualification)],
                )
            case e.StaffQualificationChanged():
                self.staff[event.staff_id, event.role].qualifications.append(
                    (event.effective_on, event.qualification)
                )
            case e.LearnerRegistered():
                self.learners[event.learner_id] = event.name
            case e.WitnessAdded():
                self.witnesses[event.witness_id] = event.name
            case e.EvAllocated():
                self.evs[event.ev_id] = event.name
            case e.ObservedCriteriaSet():
                self.observed_criteria[event.unit_code] = event.criteria
            case e.SufficiencyPolicySet():
                self.sufficiency_policy = event
            case e.SamplingPlanSet():
                self.sampling_plan = event
            case e.RetentionPolicySet():
                self.retention_policy = event
            case e.LegalHoldPlaced():
                self.holds[event.hold_id] = Hold(
                    hold_id=event.hold_id,
                    learner_id=event.learner_id,
                    reason=event.reason,
                    placed_on=event.effective_on,
                )
            case e.LegalHoldLifted():
                self.holds.pop(event.hold_id, None)
            case e.SubjectErased():
                self._erase(event.subject_id, event.effective_on)

    def _erase(self, subject_id: UUID, on: date) -> None:
        """Names read as ERASED from now on, as they would when decoded without the key."""
        self.erased[subject_id] = on
        for names in (self.learners, self.witnesses, self.evs):
            if subject_id in names:
                names[subject_id] = e.ERASED
        for member in self.staff.values():
            if member.staff_id == subject_id:
                member.name = e.ERASED

    def staff_with_role(self, staff_id: UUID, role: e.Role) -> StaffMember | None:
        return self.staff.get((staff_id, role))


def fold_centre(events: list[e.CentreEvent]) -> CentreState | None:
    """Rebuild a centre from its stream; None if it was never registered."""
    if not events or not isinstance(events[0], e.CentreRegistered):
        return None
    first = events[0]
    state = CentreState(centre_id=first.centre_id, name=first.name, version=1)
    for event in events[1:]:
        state.apply(event)
    return state


def require_centre_admin(centre: CentreState, actor: c.Actor) -> None:
    if actor.role is e.Role.ADMIN:
        return
    if centre.staff_with_role(actor.id, e.Role.CENTRE_ADMIN) is None:
        raise NotPermitted("only the centre's administrators may change its records")


def register_centre(cmd: c.RegisterCentre, stamp: c.Stamp) -> e.CentreRegistered:
    if stamp.actor.role is not e.Role.ADMIN:
        raise NotPermitted("only an administrator registers centres")
    return e.CentreRegistered(
        **stamp.fields(cmd.effective_on), centre_id=cmd.centre_id, name=cmd.name
    )


def register_staff(centre: CentreState, cmd: c.RegisterStaff, stamp: c.Stamp) -> e.StaffRegistered:
    require_centre_admin(centre, stamp.actor)
    if cmd.role not in (e.Role.CENTRE_ADMIN, e.Role.ASSESSOR, e.Role.IQA):
        raise NotPermitted(
            f"centre staff are centre admins, assessors or IQAs, not {cmd.role}", field="role"
        )
    if (cmd.staff_id, cmd.role) in centre.staff:
        raise AlreadyExists(f"{cmd.staff_id} is already registered as {cmd.role}", field="staff_id")
    return e.StaffRegistered(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def change_qualification(
    centre: CentreState, cmd: c.ChangeQualification, stamp: c.Stamp
) -> e.StaffQualificationChanged:
    require_centre_admin(centre, stamp.actor)
    if (cmd.staff_id, cmd.role) not in centre.staff:
        raise NotFound(f"no {cmd.role} {cmd.staff_id} at this centre", field="staff_id")
    return e.StaffQualificationChanged(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def register_learner(
    centre: CentreState, cmd: c.RegisterLearner, stamp: c.Stamp
) -> e.LearnerRegistered:
    require_centre_admin(centre, stamp.actor)
    if cmd.learner_id in centre.learners:
        raise AlreadyExists(f"learner {cmd.learner_id} is already registered", field="learner_id")
    if cmd.learner_id in centre.erased:
        raise AlreadyErased(f"learner {cmd.learner_id} was erased", field="learner_id")
    return e.LearnerRegistered(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def add_witness(centre: CentreState, cmd: c.AddWitness, stamp: c.Stamp) -> e.WitnessAdded:
    require_centre_admin(centre, stamp.actor)
    if cmd.witness_id in centre.witnesses:
        raise AlreadyExists(f"witness {cmd.witness_id} is already listed", field="witness_id")
    return e.WitnessAdded(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def allocate_ev(centre: CentreState, cmd: c.AllocateEv, stamp: c.Stamp) -> e.EvAllocated:
    if stamp.actor.role is not e.Role.ADMIN:
        raise NotPermitted("only the awarding body's administrator allocates an EV")
    if cmd.ev_id in centre.evs:
        raise AlreadyExists(f"EV {cmd.ev_id} is already allocated", field="ev_id")
    return e.EvAllocated(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def set_observed_criteria(
    centre: CentreState, spec: UnitSpec, cmd: c.SetObservedCriteria, stamp: c.Stamp
) -> e.ObservedCriteriaSet:
    require_centre_admin(centre, stamp.actor)
    if spec.observation_rule is not ObservationRule.CENTRE_SETS:
        raise NotPermitted(
            f"unit {spec.code} names its own must-observe criteria", field="unit_code"
        )
    for criterion_id in cmd.criteria:
        criterion = spec.criterion(criterion_id)
        if criterion is None or criterion.kind != "performance":
            raise UnknownCriterion(
                f"{criterion_id} is not a performance criterion of {spec.code}", field="criteria"
            )
    return e.ObservedCriteriaSet(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def set_sufficiency_policy(
    centre: CentreState, cmd: c.SetSufficiencyPolicy, stamp: c.Stamp
) -> e.SufficiencyPolicySet:
    require_centre_admin(centre, stamp.actor)
    current = centre.sufficiency_policy
    version = 1 if current is None else current.policy_version + 1
    return e.SufficiencyPolicySet(
        **cmd.event_fields(stamp), centre_id=centre.centre_id, policy_version=version
    )


def set_sampling_plan(
    centre: CentreState, cmd: c.SetSamplingPlan, stamp: c.Stamp
) -> e.SamplingPlanSet:
    if stamp.actor.role is not e.Role.IQA and stamp.actor.role is not e.Role.ADMIN:
        require_centre_admin(centre, stamp.actor)
    elif (
        stamp.actor.role is e.Role.IQA
        and centre.staff_with_role(stamp.actor.id, e.Role.IQA) is None
    ):
        raise NotPermitted("only this centre's IQA or administrators set its sampling plan")
    current = centre.sampling_plan
    version = 1 if current is None else current.plan_version + 1
    return e.SamplingPlanSet(
        **cmd.event_fields(stamp), centre_id=centre.centre_id, plan_version=version
    )
