"""`GET /units`: the unit specifications on offer, each version in full."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import PathParameter

from adapters.http.params import int_range
from adapters.http.problems import READ, problem, responses
from adapters.http.response_bodies import UnitSummary
from adapters.http.writes import ServicesDep
from domain.spec import UnitSpec


class UnitsController(Controller):
    path = "/units"
    tags = ["units"]

    @get("/", operation_id="list_units", responses=responses(*READ), sync_to_thread=False)
    def list_units(self, services: ServicesDep) -> list[UnitSummary]:
        """Every unit specification on offer, every version."""
        return [
            UnitSummary(
                code=s.code,
                version=s.version,
                title=s.title,
                awarding_body=s.awarding_body,
                level=s.level,
                credit=s.credit,
                guided_learning_hours=s.guided_learning_hours,
            )
            for s in sorted(services.app.specs.specs, key=lambda s: (s.code, s.version))
        ]

    @get("/{code:str}", operation_id="get_unit", responses=responses(*READ), sync_to_thread=False)
    def get_unit(
        self,
        code: Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9-]{1,32}$")],
        services: ServicesDep,
        version: Annotated[int | None, int_range(1, 10_000)] = None,
    ) -> UnitSpec:
        """A unit's criteria, range, requirements and rules (the latest version by default)."""
        spec = services.app.specs.get(code, version)
        if spec is None:
            raise problem(404, f"no unit {code} (version {version or 'latest'})", field="code")
        return spec
