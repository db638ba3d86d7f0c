"""`GET /me`: who the caller's token says they are."""

from __future__ import annotations

from litestar import Controller, get

from adapters.http.problems import responses
from adapters.http.response_bodies import Me
from adapters.http.writes import GrantDep


class MeController(Controller):
    path = "/me"
    tags = ["access"]

    @get("/", operation_id="whoami", responses=responses(401, 403), sync_to_thread=False)
    def whoami(self, grant: GrantDep) -> Me:
        who = grant.principal
        return Me(
            subject_id=who.subject_id, role=who.role, centre_id=who.centre_id, token_id=who.token_id
        )
