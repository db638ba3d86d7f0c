"""The centre: its staff, learners, witness list, EV allocations and standardisation decisions.

`CentreState` is a fold over the centre's own stream; the rules that decide its commands
are `domain.centre_rules`.
"""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import ClassVar
from uuid import UUID

import msgspec

from domain import commands as c
from domain import events as e
from domain.errors import (
    NotPermitted,
)


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
    #: Forked, so folded no further (`apply` refuses); in the instance's __dict__, not a
    #: field: not compared, encoded or stored.
    _frozen: ClassVar[bool] = False

    def fork(self) -> CentreState:
        """A copy to fold on from; this state is folded no further and reads the same.

        Writes and access checks hold each centre's fold and fold only the events since
        on a fork. `apply` replaces a staff member it changes, never changes one in place,
        and every other value is immutable: copying the maps is the whole copy, far less
        than the fold from the first event it saves.
        """
        twin = copy(self)
        for name in _MAPS:
            setattr(twin, name, dict(getattr(self, name)))
        twin.__dict__["_frozen"] = False
        self.__dict__["_frozen"] = True
        return twin

    @property
    def forked(self) -> bool:
        """Forked, so folded no further: it reads the same from now on."""
        return self._frozen

    def apply(self, event: e.CentreEvent) -> None:  # noqa: PLR0912 - one case per event
        """Fold one event. Values are replaced, never changed in place (see `fork`)."""
        if self._frozen:
            msg = "this centre state was forked: fold its fork on instead"
            raise RuntimeError(msg)
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
                member = self.staff[event.staff_id, event.role]
                self.staff[event.staff_id, event.role] = replace(
                    member,
                    qualifications=[
                        *member.qualifications,
                        (event.effective_on, event.qualification),
                    ],
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
        for key, member in list(self.staff.items()):
            if member.staff_id == subject_id:
                self.staff[key] = replace(member, name=e.ERASED)

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


#: The maps a fork copies: every field of CentreState that is not immutable.
_MAPS = tuple(f.name for f in fields(CentreState) if f.default_factory is dict)


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
