"""Settings, read from the environment (and command-line overrides) in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sandex.accounts import DEFAULT_HASH_PARAMS, HashParams

__all__ = ["Settings", "ConfigError"]


class ConfigError(Exception):
    """A setting has a value Sandex cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None
    """PostgreSQL (or another SQLAlchemy URL); None means SQLite in ``data_dir``."""
    database_schema: str | None = None
    master_key: str | None = field(default=None, repr=False)
    """``SANDEX_MASTER_KEY``; None means the 0600 key file in ``data_dir``."""
    unrestricted_trade_days: int = 30
    password_hash: HashParams = DEFAULT_HASH_PARAMS

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, data_dir: Path | str | None = None
    ) -> Settings:
        env = os.environ if env is None else env
        directory = data_dir or env.get("SANDEX_DATA_DIR") or ".sandex"
        return cls(
            data_dir=Path(directory).expanduser().resolve(),
            database_url=env.get("SANDEX_DATABASE_URL") or None,
            database_schema=env.get("SANDEX_DATABASE_SCHEMA") or None,
            master_key=env.get("SANDEX_MASTER_KEY") or None,
            unrestricted_trade_days=_int(env, "SANDEX_UNRESTRICTED_TRADE_DAYS", 30, minimum=1),
        )
