"""Every route reads ``symbol`` the same way, as Binance does (issue 11): a lowercase
``btcusdt`` is refused with -1100 and the legal range on the order routes as on the
market data routes; no route upper-cases it. Missing is -1102; a well-formed name the
exchange does not list is -1121."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

import pytest
from test_spot_routes import LIMIT_BUY, ORDER, Spot, with_

from sandex.bootstrap import Sandex
from sandex.http import Gateway

Make = Callable[..., tuple[Sandex, Gateway]]

ILLEGAL: Final = (
    400,
    -1100,
    "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.",
)
MISSING: Final = (
    400,
    -1102,
    "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
)
UNKNOWN: Final = (400, -1121, "Invalid symbol.")

OCO: Final = [
    ("side", "SELL"),
    ("quantity", "0.001"),
    ("aboveType", "LIMIT_MAKER"),
    ("abovePrice", "60000"),
    ("belowType", "STOP_LOSS"),
    ("belowStopPrice", "40000"),
]
ROUTES: Final = {
    # spot orders
    "new order": ("POST", ORDER, with_(LIMIT_BUY, symbol="")),
    "test order": ("POST", "/api/v3/order/test", with_(LIMIT_BUY, symbol="")),
    "query order": ("GET", ORDER, [("orderId", "1")]),
    "cancel order": ("DELETE", ORDER, [("orderId", "1")]),
    "cancel all": ("DELETE", "/api/v3/openOrders", []),
    "all orders": ("GET", "/api/v3/allOrders", []),
    "my trades": ("GET", "/api/v3/myTrades", []),
    # order lists
    "new oco": ("POST", "/api/v3/orderList/oco", OCO),
    "cancel order list": ("DELETE", "/api/v3/orderList", [("orderListId", "1")]),
    # account information
    "commission": ("GET", "/api/v3/account/commission", []),
    "prevented matches": ("GET", "/api/v3/myPreventedMatches", [("orderId", "1")]),
    # market data
    "depth": ("GET", "/api/v3/depth", []),
    "trades": ("GET", "/api/v3/trades", []),
    "klines": ("GET", "/api/v3/klines", [("interval", "1m")]),
    "average price": ("GET", "/api/v3/avgPrice", []),
    # tickers
    "24h ticker": ("GET", "/api/v3/ticker/24hr", []),
    "price ticker": ("GET", "/api/v3/ticker/price", []),
    "rolling ticker": ("GET", "/api/v3/ticker", []),
    "trading day ticker": ("GET", "/api/v3/ticker/tradingDay", []),
}


@pytest.fixture
def spot(make_gateway: Make) -> Iterator[Spot]:
    made = Spot(*make_gateway(simulate=False))
    yield made
    made.trading.close()


def _with_symbol(params: list[tuple[str, str]], symbol: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in params if k != "symbol"] + [("symbol", symbol)]


def test_a_lowercase_symbol_is_refused_alike_on_every_route(spot: Spot) -> None:
    answers = {
        name: spot.error(method, path, _with_symbol(params, "btcusdt"))
        for name, (method, path, params) in ROUTES.items()
    }
    assert answers == dict.fromkeys(ROUTES, ILLEGAL)


def test_an_unlisted_symbol_is_invalid_on_every_route(spot: Spot) -> None:
    answers = {
        name: spot.error(method, path, _with_symbol(params, "NOPEUSDT"))
        for name, (method, path, params) in ROUTES.items()
    }
    assert answers == dict.fromkeys(ROUTES, UNKNOWN)


def test_a_missing_symbol_is_mandatory_where_a_route_needs_one(spot: Spot) -> None:
    needs = [n for n in ROUTES if "ticker" not in n]  # tickers list every symbol, or -1102
    answers = {name: spot.error(*ROUTES[name][:2], ROUTES[name][2]) for name in needs}
    assert answers == dict.fromkeys(needs, MISSING)


def test_the_uppercase_symbol_is_served(spot: Spot) -> None:
    assert spot.place(LIMIT_BUY)["symbol"] == "BTCUSDT"
    assert spot.ok("GET", "/api/v3/ticker/price", [("symbol", "BTCUSDT")])["symbol"] == "BTCUSDT"


@pytest.mark.parametrize("path", ["/api/v3/ticker/24hr", "/api/v3/ticker/price", "/api/v3/ticker"])
def test_a_lowercase_name_in_a_symbols_array_is_illegal(spot: Spot, path: str) -> None:
    status, code, msg = spot.error("GET", path, [("symbols", '["BTCUSDT","ethbtc"]')])
    assert (status, code) == (400, -1100)
    assert msg.startswith("Illegal characters found in parameter 'symbols'; legal range is")


def test_margin_pairs_refuse_a_lowercase_symbol_and_list_none(spot: Spot) -> None:
    for path in ("/sapi/v1/margin/allPairs", "/sapi/v1/margin/isolated/allPairs"):
        assert spot.error("GET", path, [("symbol", "btcusdt")]) == ILLEGAL
        assert spot.ok("GET", path, [("symbol", "BTCUSDT")]) == []
