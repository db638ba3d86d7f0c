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
from domain.errors import (
    AlreadyErased,
    AlreadyExists,
    ConflictOfInterest,
    EvNotAllocated,
    NotFound,
    NotPermitted,
    UnknownCriterion,
)
from domain.spec import CriterionKind, ObservationRule, SpecCatalogue, UnitSpec


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


class RweApproval(msgspec.Struct, frozen=True, kw_only=True):
    """An approved realistic working environment; `unit_codes` empty: for every unit."""

    approval_id: UUID
    location: str
    unit_codes: tuple[str, ...] = ()

    def covers(self, unit_code: str) -> bool:
        return not self.unit_codes or unit_code in self.unit_codes


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
    #: every sufficiency policy by version: a certified portfolio keeps the one it was judged by
    sufficiency_policies: dict[int, e.SufficiencyPolicySet] = field(default_factory=dict)
    rwe_approvals: dict[UUID, RweApproval] = field(default_factory=dict)

    def apply(self, event: e.CentreEvent) -> None:  # noqa: PLR0912 - one case per event
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
                self.sufficiency_policies[event.policy_version] = event
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
            case e.RealisticEnvironmentApproved():
                self.rwe_approvals[event.approval_id] = RweApproval(
                    approval_id=event.approval_id,
                    location=event.location,
                    unit_codes=event.unit_codes,
                )

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

    def qualified_as(self, actor_id: UUID, actor_role: e.Role, role: e.Role, day: date) -> bool:
        """Whether the actor acts as a qualified `role` of this centre on `day`."""
        member = self.staff_with_role(actor_id, role)
        return (
            actor_role is role
            and member is not None
            and member.qualification_on(day) is e.Qualification.QUALIFIED
        )

    def is_staff(self, person_id: UUID) -> bool:
        return any(member.staff_id == person_id for member in self.staff.values())

    def policy_version(self, version: int) -> e.SufficiencyPolicySet | None:
        """The sufficiency policy of that version (0 or unknown: None, the built-in one)."""
        return self.sufficiency_policies.get(version)


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


def _not_an_ev_here(centre: CentreState, person_id: UUID, field: str) -> None:
    """An EV is independent of the centres allocated to them: never their staff or people."""
    if person_id in centre.evs:
        raise ConflictOfInterest(
            f"{person_id} is an external verifier allocated to this centre", field=field
        )


def register_staff(centre: CentreState, cmd: c.RegisterStaff, stamp: c.Stamp) -> e.StaffRegistered:
    require_centre_admin(centre, stamp.actor)
    _not_an_ev_here(centre, cmd.staff_id, "staff_id")
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
    _not_an_ev_here(centre, cmd.learner_id, "learner_id")
    if cmd.learner_id in centre.learners:
        raise AlreadyExists(f"learner {cmd.learner_id} is already registered", field="learner_id")
    if cmd.learner_id in centre.erased:
        raise AlreadyErased(f"learner {cmd.learner_id} was erased", field="learner_id")
    return e.LearnerRegistered(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def add_witness(centre: CentreState, cmd: c.AddWitness, stamp: c.Stamp) -> e.WitnessAdded:
    require_centre_admin(centre, stamp.actor)
    _not_an_ev_here(centre, cmd.witness_id, "witness_id")
    if cmd.witness_id in centre.witnesses:
        raise AlreadyExists(f"witness {cmd.witness_id} is already listed", field="witness_id")
    return e.WitnessAdded(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def allocate_ev(centre: CentreState, cmd: c.AllocateEv, stamp: c.Stamp) -> e.EvAllocated:
    if stamp.actor.role is not e.Role.ADMIN:
        raise NotPermitted("only the awarding body's administrator allocates an EV")
    if cmd.ev_id in centre.evs:
        raise AlreadyExists(f"EV {cmd.ev_id} is already allocated", field="ev_id")
    if centre.is_staff(cmd.ev_id) or cmd.ev_id in centre.learners or cmd.ev_id in centre.witnesses:
        raise ConflictOfInterest(
            "an external verifier is independent of the centres allocated to them: "
            f"{cmd.ev_id} is one of this centre's people",
            field="ev_id",
        )
    return e.EvAllocated(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def set_observed_criteria(
    centre: CentreState, spec: UnitSpec, cmd: c.SetObservedCriteria, stamp: c.Stamp
) -> e.ObservedCriteriaSet:
    require_centre_admin(centre, stamp.actor)
    if spec.observation_rule is ObservationRule.NAMED:
        raise NotPermitted(
            f"unit {spec.code} names its own must-observe criteria", field="unit_code"
        )
    for criterion_id in cmd.criteria:
        criterion = spec.criterion(criterion_id)
        if criterion is None or criterion.kind is not CriterionKind.PERFORMANCE:
            raise UnknownCriterion(
                f"{criterion_id} is not a performance criterion of {spec.code}", field="criteria"
            )
    return e.ObservedCriteriaSet(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def set_sufficiency_policy(
    centre: CentreState, specs: SpecCatalogue, cmd: c.SetSufficiencyPolicy, stamp: c.Stamp
) -> e.SufficiencyPolicySet:
    """A standardisation decision; refused if it names a unit or criterion that isn't one."""
    require_centre_admin(centre, stamp.actor)
    for n, unit in enumerate(cmd.per_unit):
        spec = specs.get(unit.unit_code)
        if spec is None:
            raise NotFound(f"no unit {unit.unit_code}", field=f"per_unit[{n}].unit_code")
        unknown = sorted(set(unit.per_criterion) - {x.id for x in spec.criteria})
        if unknown:
            raise UnknownCriterion(
                f"{', '.join(unknown)} not a criterion of unit {spec.code}",
                field=f"per_unit[{n}].per_criterion",
            )
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


def approve_realistic_environment(
    centre: CentreState, specs: SpecCatalogue, cmd: c.ApproveRealisticEnvironment, stamp: c.Stamp
) -> e.RealisticEnvironmentApproved:
    """The awarding body (its administrator or an EV allocated here) approves an RWE.

    A centre does not approve its own: that is what "approved" means in the unit texts.
    """
    actor = stamp.actor
    if actor.role is e.Role.EV and actor.id not in centre.evs:
        raise EvNotAllocated("only an EV allocated to this centre approves its environments")
    if actor.role not in (e.Role.ADMIN, e.Role.EV):
        raise NotPermitted("the awarding body (its administrator or the centre's EV) approves")
    if cmd.approval_id in centre.rwe_approvals:
        raise AlreadyExists(f"approval {cmd.approval_id} already exists", field="approval_id")
    for n, code in enumerate(cmd.unit_codes):
        if specs.get(code) is None:
            raise NotFound(f"no unit {code}", field=f"unit_codes[{n}]")
    return e.RealisticEnvironmentApproved(**cmd.event_fields(stamp), centre_id=centre.centre_id)
