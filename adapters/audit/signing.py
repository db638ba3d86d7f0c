"""The log's Ed25519 key and C2SP signed notes (c2sp.org/signed-note).

A note is text ending in a newline, a blank line, then lines `— <key name> base64(key id ‖
signature)`; the key id is the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).
Keys are written in the Go `note` package's text forms, so other tools read them:
`PRIVATE+KEY+<name>+<id hex>+base64(0x01 ‖ seed)` and the verifier key
`<name>+<id hex>+base64(0x01 ‖ public key)`. The key name is the checkpoint origin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from adapters.config import Config
from adapters.store.files import write_private

ED25519 = b"\x01"
DASH = "\u2014"
DEFAULT_ORIGIN = "eportfolio.local/audit-log"


class SigningKeyError(ValueError):
    """A key file or key text that cannot be used; says what and where."""


class NoteError(ValueError):
    """A note that does not verify; the message says why in plain words."""


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(ch.isspace() or ch == "+" for ch in name):
        msg = f"a key name is non-empty, without spaces or '+': {name!r}"
        raise SigningKeyError(msg)
    return name


class VerifierKey:
    """A public key that checks notes signed under its name."""

    def __init__(self, name: str, public: bytes) -> None:
        self.name = _check_name(name)
        self.public = public
        self.id = key_id(name, public)
        self._key = Ed25519PublicKey.from_public_bytes(public)

    @property
    def key_id(self) -> str:
        return self.id.hex()

    def to_text(self) -> str:
        encoded = base64.b64encode(ED25519 + self.public).decode()
        return f"{self.name}+{self.key_id}+{encoded}"

    @classmethod
    def from_text(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+", 2)  # the base64 key may hold "+" too
        if len(parts) != 3:
            msg = "a verifier key reads <name>+<key id hex>+<base64 key>"
            raise SigningKeyError(msg)
        name, hex_id, encoded = parts
        raw = _b64(encoded, "verifier key")
        if len(raw) != 33 or raw[:1] != ED25519:
            msg = "the verifier key is not an Ed25519 key (type 0x01, 32 bytes)"
            raise SigningKeyError(msg)
        key = cls(name, raw[1:])
        if key.key_id != hex_id.lower():
            msg = f"the verifier key's id {hex_id} is not its hash {key.key_id}"
            raise SigningKeyError(msg)
        return key

    def open(self, note: str) -> str:
        """The note's text, once a signature by this key verifies; NoteError otherwise."""
        text, signatures = split_note(note)
        others = []
        for name, blob in signatures:
            if name == self.name and blob[:4] == self.id:
                try:
                    self._key.verify(blob[4:], text.encode())
                except InvalidSignature:
                    msg = (
                        f"the signature by {self.name}+{self.key_id} does not verify: "
                        "the signed text was altered, or the signature forged"
                    )
                    raise NoteError(msg) from None
                return text
            others.append(f"{name}+{blob[:4].hex()}")
        msg = f"not signed by {self.name}+{self.key_id}; signed by {', '.join(others)} instead"
        raise NoteError(msg)


class SigningKey:
    """The log's private key; implements `service.checkpoints.NoteSigner`."""

    def __init__(self, name: str, seed: bytes) -> None:
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self.verifier = VerifierKey(name, self._private.public_key().public_bytes_raw())

    @property
    def origin(self) -> str:
        return self.verifier.name

    @property
    def key_id(self) -> str:
        return self.verifier.key_id

    @classmethod
    def generate(cls, name: str = DEFAULT_ORIGIN) -> SigningKey:
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    def sign(self, text: str) -> str:
        """A signed note of `text` (which must end in a newline)."""
        if not text.endswith("\n"):
            msg = "a note's text ends in a newline"
            raise ValueError(msg)
        blob = self.verifier.id + self._private.sign(text.encode())
        return f"{text}\n{DASH} {self.origin} {base64.b64encode(blob).decode()}\n"

    def to_text(self) -> str:
        seed = self._private.private_bytes_raw()
        encoded = base64.b64encode(ED25519 + seed).decode()
        return f"PRIVATE+KEY+{self.origin}+{self.key_id}+{encoded}"

    @classmethod
    def from_text(cls, text: str) -> SigningKey:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            msg = "a signing key reads PRIVATE+KEY+<name>+<key id hex>+<base64 key>"
            raise SigningKeyError(msg)
        raw = _b64(parts[4], "signing key")
        if len(raw) != 33 or raw[:1] != ED25519:
            msg = "the signing key is not an Ed25519 key (type 0x01, 32-byte seed)"
            raise SigningKeyError(msg)
        key = cls(parts[2], raw[1:])
        if key.key_id != parts[3].lower():
            msg = f"the signing key's id {parts[3]} does not match its public key"
            raise SigningKeyError(msg)
        return key


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """(text, [(key name, key id ‖ signature)]); NoteError if it is not a signed note."""
    body, sep, block = note.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        msg = "not a signed note: no blank line before the signature lines"
        raise NoteError(msg)
    signatures = []
    for line in block[:-1].split("\n"):
        dash, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if dash != DASH or not name or not encoded:
            msg = f"not a signature line: {line[:80]!r}"
            raise NoteError(msg)
        blob = _b64(encoded, "signature", NoteError)
        if len(blob) < 5:
            msg = f"a signature by {name} is too short to hold a key id"
            raise NoteError(msg)
        signatures.append((name, blob))
    return body + "\n", signatures


def _b64(text: str, what: str, error: type[ValueError] = SigningKeyError) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        msg = f"the {what} is not valid base64"
        raise error(msg) from None


def load_signing_key(config: Config) -> SigningKey:
    path = config.signing_key_path
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        msg = (
            f"no signing key at {path}: run `eportfolio keys generate` "
            "(or set EPORTFOLIO_SIGNING_KEY_FILE)"
        )
        raise SigningKeyError(msg) from None
    try:
        return SigningKey.from_text(text)
    except SigningKeyError as error:
        msg = f"{path}: {error}"
        raise SigningKeyError(msg) from None


def write_signing_key(path: Path, key: SigningKey, *, overwrite: bool = False) -> None:
    """Write the key readable by its owner only; never replaces a key unless told to."""
    try:
        write_private(path, (key.to_text() + "\n").encode("ascii"), exclusive=not overwrite)
    except FileExistsError:
        msg = (
            f"{path} already holds a key; pass --force to replace it "
            "(checkpoints already issued stay signed by the old key)"
        )
        raise SigningKeyError(msg) from None
