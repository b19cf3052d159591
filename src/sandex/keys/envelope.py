"""Envelope encryption of secrets at rest: AES-256-GCM under a master-key keyring.

Each sealed value gets its own random data key; the data key is wrapped by the
keyring's primary master key. Rotating the master key re-wraps the data keys only
(:meth:`Keyring.rewrap`), so no secret is ever decrypted to disk and old master keys
keep opening what they sealed until the re-wrap is done.

Envelope layout (bytes)::

    version(1) | master key id(8) | wrap nonce(12) | wrapped data key(32+16)
               | data nonce(12)   | ciphertext + tag
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sandex.keys.errors import SealError

__all__ = ["MasterKey", "Keyring", "MASTER_KEY_BYTES"]

MASTER_KEY_BYTES: Final = 32
_VERSION: Final = b"\x01"
_KID_LEN: Final = 8
_NONCE_LEN: Final = 12
_WRAPPED_LEN: Final = 32 + 16
_HEADER_LEN: Final = 1 + _KID_LEN + _NONCE_LEN + _WRAPPED_LEN
_B64_TEXT: Final = re.compile(r"[A-Za-z0-9+/_-]+")


@dataclass(frozen=True)
class MasterKey:
    """A 256-bit master key. Its id is a one-way fingerprint, safe to store and show."""

    material: bytes = field(repr=False)
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.material) != MASTER_KEY_BYTES:
            raise SealError(f"a master key must be {MASTER_KEY_BYTES} bytes")
        digest = hashlib.sha256(b"sandex-master-key-id:" + self.material).digest()
        object.__setattr__(self, "key_id", digest[:_KID_LEN].hex())

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(MASTER_KEY_BYTES))

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """Parse the base64 (standard or url-safe) text form of a master key."""
        cleaned = text.strip().rstrip("=")
        if not _B64_TEXT.fullmatch(cleaned):
            raise SealError("a master key must be base64 text of 32 random bytes")
        try:
            raw = base64.urlsafe_b64decode(cleaned.replace("+", "-").replace("/", "_") + "==")
        except (binascii.Error, ValueError):
            raise SealError("a master key must be base64 text of 32 random bytes") from None
        if len(raw) != MASTER_KEY_BYTES:
            raise SealError(
                f"a master key must be base64 text of {MASTER_KEY_BYTES} random bytes,"
                f" got {len(raw)} bytes"
            )
        return cls(raw)

    def to_text(self) -> str:
        return base64.urlsafe_b64encode(self.material).decode("ascii").rstrip("=")


class Keyring:
    """Master keys, newest (primary) first. The primary seals; every key opens."""

    def __init__(self, keys: Sequence[MasterKey]) -> None:
        if not keys:
            raise SealError("a keyring needs at least one master key")
        self._keys = tuple(keys)
        self._by_id = {k.key_id: k for k in self._keys}

    @property
    def primary(self) -> MasterKey:
        return self._keys[0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(k.key_id for k in self._keys)

    @property
    def keys(self) -> tuple[MasterKey, ...]:
        return self._keys

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt ``plaintext`` bound to ``context`` (the record it belongs to)."""
        dek = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(_NONCE_LEN)
        body = nonce + AESGCM(dek).encrypt(nonce, plaintext, context)
        return self._wrap(self.primary, dek) + body

    def open(self, envelope: bytes, context: bytes) -> bytes:
        """Decrypt an envelope sealed with ``context``; :class:`SealError` on any failure."""
        dek = self._unwrap(envelope)
        body = envelope[_HEADER_LEN:]
        try:
            return AESGCM(dek).decrypt(body[:_NONCE_LEN], body[_NONCE_LEN:], context)
        except InvalidTag:
            raise SealError("sealed secret does not open (wrong context or tampered)") from None

    def rewrap(self, envelope: bytes) -> bytes:
        """The same envelope with its data key wrapped by the primary master key."""
        if self.key_id_of(envelope) == self.primary.key_id:
            return envelope
        dek = self._unwrap(envelope)
        return self._wrap(self.primary, dek) + envelope[_HEADER_LEN:]

    @staticmethod
    def key_id_of(envelope: bytes) -> str:
        """Id of the master key that wrapped ``envelope``."""
        if len(envelope) < _HEADER_LEN + _NONCE_LEN + 16 or envelope[:1] != _VERSION:
            raise SealError("not a Sandex envelope")
        return envelope[1 : 1 + _KID_LEN].hex()

    def _wrap(self, master: MasterKey, dek: bytes) -> bytes:
        kid = bytes.fromhex(master.key_id)
        nonce = secrets.token_bytes(_NONCE_LEN)
        wrapped = AESGCM(master.material).encrypt(nonce, dek, b"sandex-dek" + _VERSION + kid)
        return _VERSION + kid + nonce + wrapped

    def _unwrap(self, envelope: bytes) -> bytes:
        kid_hex = self.key_id_of(envelope)
        master = self._by_id.get(kid_hex)
        if master is None:
            raise SealError(f"sealed with master key {kid_hex}, which is not in the keyring")
        kid = envelope[1 : 1 + _KID_LEN]
        nonce = envelope[1 + _KID_LEN : 1 + _KID_LEN + _NONCE_LEN]
        wrapped = envelope[1 + _KID_LEN + _NONCE_LEN : _HEADER_LEN]
        try:
            return AESGCM(master.material).decrypt(nonce, wrapped, b"sandex-dek" + _VERSION + kid)
        except InvalidTag:
            raise SealError("data key does not unwrap (tampered envelope)") from None
