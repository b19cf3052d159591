"""IP allowlists: up to 30 IPv4/IPv6 addresses or CIDR ranges per key."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from sandex.keys.errors import InvalidAllowlist

__all__ = ["MAX_ALLOWLIST_ENTRIES", "IpAllowlist"]

MAX_ALLOWLIST_ENTRIES: Final = 30
_MIN_PREFIX: Final = {4: 8, 6: 16}
"""Ranges broader than this would make an allowlist meaningless (0.0.0.0/0 allows everyone)."""

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_entry(raw: str) -> _Network:
    text = raw.strip()
    if not text:
        raise InvalidAllowlist("empty IP allowlist entry")
    if "%" in text:
        raise InvalidAllowlist(f"{text!r}: IPv6 zone ids (%...) have no meaning in an allowlist")
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            loose = ipaddress.ip_network(text, strict=False)
            raise InvalidAllowlist(
                f"{text!r} has host bits set; did you mean {loose.with_prefixlen}?"
            ) from None
        raise InvalidAllowlist(f"{text!r} is not an IPv4/IPv6 address or CIDR range") from None
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
        mapped = net.network_address.ipv4_mapped
        net = ipaddress.ip_network(f"{mapped}/{max(net.prefixlen - 96, 0)}")
    if net.prefixlen < _MIN_PREFIX[net.version]:
        raise InvalidAllowlist(
            f"{text!r} is too broad (IPv{net.version} ranges must be /{_MIN_PREFIX[net.version]}"
            " or narrower)"
        )
    return net


def _render(net: _Network) -> str:
    return str(net.network_address) if net.num_addresses == 1 else net.with_prefixlen


@dataclass(frozen=True)
class IpAllowlist:
    """A normalised, validated allowlist. Empty means "no IP restriction".

    Entries are canonical strings: a single address without a prefix
    (``203.0.113.7``, ``2001:db8::1``), a range with one (``10.0.0.0/24``).
    """

    entries: tuple[str, ...] = ()
    _exact: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)
    _networks: tuple[_Network, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nets = [_parse_entry(e) for e in self.entries]
        object.__setattr__(
            self, "_exact", frozenset(_render(n) for n in nets if n.num_addresses == 1)
        )
        object.__setattr__(self, "_networks", tuple(n for n in nets if n.num_addresses > 1))

    @classmethod
    def parse(cls, items: Iterable[str]) -> IpAllowlist:
        """Validate and normalise ``items``; duplicates are dropped, order kept."""
        rendered: list[str] = []
        for raw in items:
            text = _render(_parse_entry(raw))
            if text not in rendered:
                rendered.append(text)
        if len(rendered) > MAX_ALLOWLIST_ENTRIES:
            raise InvalidAllowlist(
                f"{len(rendered)} IP allowlist entries; at most {MAX_ALLOWLIST_ENTRIES} are allowed"
            )
        return cls(tuple(rendered))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def allows(self, ip: str) -> bool:
        """True when ``ip`` is in the list (an empty list allows nothing: check ``bool`` first)."""
        if ip in self._exact:
            return True
        try:
            addr: _Address = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if str(addr) in self._exact:
            return True
        return any(addr in net for net in self._networks if net.version == addr.version)

    def covers(self, other: IpAllowlist) -> bool:
        """True when every address ``other`` allows is allowed here (used to detect widening)."""
        if not self:
            return True
        if not other:
            return False
        mine = [ipaddress.ip_network(e) for e in self.entries]
        for entry in other.entries:
            net = ipaddress.ip_network(entry)
            if not any(
                net.version == m.version and net.subnet_of(m)  # type: ignore[arg-type]
                for m in mine
            ):
                return False
        return True
