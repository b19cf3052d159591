"""Files only their owner may read, written whole: the master key file, audit digests."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes, *, replace: bool) -> bool:
    """Write ``data`` to ``path`` (mode 0600, its directory 0700 if new) so that no reader
    ever sees half of it: a temporary file, fsync, then a hard link (``replace=False``:
    an existing ``path`` is kept and False returned, so of two writers exactly one wins)
    or a rename over ``path`` (``replace=True``). Raises OSError."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
    finally:
        tmp.unlink(missing_ok=True)
    return True
