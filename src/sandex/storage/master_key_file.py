"""Where master keys live: a 0600 file in the data directory, or ``SANDEX_MASTER_KEY``."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from sandex.keys import Keyring, MasterKey, SealError
from sandex.service.errors import MasterKeyProblem
from sandex.storage.private_files import write_private

__all__ = ["FileKeyringSource", "EnvKeyringSource", "MASTER_KEY_FILE"]

MASTER_KEY_FILE = "master.key"


class FileKeyringSource:
    """A JSON file ``{"keys": ["<base64>", ...]}``, primary first, mode 0600.

    Created with one fresh key on first use. A file readable by anyone but its owner
    is refused.
    """

    can_generate = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"key file {path}"

    def load(self) -> Keyring:
        if not self.path.exists():
            self._write([MasterKey.generate()], create=True)
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            raise MasterKeyProblem(
                f"{self.path} is readable by other users (mode {mode:o});"
                f" run: chmod 600 {self.path}"
            )
        try:
            data = json.loads(self.path.read_text())
            keys = [MasterKey.from_text(k) for k in data["keys"]]
            return Keyring(keys)
        except (ValueError, KeyError, TypeError, SealError) as exc:
            raise MasterKeyProblem(f"{self.path} is not a valid master key file ({exc})") from None

    def add_primary(self, key: MasterKey) -> Keyring:
        keyring = self.load()
        self._write([key, *keyring.keys], create=False)
        return self.load()

    def keep_only_primary(self) -> Keyring:
        keyring = self.load()
        self._write([keyring.primary], create=False)
        return self.load()

    def _write(self, keys: list[MasterKey], *, create: bool) -> None:
        """Write atomically: a complete temporary file, then link (create) or rename."""
        text = json.dumps({"version": 1, "keys": [k.to_text() for k in keys]}, indent=2) + "\n"
        # create: another process that made the file first wins, and its keys are loaded
        write_private(self.path, text.encode(), replace=not create)


class EnvKeyringSource:
    """``SANDEX_MASTER_KEY=NEW[,OLD...]``: base64 keys, primary first. Never written."""

    can_generate = False
    description = "SANDEX_MASTER_KEY"

    def __init__(self, value: str) -> None:
        self._value = value

    def load(self) -> Keyring:
        parts = [p for p in self._value.split(",") if p.strip()]
        try:
            return Keyring([MasterKey.from_text(p) for p in parts])
        except SealError as exc:
            raise MasterKeyProblem(f"SANDEX_MASTER_KEY is not valid: {exc}") from None

    def add_primary(self, key: MasterKey) -> Keyring:
        raise MasterKeyProblem("SANDEX_MASTER_KEY is set from outside; it cannot be changed here")

    def keep_only_primary(self) -> Keyring:
        raise MasterKeyProblem("SANDEX_MASTER_KEY is set from outside; it cannot be changed here")
