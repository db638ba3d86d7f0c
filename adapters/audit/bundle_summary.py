"""The bundle's human-readable summary: the audit pack of the exported events.

Derived only from the exported events (through the same pure folds the views use), so what
a reader sees is what the verifier checked. One self-contained file, no scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from adapters.audit.pack.pack import bundle_pack
from adapters.specs import default_specs_dir, load_catalogue
from domain import events as e
from domain.spec import SpecCatalogue


@cache
def _specs() -> SpecCatalogue:
    return load_catalogue(default_specs_dir())


def render_summary(
    events: Sequence[tuple[int, e.Event]],
    *,
    scope: str,
    checkpoint: e.CheckpointIssued,
    covered_up_to: int,
    vkey: str,
) -> str:
    """The summary page of `events` (position, event), in log order."""
    return bundle_pack(
        events,
        scope=scope,
        checkpoint=checkpoint,
        covered_up_to=covered_up_to,
        vkey=vkey,
        specs=_specs(),
    )
