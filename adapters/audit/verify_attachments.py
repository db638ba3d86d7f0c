"""Attachments checked against the events that name them (`verify --store` and bundles).

An evidence event names each attachment by its SHA-256, and the event is bound into the
Merkle log, so a file is authentic exactly when its bytes hash to the name an event gives.
Where the files are (the blob store, a bundle's `attachments/`) is behind `digest(sha256)`:
what those bytes hash to now, or None if there are none. A missing file is a finding
unless every learner whose evidence used it was erased (erasure deletes exactly those).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple
from uuid import UUID

from adapters.audit.findings import Report
from domain.events import Event, EvidenceSubmitted, LearnerEnrolled, SubjectErased

Digest = Callable[[str], str | None]


class Reference(NamedTuple):
    position: int
    evidence_id: UUID
    portfolio_id: UUID


class Attachments:
    """What the events say about attachments, noted in log order, then checked at once."""

    def __init__(self) -> None:
        self.named: dict[str, list[Reference]] = {}
        self.learner_of: dict[UUID, UUID] = {}
        self.erased: set[UUID] = set()

    def note(self, position: int, event: Event) -> None:
        if isinstance(event, LearnerEnrolled):
            self.learner_of[event.portfolio_id] = event.learner_id
        elif isinstance(event, SubjectErased):
            self.erased.add(event.subject_id)
        elif isinstance(event, EvidenceSubmitted):
            for attachment in event.attachments:
                reference = Reference(position, event.evidence_id, event.portfolio_id)
                self.named.setdefault(attachment.sha256, []).append(reference)

    def check(self, digest: Digest, where: str, report: Report) -> None:
        """Each named attachment is in `where` and hashes to its name, or was erased."""
        verified = erased = 0
        for sha256, references in sorted(self.named.items()):
            actual, first = digest(sha256), references[0]
            named = f"attachment {sha256} of evidence {first.evidence_id}"
            if actual == sha256:
                verified += 1
            elif actual is not None:
                report.fail(
                    f"{named} now hashes to {actual}: it was altered in {where}", first.position
                )
            elif self._erased(references):
                erased += 1
            else:
                report.fail(f"{named} is missing from {where}", first.position)
        gone = f"; {erased} went with erased learners, as erasure requires" if erased else ""
        report.ok(f"{verified} attachments in {where} hash to the names their evidence gives{gone}")

    def unnamed(self, names: Iterable[str]) -> list[str]:
        """Of these attachment hashes, those no event names."""
        return sorted(set(names) - self.named.keys())

    def _erased(self, references: list[Reference]) -> bool:
        return all(self.learner_of.get(r.portfolio_id) in self.erased for r in references)
