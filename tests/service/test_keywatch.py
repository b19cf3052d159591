"""A key changed by another process reaches this process's cache through the change feed."""

from __future__ import annotations

import pytest

from conftest import NOW
from sandex.bootstrap import Sandex, open_sandex
from sandex.config import Settings
from sandex.keys import Access, Operation, Permission
from sandex.keys.reference import parse_key_ref
from sandex.service import ApiKeyRejected, PermissionMissing
from support import OPERATOR, make_key, make_user, signed_request


def test_revocation_in_another_process_reaches_this_cache_on_the_next_poll(
    sandex: Sandex, settings: Settings
) -> None:
    with open_sandex(settings) as other:  # stands for another worker / server / the CLI
        sandex.key_watch.start(NOW)
        user = make_user(other, now=NOW)
        key = make_key(other, user, now=NOW, permissions=Permission.SPOT_TRADE, ips=("127.0.0.1",))
        request = lambda ts: signed_request(key.api_key, secret=key.secret, timestamp=ts)  # noqa: E731
        sandex.auth.authenticate(request(NOW), NOW)  # now cached here
        other.keys.revoke(parse_key_ref(key.api_key), now=NOW + 10, actor=OPERATOR)
        sandex.auth.authenticate(request(NOW + 20), NOW + 20)  # the cache does not know yet
        assert sandex.key_watch.poll(NOW + 30) == 1
        with pytest.raises(ApiKeyRejected):
            sandex.auth.authenticate(request(NOW + 40), NOW + 40)
        assert sandex.key_watch.poll(NOW + 50) == 0  # each change is applied once


def test_freeze_in_another_process_stops_trading_here(sandex: Sandex, settings: Settings) -> None:
    trade = Access(Permission.SPOT_TRADE, Operation.PLACE_ORDER)
    with open_sandex(settings) as other:
        sandex.key_watch.start(NOW)
        user = make_user(other, now=NOW)
        key = make_key(other, user, now=NOW, permissions=Permission.SPOT_TRADE, ips=("127.0.0.1",))
        sandex.auth.authenticate(
            signed_request(key.api_key, secret=key.secret, timestamp=NOW), NOW, trade
        )
        other.keys.freeze(parse_key_ref(key.api_key), now=NOW + 10, actor=OPERATOR)
        sandex.key_watch.poll(NOW + 20)
        with pytest.raises(PermissionMissing):
            sandex.auth.authenticate(
                signed_request(key.api_key, secret=key.secret, timestamp=NOW + 30), NOW + 30, trade
            )


def test_changes_before_start_are_not_replayed(sandex: Sandex) -> None:
    user = make_user(sandex, now=NOW)
    key = make_key(sandex, user, now=NOW)
    sandex.keys.freeze(parse_key_ref(key.api_key), now=NOW + 1, actor=OPERATOR)
    sandex.key_watch.start(NOW + 2)
    assert sandex.key_watch.poll(NOW + 3) == 0
