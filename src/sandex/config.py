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
    redis_url: str | None = None
    """``SANDEX_REDIS_URL``: rate-limit counters and the replay cache shared by workers."""
    redis_namespace: str = "sandex"
    trusted_proxies: str = ""
    """``SANDEX_TRUSTED_PROXIES``: CIDRs whose X-Forwarded-For / Forwarded is believed."""
    ip_weight_1m: int = 6000
    key_weight_1m: int = 6000
    orders_10s: int = 100
    orders_1d: int = 200_000

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
            redis_url=env.get("SANDEX_REDIS_URL") or None,
            redis_namespace=env.get("SANDEX_REDIS_NAMESPACE") or "sandex",
            trusted_proxies=env.get("SANDEX_TRUSTED_PROXIES", ""),
            ip_weight_1m=_int(env, "SANDEX_IP_WEIGHT_1M", 6000, minimum=1),
            key_weight_1m=_int(env, "SANDEX_KEY_WEIGHT_1M", 6000, minimum=1),
            orders_10s=_int(env, "SANDEX_ORDERS_10S", 100, minimum=1),
            orders_1d=_int(env, "SANDEX_ORDERS_1D", 200_000, minimum=1),
        )
