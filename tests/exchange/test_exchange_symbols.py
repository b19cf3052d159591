"""Symbols and filters: units, the edge conversions, Binance's filter checks and exchangeInfo."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandex.exchange import (
    InvalidMarket,
    LotSize,
    Notional,
    OrderRejected,
    OrderType,
    PriceFilter,
    Rejected,
    Symbol,
    default_symbols,
)
from sandex.exchange.symbols import UNLIMITED, symbols_by_name

D = Decimal


def symbol(**overrides) -> Symbol:
    fields = dict(
        name="ABCUSDT",
        base_asset="ABC",
        quote_asset="USDT",
        price_filter=PriceFilter(D("0.05"), D("1000"), D("0.05")),
        lot_size=LotSize(D("0.1"), D("100"), D("0.1")),
        notional=Notional(D("5")),
    )
    fields.update(overrides)
    return Symbol(**fields)


def test_default_market_set():
    by_name = symbols_by_name(default_symbols())
    assert set(by_name) == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "ETHBTC"}
    btc = by_name["BTCUSDT"]
    assert (btc.base_asset, btc.quote_asset) == ("BTC", "USDT")
    assert (btc.price_scale, btc.quantity_scale, btc.quote_scale) == (2, 5, 7)
    # every default market settles in whole ledger units (8 decimals)
    assert all(s.quote_scale <= 8 for s in by_name.values())
    for s in by_name.values():
        assert s.order_types == (
            OrderType.LIMIT,
            OrderType.LIMIT_MAKER,
            OrderType.MARKET,
            OrderType.STOP_LOSS,
            OrderType.STOP_LOSS_LIMIT,
            OrderType.TAKE_PROFIT,
            OrderType.TAKE_PROFIT_LIMIT,
        )


def test_edge_conversions():
    btc = symbols_by_name(default_symbols())["BTCUSDT"]
    assert btc.price_units("60000.01") == 6_000_001
    assert btc.price_units("60000.01000000") == 6_000_001
    assert btc.quantity_units("0.00100000") == 100
    assert btc.quote_units("100") == 100 * 10**7
    assert btc.quote_units("0.123456789"[:10]) == 1_234_567  # cut to the quote unit
    assert btc.format_price(6_000_001) == "60000.01000000"
    assert btc.format_quantity(100) == "0.00100000"
    assert btc.format_quote(1) == "0.00000010"


def test_off_the_grid_values_fail_their_filter_at_the_edge():
    btc = symbols_by_name(default_symbols())["BTCUSDT"]
    with pytest.raises(OrderRejected) as info:
        btc.price_units("60000.001")
    assert (info.value.code, info.value.msg) == (-1013, "Filter failure: PRICE_FILTER")
    with pytest.raises(OrderRejected) as info:
        btc.quantity_units("0.000001")
    assert (info.value.code, info.value.msg) == (-1013, "Filter failure: LOT_SIZE")
    with pytest.raises(OrderRejected) as info:
        btc.price_units("-1")
    assert info.value.code == -1100


def test_price_filter_checks_min_max_and_tick():
    rules = symbol().rules  # tick 0.05: price units are cents, the grid steps by 5
    assert all(good in rules.prices for good in (5, 100_000, 105))
    for bad in (0, 4, 106, 100_005):
        assert bad not in rules.prices


def test_lot_size_and_market_lot_size():
    s = symbol(market_lot_size=LotSize(D("0.1"), D("10"), D("0.1")))
    rules = s.rules
    assert rules.check_quantity(1) is None
    assert rules.check_quantity(1000) is None
    assert rules.check_quantity(0) == Rejected(-1013, "Filter failure: LOT_SIZE")
    assert rules.check_quantity(1001) == Rejected(-1013, "Filter failure: LOT_SIZE")
    assert rules.check_quantity(101, market=True) == Rejected(
        -1013, "Filter failure: MARKET_LOT_SIZE"
    )
    assert rules.check_quantity(101) is None  # LIMIT orders ignore MARKET_LOT_SIZE


def test_lot_size_step_is_counted_from_the_minimum():
    # Binance: (quantity - minQty) % stepSize == 0
    rules = symbol(lot_size=LotSize(D("0.15"), D("100"), D("0.1"))).rules
    assert rules.check_quantity(25) is None  # 0.25
    assert rules.check_quantity(20) == Rejected(-1013, "Filter failure: LOT_SIZE")


def test_notional_limits_and_market_application():
    s = symbol(notional=Notional(D("5"), True, D("100"), False))
    rules = s.rules
    # quote units: price (2 decimals) x quantity (1 decimal) = 3 decimals
    assert rules.check_notional(5_000) is None
    assert rules.check_notional(4_999) == Rejected(-1013, "Filter failure: NOTIONAL")
    assert rules.check_notional(100_001) == Rejected(-1013, "Filter failure: NOTIONAL")
    assert rules.check_market_notional(4_999) == Rejected(-1013, "Filter failure: NOTIONAL")
    assert rules.check_market_notional(10**9) is None  # max not applied to MARKET


def test_zero_turns_a_limit_off():
    s = symbol(price_filter=PriceFilter(D(0), D(0), D("0.05")), lot_size=LotSize(D(0), D(0), D(0)))
    rules = s.rules
    assert rules.prices.start == 5 and rules.prices.stop == UNLIMITED + 1
    assert rules.check_quantity(123_456_789) is None
    assert rules.check_quantity(0) == Rejected(-1013, "Filter failure: LOT_SIZE")


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"name": "ABCUSD"}, r"is not ABC \+ USDT"),
        ({"name": "abcusdt"}, "upper-case"),
        ({"price_filter": PriceFilter(D(2), D(1), D("0.01"))}, "above maximum"),
        ({"lot_size": LotSize(D(-1), D(1), D("0.1"))}, "negative"),
        ({"lot_size": LotSize(D("0.000000001"), D(1), D("0.1"))}, "eight decimals"),
        ({"order_types": ()}, "at least one order type"),
        ({"allowed_stp_modes": ()}, "not allowed"),
        ({"notional": Notional(D(-1))}, "negative"),
    ],
)
def test_inconsistent_definitions_are_refused(overrides, words):
    with pytest.raises(InvalidMarket, match=words):
        symbol(**overrides)


def test_duplicate_symbols_are_refused():
    with pytest.raises(InvalidMarket, match="twice"):
        symbols_by_name([symbol(), symbol()])


def test_exchange_info_has_the_shape_ccxt_reads():
    info = symbols_by_name(default_symbols())["BTCUSDT"].exchange_info()
    assert info["symbol"] == "BTCUSDT"
    assert (info["baseAsset"], info["quoteAsset"], info["status"]) == ("BTC", "USDT", "TRADING")
    assert info["orderTypes"] == [
        "LIMIT",
        "LIMIT_MAKER",
        "MARKET",
        "STOP_LOSS",
        "STOP_LOSS_LIMIT",
        "TAKE_PROFIT",
        "TAKE_PROFIT_LIMIT",
    ]
    filters = {f["filterType"]: f for f in info["filters"]}
    assert filters["PRICE_FILTER"] == {
        "filterType": "PRICE_FILTER",
        "minPrice": "0.01000000",
        "maxPrice": "1000000.00000000",
        "tickSize": "0.01000000",
    }
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["MARKET_LOT_SIZE"]["minQty"] == "0.00000000"
    assert filters["NOTIONAL"] == {
        "filterType": "NOTIONAL",
        "minNotional": "5.00000000",
        "applyMinToMarket": True,
        "maxNotional": "9000000.00000000",
        "applyMaxToMarket": False,
        "avgPriceMins": 5,
    }
    assert filters["MAX_NUM_ORDERS"]["maxNumOrders"] == 200
    assert info["defaultSelfTradePreventionMode"] == "EXPIRE_TAKER"
    assert info["quoteOrderQtyMarketAllowed"] is True
