"""HTTP settings from the environment (the store itself is `adapters.config.Config`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from adapters.config import number
from adapters.store.blobs import BlobStore

MIB = 1024 * 1024


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    #: The administrator's bearer token (EPORTFOLIO_ADMIN_TOKEN); None: no admin access.
    admin_token: str | None = None
    #: Largest attachment accepted by PUT /blobs/{sha256} (EPORTFOLIO_MAX_BLOB_BYTES).
    max_blob_bytes: int = 25 * MIB
    #: How long `?wait=true` waits for the read views (EPORTFOLIO_WAIT_SECONDS).
    wait_seconds: float = 5.0
    #: Where attachments live; None: `{data_dir}/blobs`.
    blob_dir: Path | None = None
    #: A checkpoint every so many seconds if the log moved (EPORTFOLIO_CHECKPOINT_SECONDS);
    #: 0: none on a schedule (EV samples and POST /audit/checkpoints still issue them).
    checkpoint_seconds: float = 3600.0
    #: Requests per minute per client address (0: no limit): writes other than uploads
    #: (EPORTFOLIO_RATE_LIMIT_WRITES), attachment uploads (EPORTFOLIO_RATE_LIMIT_UPLOADS),
    #: and requests whose token is refused (EPORTFOLIO_RATE_LIMIT_FAILED_LOOKUPS).
    rate_limit_writes: int = 600
    rate_limit_uploads: int = 120
    rate_limit_failed_lookups: int = 30

    def blobs(self, data_dir: Path) -> BlobStore:
        """The attachments' store: `blob_dir`, or `blobs` in the data directory."""
        return BlobStore(self.blob_dir or data_dir / "blobs", max_bytes=self.max_blob_bytes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpSettings:
        """The settings; raises SettingError naming any that is not usable."""
        env = os.environ if env is None else env
        blob_dir = env.get("EPORTFOLIO_BLOB_DIR")
        return cls(
            admin_token=env.get("EPORTFOLIO_ADMIN_TOKEN") or None,
            max_blob_bytes=number(
                env, "EPORTFOLIO_MAX_BLOB_BYTES", 25 * MIB, minimum=1, unit="bytes"
            ),
            wait_seconds=number(env, "EPORTFOLIO_WAIT_SECONDS", 5.0, minimum=0.0, unit="seconds"),
            blob_dir=Path(blob_dir) if blob_dir else None,
            checkpoint_seconds=number(
                env, "EPORTFOLIO_CHECKPOINT_SECONDS", 3600.0, minimum=0.0, unit="seconds"
            ),
            rate_limit_writes=number(
                env, "EPORTFOLIO_RATE_LIMIT_WRITES", 600, minimum=0, unit="requests a minute"
            ),
            rate_limit_uploads=number(
                env, "EPORTFOLIO_RATE_LIMIT_UPLOADS", 120, minimum=0, unit="requests a minute"
            ),
            rate_limit_failed_lookups=number(
                env, "EPORTFOLIO_RATE_LIMIT_FAILED_LOOKUPS", 30, minimum=0, unit="requests a minute"
            ),
        )
