"""Published contracts: a JSON Schema per event type, and an AsyncAPI 3.0 document.

Both are generated from the msgspec event types, so the contract cannot drift from what is
published; msgspec's evolution rules (new fields get defaults, no reordering) keep a `.v1`
schema valid for every later v1 event. Each schema's `$id` is its `dataschema` URL.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import msgspec

from adapters.streams.envelope import (
    CONTENT_TYPE,
    NO_CENTRE,
    SEQUENCE_DIGITS,
    SPEC_VERSION,
    TYPE_PREFIX,
    TYPES,
    schema_url,
)
from adapters.streams.nats import servers
from adapters.streams.settings import StreamSettings

JsonSchema = dict[str, Any]
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def event_schema(type_name: str, base_url: str) -> JsonSchema:
    """The JSON Schema of `data` in events of `type_name`; KeyError if not published."""
    cls = TYPES[type_name]
    return {
        "$schema": DIALECT,
        "$id": schema_url(base_url, type_name),
        "title": type_name,
        "description": inspect.getdoc(cls) or cls.TOPIC,
        **msgspec.json.schema(cls),
    }


@cache
def encoded_event_schema(type_name: str, base_url: str) -> bytes:
    return msgspec.json.encode(event_schema(type_name, base_url))


def _message_name(type_name: str) -> str:
    return TYPES[type_name].__name__


def _cloud_event() -> JsonSchema:
    """The envelope every channel carries (CloudEvents 1.0, structured JSON mode)."""
    text = {"type": "string", "minLength": 1}
    timestamp = {"type": "string", "format": "date-time"}
    return {
        "type": "object",
        "required": [
            *("specversion", "id", "source", "type", "time", "datacontenttype"),
            *("dataschema", "recordedtime", "effectivedate", "sequence", "partitionkey"),
            "data",
        ],
        "properties": {
            "specversion": {"const": SPEC_VERSION},
            "id": {**text, "description": "The event id: deduplicate on it."},
            "source": {**text, "description": f"/centres/{{centre id}}, or /{NO_CENTRE}"},
            "type": {**text, "description": f"{TYPE_PREFIX}{{what}}.{{verb}}.v{{version}}"},
            "subject": {**text, "description": "The portfolio id, for portfolio events."},
            "time": {**timestamp, "description": "When the service recorded the event."},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"type": "string", "format": "uri"},
            "recordedtime": {**timestamp, "description": "The same instant as `time`."},
            "effectivedate": {
                "type": "string",
                "format": "date",
                "description": "The date the act took effect (may be before `time`).",
            },
            "sequence": {
                "type": "string",
                "pattern": f"^[0-9]{{{SEQUENCE_DIGITS}}}$",
                "description": "The log position, zero-padded: sorts as text and as number.",
            },
            "partitionkey": {**text, "description": "Portfolio id, else centre id."},
            "data": {"type": "object"},
        },
    }


def nats_servers(settings: StreamSettings) -> JsonSchema:
    """The configured NATS servers (EPORTFOLIO_NATS_URL, `,`-separated), as AsyncAPI servers."""
    if settings.nats_url is None:
        return {}
    hosts = [urlsplit(u).netloc for u in servers(settings.nats_url)]
    description = (
        f"NATS JetStream: the stream `{settings.nats_stream}` holds subjects "
        f"`{settings.nats_subject_prefix}.>`."
    )
    return {
        f"nats{i + 1 if len(hosts) > 1 else ''}": {
            "host": host,
            "protocol": "nats",
            "description": description,
            "x-jetstream-stream": settings.nats_stream,
        }
        for i, host in enumerate(hosts)
    }


def asyncapi_document(settings: StreamSettings) -> JsonSchema:
    """The channels an integrator can use here, and every message they carry.

    Servers come from the settings: the HTTP channels from EPORTFOLIO_PUBLIC_URL, the NATS
    channel (only when publishing is on) from EPORTFOLIO_NATS_URL and its stream.
    """
    base_url, nats_prefix = settings.public_url, settings.nats_subject_prefix
    nats = nats_servers(settings)
    types = sorted(TYPES)
    refs, components = msgspec.json.schema_components(
        [TYPES[t] for t in types], ref_template="#/components/schemas/{name}"
    )
    messages: JsonSchema = {}
    for type_name, ref in zip(types, refs, strict=True):
        messages[_message_name(type_name)] = {
            "name": type_name,
            "title": type_name,
            "summary": inspect.getdoc(TYPES[type_name]) or TYPES[type_name].TOPIC,
            "contentType": CONTENT_TYPE,
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/CloudEvent"},
                    {"properties": {"type": {"const": type_name}, "data": ref}},
                ]
            },
        }
    channel_messages = {
        name: {"$ref": f"#/components/messages/{name}"} for name in sorted(messages)
    }
    url = urlsplit(base_url)
    http = [{"$ref": "#/servers/http"}]

    def channel(address: str | None, description: str, servers: list[Any]) -> JsonSchema:
        return {
            "address": address,
            "description": description,
            "servers": servers,
            "messages": channel_messages,
        }

    channels = {
        "feed": channel(
            "/events",
            "Pull feed: GET /events?after={position}&limit=&centre_id=&portfolio_id=&type= "
            "returns {events: [CloudEvent], next_after}; continue with after=next_after. "
            "With Accept: application/cloudevents-batch+json the body is a CloudEvents batch "
            "and the cursor is in the Eportfolio-Next-After header. A cursor past the end of "
            "the log answers 409 (rule cursor_ahead, with log_end).",
            http,
        ),
        "stream": channel(
            "/events/stream",
            "Server-Sent Events: each frame's `id:` is the log position and `event:` the "
            "CloudEvents type; reconnect with Last-Event-ID to resume with no gap. One "
            '`event: caught-up` frame (data {"position": n}) says the whole log has been read '
            "and the stream is live; `: keep-alive` comment lines are heartbeats.",
            http,
        ),
        "webhook": channel(
            None,
            "The URL registered with POST /webhooks. Standard Webhooks headers: webhook-id "
            "(the event id), webhook-timestamp, webhook-signature (v1, HMAC-SHA256 of "
            "id.timestamp.body). Answer 2xx; 410 disables; 429/503 with Retry-After delay.",
            [],
        ),
    }
    if nats:
        channels["nats"] = {
            **channel(
                nats_prefix + ".{centre}.{type}",
                f"JetStream subject, in the stream `{settings.nats_stream}`; header "
                "Nats-Msg-Id is the event id, Eportfolio-Position the log position.",
                [{"$ref": f"#/servers/{name}"} for name in nats],
            ),
            "parameters": {
                "centre": {"description": f"The centre id, or `{NO_CENTRE}`."},
                "type": {
                    "description": "The CloudEvents type without its prefix.",
                    "enum": [t.removeprefix(TYPE_PREFIX) for t in types],
                },
            },
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "eportfolio integrator streams",
            "version": "1.0.0",
            "description": "Every event, once, in log order, resumable from a cursor. "
            "Delivery is at-least-once: deduplicate by CloudEvents id.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "http": {
                "host": url.netloc,
                "protocol": url.scheme or "https",
                "security": [{"$ref": "#/components/securitySchemes/bearer"}],
            },
            **nats,
        },
        "channels": channels,
        "operations": {
            f"send{name.title()}": {
                "action": "send",
                "channel": {"$ref": f"#/channels/{name}"},
            }
            for name in channels
        },
        "components": {
            "schemas": {"CloudEvent": _cloud_event(), **components},
            "messages": messages,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
