"""The documents the state view stores: their kinds, keys and encoding.

Every kind is named here, so writers (`projections.portfolio_view`, the derivers) and
readers (`service.queries`, the HTTP lookups) agree on one spelling. Bodies are canonical
JSON (`encode_doc`): equal states are equal bytes, so a rebuild from zero and the live
view agree byte for byte.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

import msgspec

from domain.portfolio import EvidenceItem, PortfolioState
from projections.canonical import canonical_form, set_fields
from projections.centre_snapshot import CentreSnapshot
from projections.coverage import CoverageReport
from projections.sufficiency import SufficiencyReport

CENTRE = "centre"
PORTFOLIO = "portfolio"
CENTRE_PORTFOLIOS = "centre_portfolios"
DECISION = "decision"  # a decision's portfolio and centre, for addressing it by its id alone
TRAIL = "trail"
EV_SAMPLE = "ev_sample"  # an EV sample's portfolio, by the sample event's position
CHAINS = "chains"
COVERAGE = "coverage"
SUFFICIENCY = "sufficiency"
TRAIL_ERASABLE = "trail_erasable"  # a trail row as it will read once its learner is erased
ERASABLE_INDEX = "erasable_index"  # a learner's positions with such a row


def position_key(position: int) -> str:
    """A document key that sorts in log order."""
    return f"{position:020d}"


class DecisionPlace(msgspec.Struct, frozen=True, kw_only=True):
    """Where a decision lives (kind "decision", keyed by its id)."""

    portfolio_id: UUID
    centre_id: UUID


_encoder = msgspec.json.Encoder()
_decode_portfolio = msgspec.json.Decoder(PortfolioState).decode
_decode_centre = msgspec.json.Decoder(CentreSnapshot).decode
_decode_ids = msgspec.json.Decoder(list[UUID]).decode
_decode_positions = msgspec.json.Decoder(list[int]).decode
_decode_coverage = msgspec.json.Decoder(CoverageReport).decode
_decode_sufficiency = msgspec.json.Decoder(SufficiencyReport).decode


def encode_doc(value: object) -> bytes:
    """Canonical JSON: every set sorted (`projections.canonical`), dicts in insertion order."""
    return _encoder.encode(canonical_form(value))


def encode_portfolio(state: PortfolioState) -> bytes:
    """`encode_doc(state)`, byte for byte, each evidence item's JSON reused from the last
    time the item was encoded where it has not changed since.

    The view encodes a portfolio's whole state at every event that touches it: ~70 % of
    that was converting and sorting every item again, when an event adds or changes one.
    """
    fields: dict[str, Any] = {name: getattr(state, name) for name in _PORTFOLIO_FIELDS}
    for name in _PORTFOLIO_SETS:
        fields[name] = sorted(fields[name])
    entries = [_item_entry(key, item) for key, item in state.evidence.items()]
    fields["evidence"] = msgspec.Raw(b"{" + b",".join(entries) + b"}")
    return _encoder.encode(fields)


_PORTFOLIO_FIELDS = tuple(f.name for f in dataclasses.fields(PortfolioState))
_PORTFOLIO_SETS = ("sample_ids", "appeal_ids")
_ITEM_JSON = "_encoded"  # where an item holds its JSON (not a field: never stored)
# What the fold changes of an item once it is made (`PortfolioState.apply`: mapping,
# withdrawal; a witness is set as the item is made): the JSON kept is reused only if these
# are as they were. A new set field, in either, fails here rather than encode unsorted.
if set_fields(PortfolioState) != {"evidence", *_PORTFOLIO_SETS} or set_fields(EvidenceItem) != {
    "criteria",
    "requirement_tags",
}:  # a guard for whoever changes the states
    msg = "the sets of PortfolioState or EvidenceItem changed: update encode_portfolio"
    raise TypeError(msg)


def _item_entry(key: UUID, item: EvidenceItem) -> bytes:
    """The item's `"key":{...}` in the evidence object, as msgspec writes it."""
    # The sets as they iterate now (tuples are a third of the size of frozensets, and a
    # set that merely iterates differently is encoded again: a miss, never a wrong hit).
    changing = (
        tuple(item.criteria),
        tuple(item.requirement_tags),
        item.withdrawn,
        item.withdrawn_by,
        item.witness_id,
        key,
    )
    held: tuple[tuple[object, ...], bytes] | None = item.__dict__.get(_ITEM_JSON)
    if held is not None and held[0] == changing:
        return held[1]
    json = msgspec.Raw(_encoder.encode(canonical_form(item)))
    entry = _encoder.encode({key: json})[1:-1]
    item.__dict__[_ITEM_JSON] = (changing, entry)
    return entry


def decode_portfolio(body: bytes) -> PortfolioState:
    return _decode_portfolio(body)


def decode_centre(body: bytes) -> CentreSnapshot:
    return _decode_centre(body)


def decode_ids(body: bytes) -> list[UUID]:
    return _decode_ids(body)


def decode_positions(body: bytes) -> list[int]:
    return _decode_positions(body)


def decode_coverage(body: bytes) -> CoverageReport:
    return _decode_coverage(body)


def decode_sufficiency(body: bytes) -> SufficiencyReport:
    return _decode_sufficiency(body)
