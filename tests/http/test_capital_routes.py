"""The routes ccxt calls while it loads markets with its default options: the coin list
(``/sapi/v1/capital/config/getall``), the margin pairs and the futures listings, each
answered truthfully in Binance's shape, with Binance's security type and weight.

Before these existed, an unmodified ``ccxt.binance()`` with a key could not start: its
first request (getall) was refused, so ``load_markets`` raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from http_support import AsgiClient, now_ms, signed_query
from sandex.bootstrap import Sandex
from sandex.http import Gateway
from sandex.keys import IpAllowlist, KeySettings, Permission
from sandex.service import IssuedKey
from support import OPERATOR, make_user
from trading_support import new_exchange

GETALL = "/sapi/v1/capital/config/getall"
CROSS = "/sapi/v1/margin/allPairs"
ISOLATED = "/sapi/v1/margin/isolated/allPairs"


class Wallet:
    """A user with a READ key (usable from 127.0.0.1 only) on a started exchange."""

    def __init__(self, sx: Sandex, gateway: Gateway) -> None:
        self.trading = new_exchange(sx, simulate=sx.settings.simulate)
        gateway.services.exchange = self.trading.trading  # the routes use this one
        self.client = AsgiClient(gateway)
        self.stranger = AsgiClient(gateway, ip="10.9.8.7")
        user = make_user(sx, now=now_ms())  # queues the starting balance: 10000 USDT
        settings = KeySettings("reader", Permission.READ, IpAllowlist.parse(["127.0.0.1"]))
        self.key: IssuedKey = sx.keys.create(user.id, settings, now=now_ms(), actor=OPERATOR)
        self.trading.start(now_ms())
        self.trading.durable()

    def signed(self, path: str, client: AsgiClient | None = None) -> httpx.Response:
        assert self.key.secret is not None
        query = signed_query(self.key.secret)
        return (client or self.client).get(
            f"{path}?{query}", headers={"X-MBX-APIKEY": self.key.api_key}
        )

    def keyed(self, path: str, client: AsgiClient | None = None) -> httpx.Response:
        """The API key, no signature (Binance's MARKET_DATA)."""
        return (client or self.client).get(path, headers={"X-MBX-APIKEY": self.key.api_key})


@pytest.fixture
def wallet(make_gateway: Callable[..., tuple[Sandex, Gateway]]) -> Iterator[Wallet]:
    made = Wallet(*make_gateway(simulate=False))
    yield made
    made.trading.close()


def _weight(r: httpx.Response) -> int:
    return int(r.headers["x-mbx-used-weight-1m"])


def _refused(r: httpx.Response) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body: dict[str, Any] = r.json()
    assert set(body) == {"code", "msg"}, body
    return body


def test_every_coin_of_the_exchange_is_listed_with_the_callers_balance(wallet: Wallet) -> None:
    r = wallet.signed(GETALL)
    assert r.status_code == 200, r.text
    coins = {c["coin"]: c for c in r.json()}
    assert set(coins) == {"BTC", "ETH", "SOL", "USDT"}
    assert coins["USDT"]["free"] == "10000.00000000"
    assert coins["BTC"]["free"] == "0.00000000"
    assert coins["BTC"]["name"] == "Bitcoin"
    for coin in coins.values():
        # no wallet yet: nothing can be deposited or withdrawn, on no network
        assert coin["depositAllEnable"] is False
        assert coin["withdrawAllEnable"] is False
        assert coin["networkList"] == []
        assert coin["trading"] is True
        assert coin["locked"] == "0.00000000"


def test_the_coin_list_is_user_data_weight_10(wallet: Wallet) -> None:
    first = wallet.signed(GETALL)
    second = wallet.signed(GETALL)
    assert _weight(second) - _weight(first) == 10
    assert _refused(wallet.keyed(GETALL))["code"] == -1102  # unsigned: no timestamp
    assert _refused(wallet.signed(GETALL, wallet.stranger))["code"] == -2015


def test_there_are_no_margin_pairs(wallet: Wallet) -> None:
    # MARKET_DATA: the key alone is enough (ccxt signs it anyway; that passes too)
    assert wallet.keyed(CROSS).json() == []
    assert wallet.signed(CROSS).json() == []
    first, second = wallet.keyed(CROSS), wallet.keyed(CROSS)
    assert _weight(second) - _weight(first) == 1
    assert _refused(wallet.client.get(CROSS))["code"] == -2014  # no key
    assert _refused(wallet.keyed(CROSS, wallet.stranger))["code"] == -2015  # not allowlisted
    assert wallet.signed(ISOLATED).json() == []
    assert _refused(wallet.keyed(ISOLATED))["code"] == -1102


@pytest.mark.parametrize("path", ["/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"])
def test_the_futures_listings_have_no_symbols(wallet: Wallet, path: str) -> None:
    r = wallet.client.get(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["symbols"] == []
    assert body["timezone"] == "UTC"
