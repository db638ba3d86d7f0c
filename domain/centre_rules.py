"""The centre stream's rules: one table, `RULES`, from command type to the rule deciding it.

A rule reads the centre as it stands — None before `RegisterCentre` opens the stream — with
what else it needs through `domain.reads.Reads`, and returns the event that records the
command or raises a `DomainError`. Retention's reading of a learner's records
(`domain.retention`) is shared by the erasure rule and the retention report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

from domain import commands as c
from domain import events as e
from domain.centre import CentreState, require_centre_admin
from domain.errors import (
    AlreadyErased,
    AlreadyExists,
    ConflictOfInterest,
    EvNotAllocated,
    LearnerErased,
    LegalHoldApplies,
    NotFound,
    NotPermitted,
    RetentionApplies,
    UnknownCriterion,
)
from domain.portfolio import PortfolioState
from domain.reads import Reads
from domain.retention import Retention, Status, retention_of
from domain.spec import CriterionKind, ObservationRule, SpecCatalogue, UnitSpec

CentreRule = Callable[[CentreState | None, Any, c.Stamp, Reads], e.CentreEvent]
"""Decides a command on the centre (None: not registered yet), reading others through Reads."""


def register_centre(
    centre: CentreState | None, cmd: c.RegisterCentre, stamp: c.Stamp, reads: Reads
) -> e.CentreRegistered:
    """Opens the stream: the only rule on an absent centre."""
    if centre is not None:
        raise AlreadyExists(f"{cmd.centre_id} already exists", field="centre_id")
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


def set_retention_policy(
    centre: CentreState, cmd: c.SetRetentionPolicy, stamp: c.Stamp
) -> e.RetentionPolicySet:
    require_centre_admin(centre, stamp.actor)
    current = centre.retention_policy
    version = 1 if current is None else current.policy_version + 1
    return e.RetentionPolicySet(
        **cmd.event_fields(stamp), centre_id=centre.centre_id, policy_version=version
    )


def place_legal_hold(
    centre: CentreState, cmd: c.PlaceLegalHold, stamp: c.Stamp
) -> e.LegalHoldPlaced:
    require_centre_admin(centre, stamp.actor)
    _registered(centre, cmd.learner_id)
    if cmd.hold_id in centre.holds:
        raise AlreadyExists(f"hold {cmd.hold_id} is already open", field="hold_id")
    return e.LegalHoldPlaced(**cmd.event_fields(stamp), centre_id=centre.centre_id)


def lift_legal_hold(centre: CentreState, cmd: c.LiftLegalHold, stamp: c.Stamp) -> e.LegalHoldLifted:
    require_centre_admin(centre, stamp.actor)
    hold = centre.holds.get(cmd.hold_id)
    if hold is None:
        raise NotFound(f"no open legal hold {cmd.hold_id}", field="hold_id")
    return e.LegalHoldLifted(
        **cmd.event_fields(stamp), centre_id=centre.centre_id, learner_id=hold.learner_id
    )


def erase_learner(
    centre: CentreState,
    portfolios: Sequence[PortfolioState],
    cmd: c.EraseLearner,
    stamp: c.Stamp,
    *,
    elsewhere: Sequence[CentreState] = (),
) -> e.SubjectErased:
    """Refused while the records must be kept; `portfolios` are all the learner's.

    Every centre holding the learner decides: `elsewhere` are the other centres that
    registered them, whose holds and retention periods refuse it just the same.
    """
    if stamp.actor.role is not e.Role.CENTRE_ADMIN:
        raise NotPermitted("only the learner's centre administrators erase their data")
    require_centre_admin(centre, stamp.actor)
    if cmd.learner_id not in centre.learners:
        raise NotFound(f"no learner {cmd.learner_id} at this centre", field="learner_id")
    today = stamp.recorded_at.date()
    retention = retention_of(centre, cmd.learner_id, portfolios, today)
    if retention.status is Status.ERASED:
        raise AlreadyErased(f"learner {cmd.learner_id} was {retention.why}", field="learner_id")
    _refuse_unless_due(retention, "")
    for other in elsewhere:
        held = retention_of(other, cmd.learner_id, portfolios, today)
        if held.status is not Status.ERASED:
            _refuse_unless_due(held, " at another centre holding this learner")
    return e.SubjectErased(
        **stamp.fields(cmd.effective_on),
        centre_id=centre.centre_id,
        subject_id=cmd.learner_id,
        subject_role=e.Role.LEARNER,
        reason=cmd.reason,
    )


def _refuse_unless_due(retention: Retention, where: str) -> None:
    if retention.status is Status.HELD:
        raise LegalHoldApplies(f"cannot erase{where}: {retention.why}", field="learner_id")
    if retention.status is not Status.DUE:
        raise RetentionApplies(f"cannot erase{where}: {retention.why}", field="learner_id")


def _registered(centre: CentreState, learner_id: UUID) -> None:
    if learner_id not in centre.learners:
        raise NotFound(f"no learner {learner_id} at this centre", field="learner_id")
    if learner_id in centre.erased:
        raise LearnerErased(f"learner {learner_id} was erased", field="learner_id")


def _on_centre(
    rule: Callable[[CentreState, Any, c.Stamp], e.CentreEvent],
) -> CentreRule:
    """A rule on a registered centre that reads nothing beyond it."""

    def decide(centre: CentreState | None, cmd: Any, stamp: c.Stamp, reads: Reads) -> e.CentreEvent:
        return rule(_registered_centre(centre), cmd, stamp)

    return decide


def _registered_centre(centre: CentreState | None) -> CentreState:
    if centre is None:
        raise NotFound("no such centre", field="centre_id")
    return centre


def _set_sufficiency_policy(
    centre: CentreState | None, cmd: c.SetSufficiencyPolicy, stamp: c.Stamp, reads: Reads
) -> e.SufficiencyPolicySet:
    return set_sufficiency_policy(_registered_centre(centre), reads.specs, cmd, stamp)


def _approve_realistic_environment(
    centre: CentreState | None, cmd: c.ApproveRealisticEnvironment, stamp: c.Stamp, reads: Reads
) -> e.RealisticEnvironmentApproved:
    return approve_realistic_environment(_registered_centre(centre), reads.specs, cmd, stamp)


def _set_observed_criteria(
    centre: CentreState | None, cmd: c.SetObservedCriteria, stamp: c.Stamp, reads: Reads
) -> e.ObservedCriteriaSet:
    registered = _registered_centre(centre)
    return set_observed_criteria(registered, reads.spec(cmd.unit_code), cmd, stamp)


def _erase_learner(
    centre: CentreState | None, cmd: c.EraseLearner, stamp: c.Stamp, reads: Reads
) -> e.SubjectErased:
    registered = _registered_centre(centre)
    return erase_learner(
        registered,
        reads.learner_portfolios(cmd.learner_id),
        cmd,
        stamp,
        elsewhere=reads.centres_holding(cmd.learner_id, besides=registered.centre_id),
    )


RULES: Mapping[type[c.Command], CentreRule] = {
    c.RegisterCentre: register_centre,
    c.RegisterStaff: _on_centre(register_staff),
    c.ChangeQualification: _on_centre(change_qualification),
    c.RegisterLearner: _on_centre(register_learner),
    c.AddWitness: _on_centre(add_witness),
    c.AllocateEv: _on_centre(allocate_ev),
    c.SetSufficiencyPolicy: _set_sufficiency_policy,
    c.ApproveRealisticEnvironment: _approve_realistic_environment,
    c.SetSamplingPlan: _on_centre(set_sampling_plan),
    c.SetObservedCriteria: _set_observed_criteria,
    c.SetRetentionPolicy: _on_centre(set_retention_policy),
    c.PlaceLegalHold: _on_centre(place_legal_hold),
    c.LiftLegalHold: _on_centre(lift_legal_hold),
    c.EraseLearner: _erase_learner,
}
