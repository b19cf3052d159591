"""How a person names one API key: its id, the whole API key, or its display prefix.

Parsed once where the text arrives (the CLI, a route); the service layer takes the
typed reference and never reads the text again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from sandex.keys.errors import KeysError
from sandex.keys.formats import API_KEY_PREFIX, DISPLAY_PREFIX_LENGTH, is_api_key, is_secret

__all__ = [
    "KeyRef",
    "KeyById",
    "KeyByApiKey",
    "KeyByPrefix",
    "InvalidKeyRef",
    "parse_key_ref",
    "MIN_PREFIX_LENGTH",
]

MIN_PREFIX_LENGTH: Final = 8
"""The shortest prefix that names a key: ``sdxk`` and four characters of the key."""
_MAX_ID: Final = 2**63 - 1


class InvalidKeyRef(KeysError):
    """The text is neither a key id, an API key nor an API key's prefix."""


@dataclass(frozen=True, slots=True)
class KeyById:
    """The key's number, as the key list and the management API show it."""

    key_id: int

    @property
    def shown(self) -> str:
        return str(self.key_id)


@dataclass(frozen=True, slots=True)
class KeyByApiKey:
    """The whole API key (looked up by its keyed hash); only its prefix is ever shown."""

    api_key: str = field(repr=False)

    @property
    def shown(self) -> str:
        return self.api_key[:DISPLAY_PREFIX_LENGTH]


@dataclass(frozen=True, slots=True)
class KeyByPrefix:
    """The start of an API key (its display prefix, or at least ``sdxk`` and four
    characters); it must name one key of the caller's."""

    prefix: str

    @property
    def shown(self) -> str:
        return self.prefix


KeyRef = KeyById | KeyByApiKey | KeyByPrefix


def parse_key_ref(text: str) -> KeyRef:
    """``"42"``, ``"sdxkAbCd1234"`` or a whole API key → the reference it spells.

    A prefix longer than a display prefix is cut to one (the rest is not stored in the
    clear). Raises :class:`InvalidKeyRef` for anything else.
    """
    raw = text.strip()
    if is_api_key(raw):
        return KeyByApiKey(raw)
    if raw.isascii() and raw.isdigit():
        key_id = int(raw)
        if key_id > _MAX_ID:
            raise InvalidKeyRef(f"key id {raw[:12]}… is out of range")
        return KeyById(key_id)
    if raw.startswith(API_KEY_PREFIX) and len(raw) >= MIN_PREFIX_LENGTH:
        return KeyByPrefix(raw[:DISPLAY_PREFIX_LENGTH])
    if is_secret(raw):
        raise InvalidKeyRef("that is a secret, not an API key; give the API key or its id")
    raise InvalidKeyRef(
        f"{raw[:DISPLAY_PREFIX_LENGTH]!r} is not a key: give its id, its API key or the"
        f" API key's first {MIN_PREFIX_LENGTH} or more characters ({API_KEY_PREFIX}…)"
    )
