"""Centres: registration, people (staff and learners get a token, shown once), policies, audit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter

from adapters.http.dependencies import Services
from adapters.http.params import AsKnownAt, aware, int_range
from adapters.http.problems import READ, WRITE, responses
from adapters.http.request_bodies import (
    EvAllocation,
    NewCentre,
    NewLearner,
    NewStaff,
    NewWitness,
    ObservedCriteria,
    QualificationChange,
    RweApproval,
    SamplingPlan,
    SufficiencyPolicy,
    to_command,
)
from adapters.http.response_bodies import CentreView, PersonCreated, Written
from adapters.http.writes import ServicesDep, Writer, WriterDep
from domain import commands as c
from domain.events import Role
from service.queries import AuditPage


class CentresController(Controller):
    path = "/centres"
    tags = ["centres"]

    @post("/", operation_id="create_centre", responses=responses(*WRITE), sync_to_thread=True)
    def create_centre(self, data: JSONBody[NewCentre], writer: WriterDep) -> Written:
        centre_id = writer.new_id(data.centre_id, "centre")
        command = to_command(data, c.RegisterCentre, centre_id=centre_id)
        return writer.run(command, created=centre_id)

    @get(
        "/{centre_id:uuid}",
        operation_id="get_centre",
        responses=responses(*READ),
        sync_to_thread=True,
    )
    def get_centre(self, centre_id: FromPath[UUID], services: ServicesDep) -> CentreView:
        return CentreView.of(services.app.centre(centre_id), datetime.now(UTC).date())

    @post(
        "/{centre_id:uuid}/staff",
        operation_id="register_staff",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def register_staff(
        self,
        centre_id: FromPath[UUID],
        data: JSONBody[NewStaff],
        writer: WriterDep,
        services: ServicesDep,
    ) -> PersonCreated:
        staff_id = writer.new_id(data.staff_id, "staff")
        command = to_command(data, c.RegisterStaff, staff_id=staff_id)
        return _with_token(
            writer, services, command, centre_id=centre_id, person_id=staff_id, role=Role(data.role)
        )

    @put(
        "/{centre_id:uuid}/staff/{staff_id:uuid}/qualification",
        operation_id="change_qualification",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def change_qualification(
        self,
        centre_id: FromPath[UUID],
        staff_id: FromPath[UUID],
        data: JSONBody[QualificationChange],
        writer: WriterDep,
    ) -> Written:
        """Record that a member of staff qualified (or is a trainee again) in a role.

        Decisions already made keep the status their author had when making them.
        """
        command = to_command(data, c.ChangeQualification, staff_id=staff_id)
        return writer.run(command, target=centre_id)

    @post(
        "/{centre_id:uuid}/learners",
        operation_id="register_learner",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def register_learner(
        self,
        centre_id: FromPath[UUID],
        data: JSONBody[NewLearner],
        writer: WriterDep,
        services: ServicesDep,
    ) -> PersonCreated:
        learner_id = writer.new_id(data.learner_id, "learner")
        command = to_command(data, c.RegisterLearner, learner_id=learner_id)
        return _with_token(
            writer, services, command, centre_id=centre_id, person_id=learner_id, role=Role.LEARNER
        )

    @post(
        "/{centre_id:uuid}/witnesses",
        operation_id="add_witness",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def add_witness(
        self, centre_id: FromPath[UUID], data: JSONBody[NewWitness], writer: WriterDep
    ) -> Written:
        witness_id = writer.new_id(data.witness_id, "witness")
        command = to_command(data, c.AddWitness, witness_id=witness_id)
        return writer.run(command, target=centre_id, created=witness_id)

    @post(
        "/{centre_id:uuid}/ev-allocations",
        operation_id="allocate_ev",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def allocate_ev(
        self,
        centre_id: FromPath[UUID],
        data: JSONBody[EvAllocation],
        writer: WriterDep,
        services: ServicesDep,
    ) -> PersonCreated:
        """Allocate an EV; a new EV (no ev_id given) gets a token, valid wherever allocated."""
        ev_id = writer.new_id(data.ev_id, "ev")
        command = to_command(data, c.AllocateEv, ev_id=ev_id)
        if data.ev_id is not None:
            written = writer.run(command, target=centre_id, created=ev_id)
            return PersonCreated(**msgspec.structs.asdict(written))
        return _with_token(
            writer,
            services,
            command,
            centre_id=None,
            person_id=ev_id,
            role=Role.EV,
            target=centre_id,
        )

    @put(
        "/{centre_id:uuid}/sufficiency-policy",
        operation_id="set_sufficiency_policy",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def set_sufficiency_policy(
        self, centre_id: FromPath[UUID], data: JSONBody[SufficiencyPolicy], writer: WriterDep
    ) -> Written:
        return writer.run(to_command(data, c.SetSufficiencyPolicy), target=centre_id)

    @post(
        "/{centre_id:uuid}/rwe-approvals",
        operation_id="approve_realistic_environment",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def approve_realistic_environment(
        self, centre_id: FromPath[UUID], data: JSONBody[RweApproval], writer: WriterDep
    ) -> Written:
        """The awarding body (its administrator, or the centre's EV) approves a realistic
        working environment, for units that accept only an approved one."""
        approval_id = writer.new_id(data.approval_id, "rwe-approval")
        command = to_command(data, c.ApproveRealisticEnvironment, approval_id=approval_id)
        return writer.run(command, target=centre_id, created=approval_id)

    @put(
        "/{centre_id:uuid}/sampling-plan",
        operation_id="set_sampling_plan",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def set_sampling_plan(
        self, centre_id: FromPath[UUID], data: JSONBody[SamplingPlan], writer: WriterDep
    ) -> Written:
        return writer.run(to_command(data, c.SetSamplingPlan), target=centre_id)

    @put(
        "/{centre_id:uuid}/observed-criteria/{unit_code:str}",
        operation_id="set_observed_criteria",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def set_observed_criteria(
        self,
        centre_id: FromPath[UUID],
        unit_code: Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9-]{1,32}$")],
        data: JSONBody[ObservedCriteria],
        writer: WriterDep,
    ) -> Written:
        """Circle the criteria that must be observed, for a unit that leaves it to the centre."""
        code: c.UnitCode = unit_code
        command = to_command(data, c.SetObservedCriteria, unit_code=code)
        return writer.run(command, target=centre_id)

    @get(
        "/{centre_id:uuid}/audit",
        operation_id="get_audit",
        responses=responses(*READ),
        sync_to_thread=True,
    )
    def get_audit(
        self,
        centre_id: FromPath[UUID],
        services: ServicesDep,
        *,
        as_known_at: AsKnownAt = None,
        after: Annotated[int, int_range(0, description="The page's cursor: next_after")] = 0,
        limit: Annotated[int, int_range(1, 500)] = 100,
        event_type: Annotated[str | None, QueryParameter(max_length=200)] = None,
        portfolio_id: FromQuery[UUID | None] = None,
        person_id: Annotated[
            UUID | None, QueryParameter(description="Only events by or about this person")
        ] = None,
    ) -> AuditPage:
        """The EV audit view: a page of the trail, decision chains and sampling, as known then."""
        return services.queries.audit(
            centre_id,
            as_known_at=aware(as_known_at, "as_known_at"),
            after=after,
            limit=limit,
            event_type=event_type,
            portfolio_id=portfolio_id,
            person_id=person_id,
        )


def _with_token(
    writer: Writer,
    services: Services,
    command: c.Command,
    *,
    centre_id: UUID | None,
    person_id: UUID,
    role: Role,
    target: UUID | None = None,
) -> PersonCreated:
    """Register someone and hand back their token: issued first, discarded if the write fails.

    Until the person's event exists the token reaches nothing (scopes check the centre's
    records), and on any error it is deleted, so no failure leaves a live credential.
    """
    record, secret = services.tokens.issue(
        subject_id=person_id, role=role, centre_id=centre_id, label="issued on registration"
    )
    try:
        written = writer.run(command, target=target or centre_id, created=person_id)
    except BaseException:
        services.tokens.discard(record.token_id)
        raise
    if written.replayed:
        services.tokens.discard(record.token_id)
        return PersonCreated(**msgspec.structs.asdict(written))
    return PersonCreated(**msgspec.structs.asdict(written), token=secret)
