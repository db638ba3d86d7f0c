"""Errors of the write path that are not rules of the domain."""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    rule: ClassVar[str] = "service_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class VersionMismatch(ServiceError):
    """The caller's expected version (If-Match) is not the stream's version."""

    rule = "version_mismatch"


class ConcurrencyConflict(ServiceError):
    """Other writers kept winning the race; nothing was written. Retry the command."""

    rule = "concurrency_conflict"


class IdempotencyKeyReused(ServiceError):
    """The same idempotency key came with a different command."""

    rule = "idempotency_key_reused"


class IdAlreadyUsed(ServiceError):
    """A client-chosen id already names another record, here or at another centre."""

    rule = "id_already_used"
