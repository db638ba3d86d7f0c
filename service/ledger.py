"""The ledger: one eventsourcing application, one global notification log.

Centres and portfolios are the consistency boundaries (one stream each); a single
application keeps every stream in one ordered log, which streams and the Merkle tree need.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Mapper, Notification

from domain.events import CentreEvent, PortfolioEvent
from service.codec import EventMapper, Receipt, Recorded


@runtime_checkable
class KnowsPositions(Protocol):
    """A recorder that can say where a stored event sits in the log."""

    def notification_position(self, originator_id: UUID, originator_version: int) -> int | None:
        raise NotImplementedError


class Ledger(Application[UUID]):
    name = "eportfolio"

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(transcoder=JSONTranscoder(), mapper_class=EventMapper)

    def recorded(self, stream_id: UUID) -> list[Recorded]:
        return [_as_recorded(item) for item in self.events.get(stream_id)]

    def centre_events(self, centre_id: UUID) -> list[CentreEvent]:
        return [r.event for r in self.recorded(centre_id) if isinstance(r.event, CentreEvent)]

    def portfolio_events(self, portfolio_id: UUID) -> list[PortfolioEvent]:
        return [r.event for r in self.recorded(portfolio_id) if isinstance(r.event, PortfolioEvent)]

    def receipt(self, receipt_id: UUID) -> Receipt | None:
        for item in self.recorded(receipt_id):
            if isinstance(item.event, Receipt):
                return item.event
        return None

    def position_of(self, stream_id: UUID, version: int) -> int:
        recorder = self.recorder
        if not isinstance(recorder, KnowsPositions):
            msg = f"{type(recorder).__name__} cannot look up positions; use adapters' factories"
            raise TypeError(msg)
        position = recorder.notification_position(stream_id, version)
        if position is None:
            msg = f"no stored event {stream_id} v{version}"
            raise LookupError(msg)
        return position

    def decode(self, notification: Notification) -> Recorded:
        """A notification read from the log, as the event it stores."""
        return _as_recorded(self.mapper.to_domain_event(notification))

    def notifications(self, after: int = 0, batch: int = 1_000) -> Iterator[Notification]:
        """Every notification after a position, in log order, read in batches."""
        while True:
            page = self.recorder.select_notifications(start=after + 1, limit=batch)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].id


def _as_recorded(item: object) -> Recorded:
    if not isinstance(item, Recorded):
        msg = f"expected a Recorded event, got {type(item).__name__}"
        raise TypeError(msg)
    return item
