"""The audit digest directory (``SANDEX_AUDIT_DIGEST_DIR``): one 0600 file per digest,
in a 0700 directory that can be a mount of another disk or host."""

from __future__ import annotations

import os
from pathlib import Path

from sandex.service.errors import AuditDigestProblem
from sandex.storage.private_files import write_private

__all__ = ["DigestDirectory"]


class DigestDirectory:
    """Files are written whole (a temporary file, fsync, then a hard link that never
    replaces an existing name), so a reader never sees half a digest and two writers
    cannot both store the same digest number."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def location(self) -> str:
        return str(self.path)

    def names(self) -> list[str]:
        try:
            return sorted(entry.name for entry in os.scandir(self.path) if entry.is_file())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AuditDigestProblem(self._cannot("read", exc)) from None

    def read(self, name: str) -> bytes:
        try:
            return (self.path / name).read_bytes()
        except OSError as exc:
            raise AuditDigestProblem(self._cannot("read", exc)) from None

    def add(self, name: str, data: bytes) -> bool:
        try:
            if not write_private(self.path / name, data, replace=False):
                return False
            self._sync_directory()
        except OSError as exc:
            raise AuditDigestProblem(self._cannot("write to", exc)) from None
        return True

    def _sync_directory(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _cannot(self, verb: str, exc: OSError) -> str:
        return f"cannot {verb} the audit digest directory {self.path}: {exc.strerror or exc}"
