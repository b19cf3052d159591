"""The client's IP: the socket peer, or what a trusted proxy says it forwarded for.

One header is believed, the one the operator's proxies write
(``SANDEX_FORWARDED_HEADER``: ``x-forwarded-for``, the default, or ``forwarded``), and
only when the peer is one of ``SANDEX_TRUSTED_PROXIES``. It is read from the right,
skipping trusted proxies, and the first other address is the client. The other header
is never believed: a proxy configured the usual nginx way appends to
``X-Forwarded-For`` and passes a client's own ``Forwarded`` through unchanged, so
believing both would let a client name any address it likes. A header from an
untrusted peer is ignored, so it cannot talk its way past an IP allowlist.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["ClientIpResolver", "FORWARDED_HEADERS", "parse_networks"]

FORWARDED_HEADERS: Final = ("x-forwarded-for", "forwarded")
"""The headers a trusted proxy may be configured to write (the first is the default)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` → networks (ValueError on a bad entry)."""
    nets = []
    for raw in text.replace(";", ",").split(","):
        item = raw.strip()
        if item:
            nets.append(ipaddress.ip_network(item, strict=False))
    return tuple(nets)


def _address(text: str) -> Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _forwarded_for(value: str) -> list[str]:
    out = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, _, val = pair.strip().partition("=")
            if name.strip().lower() == "for":
                out.append(val)
    return out


def _xff_hops(value: str) -> list[str]:
    return value.split(",")


class ClientIpResolver:
    def __init__(self, trusted: Iterable[Network] = (), header: str = FORWARDED_HEADERS[0]) -> None:
        if header not in FORWARDED_HEADERS:
            raise ValueError(f"the forwarded header must be one of {', '.join(FORWARDED_HEADERS)}")
        self._trusted = tuple(trusted)
        self._header = header
        self._hops = _forwarded_for if header == "forwarded" else _xff_hops

    def _is_trusted(self, addr: Address) -> bool:
        return any(addr.version == net.version and addr in net for net in self._trusted)

    def resolve(self, peer: str | None, headers: Mapping[str, str]) -> str:
        if not self._trusted and peer and not peer.startswith("::ffff:"):
            return peer  # no proxies to believe: the peer as the server reported it
        peer_addr = _address(peer) if peer else None
        if peer_addr is None:
            return peer or "0.0.0.0"  # noqa: S104 (not a bind address: an unknown peer)
        if not self._trusted or not self._is_trusted(peer_addr):
            return str(peer_addr)
        value = headers.get(self._header)
        hops = self._hops(value) if value else []
        client = peer_addr
        for hop in reversed(hops):
            addr = _address(hop)
            if addr is None:
                break  # garbage: trust nothing further left
            client = addr
            if not self._is_trusted(addr):
                break
        return str(client)
