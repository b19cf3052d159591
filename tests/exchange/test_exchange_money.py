"""Fixed-point money: parsing request strings, units, and Binance's eight-decimal format."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandex.exchange import OrderRejected, format_units, from_units, parse_number, to_units
from sandex.exchange.money import NUMBER_PATTERN, decimals


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.00100000", "0.001"), ("60000", "60000"), ("60000.5", "60000.5"), ("0", "0")],
)
def test_parse_number_accepts_binance_decimals(text, value):
    assert parse_number(text, "price") == Decimal(value)


@pytest.mark.parametrize("text", ["-1", "1e-3", " 1", "1.", ".5", "1,5", "", "NaN", "1.2.3"])
def test_parse_number_refuses_what_binance_refuses(text):
    with pytest.raises(OrderRejected) as info:
        parse_number(text, "quantity")
    assert info.value.code == -1100
    assert info.value.msg == (
        f"Illegal characters found in parameter 'quantity'; legal range is '{NUMBER_PATTERN}'."
    )


def test_more_than_eight_decimals_is_too_much_precision():
    with pytest.raises(OrderRejected) as info:
        parse_number("0.000000001", "price")
    assert (info.value.code, info.value.msg) == (-1111, "Parameter 'price' has too much precision.")


def test_trailing_zeros_do_not_count_as_precision():
    assert parse_number("1.0000000000", "price") == 1


def test_decimals_counts_significant_places():
    assert decimals(Decimal("10")) == 0
    assert decimals(Decimal("0.00100000")) == 3
    assert decimals(Decimal("1E+3")) == 0


def test_units_round_trip_exactly():
    assert to_units(Decimal("60000.01"), 2) == 6_000_001
    assert from_units(6_000_001, 2) == Decimal("60000.01")
    assert to_units(Decimal("0.001"), 2) is None  # not a whole number of cents


def test_format_units_shows_eight_decimals():
    assert format_units(100, 5) == "0.00100000"
    assert format_units(6_000_001, 2) == "60000.01000000"
    assert format_units(0, 2) == "0.00000000"
    assert format_units(-150, 2) == "-1.50000000"


def test_format_units_cuts_beyond_eight_decimals():
    # ETHBTC notional: 9 decimals (price 1e-5 x quantity 1e-4), Binance shows 8
    assert format_units(5_123_456_789, 9) == "5.12345678"
    assert format_units(123, 3, places=0) == "0"
