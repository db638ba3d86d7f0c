"""CloudEvents binary content mode for webhooks: attributes in `ce-*` headers, data as the body.

The envelope is made once, in structured JSON (`envelope.py`); binary mode is derived from
those bytes, so both modes carry the same attributes. Values are percent-encoded as the
HTTP binding asks (printable ASCII except space, `"` and `%` pass through); `datacontenttype`
becomes `Content-Type`.
"""

from __future__ import annotations

from urllib.parse import quote

import msgspec

_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
_decode = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_text = msgspec.json.Decoder(str).decode


def binary_message(structured: bytes) -> tuple[dict[str, str], bytes]:
    """(headers, body) of the binary-mode request carrying the structured event `structured`."""
    attributes = _decode(structured)
    data = attributes.pop("data", None)
    content_type = _text(attributes.pop("datacontenttype", b'"application/json"'))
    headers = {"content-type": content_type}
    for name, raw in attributes.items():  # every attribute we publish is a JSON string
        headers[f"ce-{name}"] = quote(_text(raw), safe=_SAFE)
    return headers, bytes(data) if data is not None else b""
