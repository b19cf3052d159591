"""Settings, read from the environment (and command-line overrides) in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sandex.accounts import DEFAULT_HASH_PARAMS, HashParams, SignUpMode

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


def _rate(env: Mapping[str, str], name: str, default: str) -> Decimal:
    raw = (env.get(name) or default).strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a rate such as 0.001 (0.1 %), not {raw!r}") from None
    if not value.is_finite() or not 0 <= value < 1:
        raise ConfigError(f"{name} must be at least 0 and below 1 (0.001 is 0.1 %)")
    return value


def _balance(env: Mapping[str, str], name: str, default: str) -> tuple[tuple[str, Decimal], ...]:
    """``"10000 USDT"`` or ``"10000 USDT, 0.5 BTC"``; ``"0"`` or empty means none."""
    raw = env.get(name)
    raw = default if raw is None else raw
    out: list[tuple[str, Decimal]] = []
    for part in raw.split(","):
        words = part.split()
        if not words or words == ["0"]:
            continue
        try:
            amount = Decimal(words[0])
        except InvalidOperation:
            amount = Decimal(-1)
        if len(words) != 2 or not amount.is_finite() or amount <= 0 or not words[1].isalnum():
            raise ConfigError(f"{name} must read like '10000 USDT' or '10000 USDT, 0.5 BTC'")
        out.append((words[1].upper(), amount))
    return tuple(out)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, not {raw!r}")


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = (env.get(name) or "").strip()
    return Path(raw).expanduser().resolve() if raw else None


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
    """``SANDEX_TRUSTED_PROXIES``: CIDRs whose forwarded header is believed."""
    forwarded_header: str = "x-forwarded-for"
    """``SANDEX_FORWARDED_HEADER``: the one header trusted proxies write
    (``x-forwarded-for`` or ``forwarded``); the other is never believed."""
    ip_weight_1m: int = 6000
    key_weight_1m: int = 6000
    orders_10s: int = 100
    orders_1d: int = 200_000
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    starting_balance: tuple[tuple[str, Decimal], ...] = (("USDT", Decimal(10_000)),)
    """``SANDEX_STARTING_BALANCE``: what every new user (and the demo user) starts with."""
    durability: str = "group"
    """``SANDEX_DURABILITY``: ``group`` (group commit) or ``transaction`` (one per request)."""
    simulate: bool = True
    """``SANDEX_SIMULATE``: run the simulated market makers (0 turns them off)."""
    market_seed: int = 7
    market_tick_ms: int = 500
    exchange: bool = True
    """``SANDEX_EXCHANGE``: serve the spot exchange's routes (0: the key service alone)."""
    engine: str = "embedded"
    """``SANDEX_ENGINE``: ``embedded`` (the engine runs in this process) or ``remote`` (it
    runs in ``sandex engine``, reached over Redis; ``sandex serve --workers N`` starts one)."""
    engine_timeout_ms: int = 5000
    """``SANDEX_ENGINE_TIMEOUT_MS``: how long a gateway waits for the engine's answer before
    it answers -1007 (execution status unknown)."""
    signup: SignUpMode = SignUpMode.OPEN
    """``SANDEX_SIGNUP``: ``open``, ``invite`` or ``closed`` (who may sign up through the API;
    ``sandex serve`` makes the default ``invite`` when it listens beyond loopback)."""
    signup_per_hour: int = 5
    """``SANDEX_SIGNUP_PER_HOUR``: sign-ups through the API from one address in an hour."""
    audit_digest_dir: Path | None = None
    """``SANDEX_AUDIT_DIGEST_DIR``: None means ``audit-digests`` in ``data_dir``."""
    audit_digest_interval: int = 300
    """``SANDEX_AUDIT_DIGEST_INTERVAL``: seconds between a server's audit digests."""
    ws_ping_interval_s: int = 20
    """``SANDEX_WS_PING_INTERVAL``: seconds between the server's pings on a WebSocket."""
    ws_pong_timeout_s: int = 60
    """``SANDEX_WS_PONG_TIMEOUT``: seconds a WebSocket client has to answer a ping."""

    @property
    def digest_dir(self) -> Path:
        """Where signed audit digests are written (best on another disk or host)."""
        return self.audit_digest_dir or self.data_dir / "audit-digests"

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
            forwarded_header=_choice(
                env, "SANDEX_FORWARDED_HEADER", ("x-forwarded-for", "forwarded")
            ),
            ip_weight_1m=_int(env, "SANDEX_IP_WEIGHT_1M", 6000, minimum=1),
            key_weight_1m=_int(env, "SANDEX_KEY_WEIGHT_1M", 6000, minimum=1),
            orders_10s=_int(env, "SANDEX_ORDERS_10S", 100, minimum=1),
            orders_1d=_int(env, "SANDEX_ORDERS_1D", 200_000, minimum=1),
            maker_fee=_rate(env, "SANDEX_MAKER_FEE", "0.001"),
            taker_fee=_rate(env, "SANDEX_TAKER_FEE", "0.001"),
            starting_balance=_balance(env, "SANDEX_STARTING_BALANCE", "10000 USDT"),
            durability=_choice(env, "SANDEX_DURABILITY", ("group", "transaction")),
            simulate=_flag(env, "SANDEX_SIMULATE", True),
            market_seed=_int(env, "SANDEX_MARKET_SEED", 7),
            market_tick_ms=_int(env, "SANDEX_MARKET_TICK_MS", 500, minimum=50),
            exchange=_flag(env, "SANDEX_EXCHANGE", True),
            engine=_choice(env, "SANDEX_ENGINE", ("embedded", "remote")),
            engine_timeout_ms=_int(env, "SANDEX_ENGINE_TIMEOUT_MS", 5000, minimum=100),
            signup=SignUpMode(_choice(env, "SANDEX_SIGNUP", ("open", "invite", "closed"))),
            signup_per_hour=_int(env, "SANDEX_SIGNUP_PER_HOUR", 5, minimum=1),
            audit_digest_dir=_path(env, "SANDEX_AUDIT_DIGEST_DIR"),
            audit_digest_interval=_int(env, "SANDEX_AUDIT_DIGEST_INTERVAL", 300, minimum=1),
            ws_ping_interval_s=_int(env, "SANDEX_WS_PING_INTERVAL", 20, minimum=1),
            ws_pong_timeout_s=_int(env, "SANDEX_WS_PONG_TIMEOUT", 60, minimum=1),
        )
