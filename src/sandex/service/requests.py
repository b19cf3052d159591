"""The parts of an HTTP request that authentication reads, and what it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sandex.keys import IpAllowlist, KeyKind, Permission, RiskPolicy

__all__ = ["SignedRequest", "Principal"]


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request as received: raw query and body bytes, lower-cased header names."""

    method: str
    path: str
    query: bytes
    body: bytes
    headers: Mapping[str, str]
    client_ip: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a successfully authenticated request acts for, and what it may do."""

    user_id: int
    key_id: int
    key_prefix: str
    kind: KeyKind
    permissions: Permission
    policy: RiskPolicy
    allowlist: IpAllowlist
    created_at: int
    expires_at: int | None
    trade_lapses_at: int | None
