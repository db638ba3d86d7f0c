"""Stream settings from the environment (the store itself is `adapters.config.Config`)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from adapters.config import number


class StreamSettings(msgspec.Struct, frozen=True, kw_only=True):
    #: Where this service is reached (EPORTFOLIO_PUBLIC_URL): the base of `dataschema` URLs.
    public_url: str = "http://localhost:8000"
    #: JetStream publishing is on when set (EPORTFOLIO_NATS_URL, e.g. nats://127.0.0.1:4222).
    nats_url: str | None = None
    #: The JetStream stream (EPORTFOLIO_NATS_STREAM) and subject prefix (..._NATS_SUBJECT_PREFIX).
    nats_stream: str = "EPORTFOLIO"
    nats_subject_prefix: str = "eportfolio"
    #: Allow http and private/loopback webhook URLs (EPORTFOLIO_WEBHOOKS_ALLOW_PRIVATE=1): dev only.
    webhooks_allow_private: bool = False
    #: Seconds between SSE heartbeat comments (EPORTFOLIO_SSE_HEARTBEAT).
    sse_heartbeat: float = 15.0
    #: Events buffered per SSE reader before it is cut off to resume (EPORTFOLIO_SSE_QUEUE).
    sse_queue: int = 1_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StreamSettings:
        env = os.environ if env is None else env
        return cls(
            public_url=env.get("EPORTFOLIO_PUBLIC_URL", "http://localhost:8000"),
            nats_url=env.get("EPORTFOLIO_NATS_URL") or None,
            nats_stream=env.get("EPORTFOLIO_NATS_STREAM", "EPORTFOLIO"),
            nats_subject_prefix=env.get("EPORTFOLIO_NATS_SUBJECT_PREFIX", "eportfolio"),
            webhooks_allow_private=env.get("EPORTFOLIO_WEBHOOKS_ALLOW_PRIVATE") == "1",
            sse_heartbeat=number(
                env, "EPORTFOLIO_SSE_HEARTBEAT", 15.0, minimum=0.1, unit="seconds"
            ),
            sse_queue=number(env, "EPORTFOLIO_SSE_QUEUE", 1_000, minimum=1, unit="events"),
        )
