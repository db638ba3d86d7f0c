"""A centre as the state view stores it (kind "centre"), and back again.

`CentreState` keys staff by (person, role), which JSON cannot hold as a key: the snapshot
lists staff in registration order instead, and `state()` rebuilds the domain state with
its lookups.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

import msgspec

from domain import events as e
from domain.centre import CentreState, Hold, RweApproval, StaffMember


class StaffSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    staff_id: UUID
    role: e.Role
    name: str
    qualifications: tuple[tuple[date, e.Qualification], ...]


class CentreSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A centre as stored: `CentreState` with staff as a list, since JSON keys can't be tuples."""

    centre_id: UUID
    name: str
    version: int
    staff: tuple[StaffSnapshot, ...] = ()  # in registration order
    learners: dict[UUID, str] = {}
    witnesses: dict[UUID, str] = {}
    evs: dict[UUID, str] = {}
    observed_criteria: dict[str, tuple[str, ...]] = {}
    sufficiency_policy: e.SufficiencyPolicySet | None = None
    sampling_plan: e.SamplingPlanSet | None = None
    retention_policy: e.RetentionPolicySet | None = None
    holds: dict[UUID, Hold] = {}
    erased: dict[UUID, date] = {}
    sufficiency_policies: dict[int, e.SufficiencyPolicySet] = {}
    rwe_approvals: dict[UUID, RweApproval] = {}

    @classmethod
    def of(cls, centre: CentreState) -> CentreSnapshot:
        return cls(
            centre_id=centre.centre_id,
            name=centre.name,
            version=centre.version,
            staff=tuple(
                StaffSnapshot(
                    staff_id=m.staff_id,
                    role=m.role,
                    name=m.name,
                    qualifications=tuple(m.qualifications),
                )
                for m in centre.staff.values()
            ),
            learners=dict(centre.learners),
            witnesses=dict(centre.witnesses),
            evs=dict(centre.evs),
            observed_criteria=dict(centre.observed_criteria),
            sufficiency_policy=centre.sufficiency_policy,
            sampling_plan=centre.sampling_plan,
            retention_policy=centre.retention_policy,
            holds=dict(centre.holds),
            erased=dict(centre.erased),
            sufficiency_policies=dict(centre.sufficiency_policies),
            rwe_approvals=dict(centre.rwe_approvals),
        )

    def state(self) -> CentreState:
        """The domain state again, with its lookups (`staff_with_role`, `qualification_on`)."""
        return CentreState(
            centre_id=self.centre_id,
            name=self.name,
            version=self.version,
            staff={
                (m.staff_id, m.role): StaffMember(m.staff_id, m.name, m.role, [*m.qualifications])
                for m in self.staff
            },
            learners=dict(self.learners),
            witnesses=dict(self.witnesses),
            evs=dict(self.evs),
            observed_criteria=dict(self.observed_criteria),
            sufficiency_policy=self.sufficiency_policy,
            sampling_plan=self.sampling_plan,
            retention_policy=self.retention_policy,
            holds=dict(self.holds),
            erased=dict(self.erased),
            sufficiency_policies=dict(self.sufficiency_policies),
            rwe_approvals=dict(self.rwe_approvals),
        )
