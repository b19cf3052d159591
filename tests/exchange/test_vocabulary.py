"""Binance's vocabulary (issue 11): its codes and messages are spelled once, in
:mod:`sandex.exchange.rejections`, and its parameter readers answer as Binance does."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from sandex.exchange import OrderRejected, Side
from sandex.exchange import rejections as vocabulary
from sandex.exchange.rejections import INVALID_SIDE

SRC: Final = Path(vocabulary.__file__).resolve().parents[1]
PHRASES: Final = (
    "Mandatory parameter '",
    "Illegal characters found in parameter '",
    "must be sent, but both were empty/null!",
    "Data sent for parameter '",
    "Invalid symbol.",
    "Unsupported order combination.",
    "Order does not exist.",
)
NOT_YET_MOVED: Final = {"http/management.py"}
"""The management API's own JSON-body refusals (a separate change moves them)."""
KNOWN: Final = {"BTCUSDT": "the BTCUSDT market", "ETHBTC": "the ETHBTC market"}


def _refusal(call: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(OrderRejected) as refused:
        call()
    return refused.value.code, refused.value.msg


def test_binance_messages_are_spelled_only_in_the_vocabulary() -> None:
    spelled = {
        str(p.relative_to(SRC)): [phrase for phrase in PHRASES if phrase in p.read_text()]
        for p in SRC.rglob("*.py")
        if p.name != "rejections.py" and str(p.relative_to(SRC)) not in NOT_YET_MOVED
    }
    assert {path: found for path, found in spelled.items() if found} == {}


@pytest.mark.parametrize(
    ("sent", "refusal"),
    [
        ({}, (-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")),
        ({"symbol": ""}, (-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")),
        ({"symbol": "btcusdt"}, (-1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.")),
        ({"symbol": "BTC USDT"}, (-1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.")),
        ({"symbol": "BTCUSDT\n"}, (-1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.")),
        ({"symbol": "NOPEUSDT"}, (-1121, "Invalid symbol.")),
    ],
)  # fmt: skip
def test_a_symbol_is_read_as_binance_reads_it(sent: dict[str, str], refusal: object) -> None:
    assert _refusal(lambda: vocabulary.symbol(sent, KNOWN)) == refusal


def test_a_listed_symbol_is_found_as_sent() -> None:
    assert vocabulary.symbol({"symbol": "ETHBTC"}, KNOWN) == "the ETHBTC market"
    assert vocabulary.symbol_list({"symbols": '["ETHBTC","BTCUSDT","ETHBTC"]'}, KNOWN) == [
        "the ETHBTC market",
        "the BTCUSDT market",
    ]


def test_a_symbols_array_is_checked_name_by_name() -> None:
    legal = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'
    illegal = (-1100, f"Illegal characters found in parameter 'symbols'; legal range is '{legal}'.")
    assert _refusal(lambda: vocabulary.symbol_list({"symbols": '["ethbtc"]'}, KNOWN)) == illegal
    assert _refusal(lambda: vocabulary.symbol_list({"symbols": "ETHBTC"}, KNOWN)) == illegal
    assert _refusal(lambda: vocabulary.symbol_list({"symbols": "[]"}, KNOWN))[0] == -1102
    assert _refusal(lambda: vocabulary.symbol_list({"symbols": '["NOPE"]'}, KNOWN))[0] == -1121
    assert _refusal(
        lambda: vocabulary.symbol_list({"symbols": '["ETHBTC","BTCUSDT"]'}, KNOWN, 1)
    ) == (-1101, "Too many values sent for parameter 'symbols', max is 1.")


def test_numbers_ids_and_limits() -> None:
    assert vocabulary.unsigned({"orderId": "42"}, "orderId") == 42
    assert vocabulary.unsigned({"orderId": ""}, "orderId") is None
    assert _refusal(lambda: vocabulary.unsigned({"orderId": "-1"}, "orderId")) == (
        -1100,
        "Illegal characters found in parameter 'orderId'.",
    )
    assert _refusal(lambda: vocabulary.unsigned({"orderId": str(2**63)}, "orderId"))[0] == -1100
    assert vocabulary.limit({}, 500, 1000) == 500
    assert _refusal(lambda: vocabulary.limit({"limit": "1001"}, 500, 1000)) == (
        -1130,
        "Data sent for parameter 'limit' is not valid.",
    )
    assert vocabulary.capped_limit({"limit": "9000"}, 100, 5000) == 5000
    assert _refusal(lambda: vocabulary.long({"fromId": ""}, "fromId")) == (
        -1105,
        "Parameter 'fromId' was empty.",
    )
    assert _refusal(lambda: vocabulary.window({"startTime": "2", "endTime": "1"})) == (
        -1023,
        "Start time is greater than end time.",
    )


def test_enums_and_client_ids() -> None:
    assert vocabulary.enum_value({"side": "buy"}, "side", Side, INVALID_SIDE) is Side.BUY
    assert vocabulary.enum_value({}, "side", Side, INVALID_SIDE) is None
    assert _refusal(lambda: vocabulary.required_enum({}, "side", Side, INVALID_SIDE))[0] == -1102
    assert _refusal(lambda: vocabulary.enum_value({"side": "UP"}, "side", Side, INVALID_SIDE)) == (
        -1117,
        "Invalid side.",
    )
    assert vocabulary.client_id({"newClientOrderId": "x-AB:1/2.3"}, "newClientOrderId")
    assert _refusal(
        lambda: vocabulary.client_id({"newClientOrderId": "a b"}, "newClientOrderId")
    ) == (
        -1100,
        "Illegal characters found in parameter 'newClientOrderId';"
        " legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
    )
