"""What every desk page is rendered with: who is signed in, the moment shown, the forms'
CSRF token, and which links the policy table offers this role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request
from litestar.response import Template

from adapters.audit.pack.pack import moment
from adapters.http.auth import Principal
from adapters.http.dependencies import Services
from adapters.http.policy import Grant, may
from adapters.http.ui.session import Session
from domain.events import EvAllocated, Role
from projections.phrasing import role_name


@dataclass(frozen=True)
class Moment:
    """The two clocks of time travel, as the page was asked for them."""

    as_known_at: datetime | None = None
    effective_at: date | None = None

    @property
    def now(self) -> bool:
        return self.as_known_at is None and self.effective_at is None

    def query(self, **extra: object) -> str:
        """`?as_known_at=…&effective_at=…` plus `extra`, for links that keep the moment."""
        values: dict[str, str] = {}
        if self.as_known_at is not None:
            values["as_known_at"] = self.as_known_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.effective_at is not None:
            values["effective_at"] = self.effective_at.isoformat()
        values |= {k: str(v) for k, v in extra.items() if v is not None and v != ""}
        return "?" + urlencode(values) if values else ""

    @property
    def known_input(self) -> str:
        """The `datetime-local` field's value (UTC)."""
        at = self.as_known_at
        return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if at else ""

    @property
    def words(self) -> str:
        return moment(self.as_known_at, self.effective_at)


def who_is(services: Services, principal: Principal) -> str:
    """The signed-in person's name and role, for the page header."""
    role = role_name(principal.role)
    name = None
    if principal.centre_id is not None:
        centre = services.app.centre(principal.centre_id)
        if principal.role is Role.LEARNER:
            name = centre.learners.get(principal.subject_id)
        else:
            member = centre.staff_with_role(principal.subject_id, principal.role)
            name = member.name if member else None
    elif principal.role is Role.EV:
        name = next(
            (
                a.name
                for a in services.app.ledger.of_topic(EvAllocated)
                if a.ev_id == principal.subject_id
            ),
            None,
        )
    return f"{name} ({role})" if name else role


def page(
    request: Request[Any, Any, Any],
    services: Services,
    grant: Grant,
    template: str,
    *,
    title: str,
    when: Moment | None = None,
    status_code: int = 200,
    **values: Any,
) -> Template:
    session: Session | None = request.state.get("desk_session")
    role = grant.principal.role
    context = {
        "title": title,
        "signed_in_as": who_is(services, grant.principal),
        "role": role.value,
        "csrf": session.csrf if session else "",
        "here": request.url.path,
        "when": when,
        "may": lambda operation: may(role, operation),
        **values,
    }
    return Template(template_name=template, context=context, status_code=status_code)


def allocated_centres(services: Services, ev_id: UUID) -> list[tuple[UUID, str]]:
    """The centres an EV is allocated to, with their names (from the log, by topic)."""
    seen: dict[UUID, str] = {}
    for allocation in services.app.ledger.of_topic(EvAllocated, sealed=True):
        if allocation.ev_id == ev_id and allocation.centre_id not in seen:
            seen[allocation.centre_id] = services.app.centre(allocation.centre_id).name
    return sorted(seen.items(), key=lambda item: item[1])
