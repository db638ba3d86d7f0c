"""Standard Webhooks signatures and endpoint URLs we are willing to call.

The signature is `v1,` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")) where the key
is the secret's base64 part decoded, so any Standard Webhooks library verifies it.
Endpoints must be https on a public host: a subscriber must not be able to make the server
call its own network (SSRF). Tests and local development may allow http and private hosts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"  # noqa: S105 a prefix, not a secret
SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64


class BadEndpoint(ValueError):
    """The URL is not one deliveries may go to."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def check_resolved(url: str, *, allow_private: bool = False) -> None:
    """Refuse (BadEndpoint) a host that does not resolve to public addresses only.

    Called at registration and again just before every delivery, so a name re-pointed
    inward since is caught then. A name re-pointed between this look-up and the connection
    (DNS rebinding) is not caught.
    """
    if allow_private:
        return
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port or 443
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError) as error:
        raise BadEndpoint(f"cannot resolve {host!r}: {error}") from None
    for info in infos:
        address = str(info[4][0])
        if not is_public(address):
            raise BadEndpoint(f"{host!r} resolves to a non-public address ({address})")


def is_public(text: str) -> bool:
    """A globally routable address, looking through IPv6 forms that carry an IPv4 one."""
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if address in NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
        if any(inner is not None and not inner.is_global for inner in embedded):
            return False
    return address.is_global


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def check_endpoint(url: str, *, allow_private: bool = False) -> str:
    """The URL if deliveries may go there; raises BadEndpoint saying why not.

    The host is resolved as the delivery will resolve it, so every spelling of a private
    address (`0x7f000001`, `2130706433`, `0177.0.0.1`, `127.1`, `[::ffff:127.0.0.1]`) and
    every name pointing at one is refused, unless EPORTFOLIO_WEBHOOKS_ALLOW_PRIVATE=1.
    """
    if len(url) > 2_000:
        raise BadEndpoint("the URL is longer than 2000 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadEndpoint("the URL must be absolute, http(s)://host/...")
    if parts.username is not None or parts.password is not None:
        raise BadEndpoint("the URL must not carry credentials")
    if allow_private:
        return url
    if parts.scheme != "https":
        raise BadEndpoint("the URL must use https")
    host = parts.hostname.rstrip(".").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise BadEndpoint("the URL must name a public host")
    check_resolved(url)
    return url
