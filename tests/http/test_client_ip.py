"""Which address is the client: the peer, unless a trusted proxy says otherwise."""

from __future__ import annotations

import pytest

from sandex.http.client_ip import ClientIpResolver, parse_networks


def test_without_trusted_proxies_headers_are_ignored() -> None:
    resolver = ClientIpResolver()
    assert resolver.resolve("198.51.100.1", {"x-forwarded-for": "203.0.113.7"}) == "198.51.100.1"
    assert resolver.resolve("198.51.100.1", {"forwarded": "for=203.0.113.7"}) == "198.51.100.1"


def test_an_untrusted_peer_cannot_claim_another_address() -> None:
    resolver = ClientIpResolver(parse_networks("10.0.0.0/8"))
    assert resolver.resolve("198.51.100.1", {"x-forwarded-for": "203.0.113.7"}) == "198.51.100.1"


def test_trusted_chain_is_read_from_the_right() -> None:
    resolver = ClientIpResolver(parse_networks("10.0.0.0/8, 192.168.0.1"))
    headers = {"x-forwarded-for": "6.6.6.6, 203.0.113.7, 192.168.0.1"}
    # 6.6.6.6 was written by the client itself; 203.0.113.7 is what our proxies saw
    assert resolver.resolve("10.0.0.2", headers) == "203.0.113.7"
    assert (
        resolver.resolve("10.0.0.2", {"x-forwarded-for": "garbage, 203.0.113.7"}) == "203.0.113.7"
    )
    assert resolver.resolve("10.0.0.2", {}) == "10.0.0.2"


def test_forwarded_header_forms() -> None:
    resolver = ClientIpResolver(parse_networks("10.0.0.0/8"), "forwarded")
    assert (
        resolver.resolve("10.0.0.2", {"forwarded": 'for="[2001:db8::1]:4711";proto=https'})
        == "2001:db8::1"
    )
    assert (
        resolver.resolve("10.0.0.2", {"forwarded": "for=203.0.113.7:5000, for=10.0.0.3"})
        == "203.0.113.7"
    )


def test_a_client_written_forwarded_header_is_never_believed_by_default() -> None:
    """The nginx-style proxy appends to X-Forwarded-For and passes the client's own
    Forwarded through: an attacker's ``Forwarded: for=<allowlisted IP>`` must not win."""
    resolver = ClientIpResolver(parse_networks("10.0.0.0/8"))
    headers = {"forwarded": "for=203.0.113.7", "x-forwarded-for": "198.51.100.66"}
    assert resolver.resolve("10.0.0.2", headers) == "198.51.100.66"
    assert resolver.resolve("10.0.0.2", {"forwarded": "for=203.0.113.7"}) == "10.0.0.2"


def test_with_forwarded_configured_x_forwarded_for_is_never_believed() -> None:
    resolver = ClientIpResolver(parse_networks("10.0.0.0/8"), "forwarded")
    headers = {"forwarded": "for=198.51.100.66", "x-forwarded-for": "203.0.113.7"}
    assert resolver.resolve("10.0.0.2", headers) == "198.51.100.66"
    assert resolver.resolve("10.0.0.2", {"x-forwarded-for": "203.0.113.7"}) == "10.0.0.2"


def test_only_the_two_known_headers_can_be_configured() -> None:
    with pytest.raises(ValueError):
        ClientIpResolver((), "x-real-ip")


def test_ipv4_mapped_peers_are_plain_ipv4() -> None:
    assert ClientIpResolver().resolve("::ffff:127.0.0.1", {}) == "127.0.0.1"


def test_bad_trusted_proxy_setting_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/8, not-a-network")
