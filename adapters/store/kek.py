"""The key-encryption key (KEK): every subject key and webhook secret is stored wrapped by it.

The KEK lives apart from the stores it protects, so a copy of `keys.sqlite` (or of the
`subject_keys` table, or a backup of either) opens nothing on its own. It comes from
`EPORTFOLIO_KEK` (base64, for a secrets manager or a container's environment) or else the
file `EPORTFOLIO_KEK_FILE` (by default `<data dir>.kek`, beside the data directory rather
than in it). Either holds a ring of one or more 256-bit keys, newest first: during a
rotation both the new and the old are there, and any of them unwraps what it wrapped.

Each store records which KEK is current (the `kek` table beside its rows, by id: the first
8 bytes of a SHA-256 of the key, never the key), and a write wraps under that one, checked
in the same transaction as the write, so a rotation in another process can never leave a
value wrapped under a KEK that is about to be retired. A wrapped value is AES-256-GCM:
`nonce (12) ‖ ciphertext ‖ tag`, with associated data naming what it is and whose, so a
wrapped key cannot be moved to another subject's row. See docs/adr/0010.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.config import Config
from adapters.store.files import write_private

KEK_BYTES = 32
NONCE_BYTES = 12
_ID_PREFIX = b"eportfolio:kek-id:v1\x00"
_HEADER = "# eportfolio key-encryption keys, newest first: back this file up apart from the data\n"


CURRENT_KEK_TABLE = (
    "CREATE TABLE {kek} (one INTEGER PRIMARY KEY CHECK (one = 1), kek_id TEXT NOT NULL)"
)
"""A store's record of its current KEK (a migration step's statement; `{kek}` its name)."""
RECORD_CURRENT_KEK = "INSERT INTO {kek} (one, kek_id) VALUES (1, ?)"


class KekError(RuntimeError):
    """The KEK is missing, malformed, or not the one a store was wrapped under."""


def kek_id(key: bytes) -> str:
    """Names a KEK without revealing it."""
    return hashlib.sha256(_ID_PREFIX + key).hexdigest()[:16]


def generate() -> bytes:
    return AESGCM.generate_key(bit_length=KEK_BYTES * 8)


def encode_ring(keys: Sequence[bytes]) -> str:
    """The KEK file's text (or, joined by commas, EPORTFOLIO_KEK's value)."""
    return _HEADER + "".join(base64.b64encode(key).decode() + "\n" for key in keys)


def parse_ring(text: str, where: str) -> list[bytes]:
    """Keys from whitespace- or comma-separated base64, `#` comments ignored."""
    words = [
        word
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
        for word in line.replace(",", " ").split()
    ]
    keys: list[bytes] = []
    for number, word in enumerate(words, start=1):
        try:
            key = base64.b64decode(word, validate=True)
        except binascii.Error:
            key = b""
        if len(key) != KEK_BYTES:
            msg = f"{where}: key {number} is not base64 of {KEK_BYTES} bytes"
            raise KekError(msg)
        keys.append(key)
    if not keys:
        msg = f"{where} holds no key"
        raise KekError(msg)
    return keys


class KeyRing:
    """The configured KEKs; re-read from their source when a store names one not held."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._keys = self._read()

    @property
    def from_environment(self) -> bool:
        return self.config.kek is not None

    @property
    def where(self) -> str:
        return "EPORTFOLIO_KEK" if self.from_environment else str(self.config.kek_path)

    @property
    def ids(self) -> list[str]:
        with self._lock:
            return list(self._keys)

    @property
    def newest(self) -> str:
        return self.ids[0]

    def reload(self) -> None:
        keys = self._read()
        with self._lock:
            self._keys = keys

    def key(self, wanted: str) -> bytes:
        """The KEK named `wanted`, re-reading the source once if it is not held."""
        with self._lock:
            found = self._keys.get(wanted)
        if found is None:
            self.reload()
            with self._lock:
                found = self._keys.get(wanted)
        if found is None:
            msg = (
                f"the store is wrapped under KEK {wanted}, which {self.where} does not hold "
                f"(it holds {', '.join(self.ids)}): configure the right KEK, or restore it "
                "from its backup"
            )
            raise KekError(msg)
        return found

    def wrap(self, wanted: str, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self.key(wanted)).encrypt(nonce, plaintext, aad)

    def unwrap(self, wanted: str, wrapped: bytes, aad: bytes) -> bytes:
        try:
            return AESGCM(self.key(wanted)).decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad
            )
        except (InvalidTag, ValueError) as error:
            msg = "a wrapped value does not open under its KEK: altered, or moved to another row"
            raise KekError(msg) from error

    def _read(self) -> dict[str, bytes]:
        if self.config.kek is not None:
            keys = parse_ring(self.config.kek.value, "EPORTFOLIO_KEK")
        else:
            path = self.config.kek_path
            try:
                text = path.read_text(encoding="ascii")
            except FileNotFoundError:
                msg = (
                    f"no key-encryption key at {path}: run `eportfolio keys generate-kek` "
                    "(or set EPORTFOLIO_KEK_FILE or EPORTFOLIO_KEK); `serve --demo` makes one"
                )
                raise KekError(msg) from None
            except (OSError, UnicodeDecodeError) as error:
                msg = f"cannot read the key-encryption key {path}: {error}"
                raise KekError(msg) from None
            keys = parse_ring(text, str(path))
        return {kek_id(key): key for key in keys}


def load_ring(config: Config) -> KeyRing:
    return KeyRing(config)


def write_kek_file(path: Path, keys: Sequence[bytes], *, replace: bool = False) -> None:
    """Write the ring, readable by its owner only; a new file unless `replace`."""
    try:
        write_private(path, encode_ring(keys).encode("ascii"), exclusive=not replace)
    except FileExistsError:
        msg = f"{path} already holds a KEK: `eportfolio keys rotate-kek` replaces it safely"
        raise KekError(msg) from None


def ensure_kek(config: Config) -> Path | None:
    """Make a KEK file if none is configured or there (the demo); the path if it made one."""
    if config.kek is not None or config.kek_path.exists():
        return None
    write_kek_file(config.kek_path, [generate()])
    return config.kek_path
