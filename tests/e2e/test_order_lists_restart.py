"""An acknowledged OCO survives ``kill -9``: after a restart (SQLite or PostgreSQL) the
list, its two orders with their ``orderListId`` and the single hold are as they were,
and the list can still be canceled as one.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from e2e.clients import binance_client, new_key
from e2e.conftest import Launch, server_env
from e2e.test_restart import _sigkill
from sandex.keys import Permission
from sandex.keys.envelope import MasterKey
from support import PG_URL

SYMBOL = "BTCUSDT"
TICK = Decimal("0.01")


def _px(value: Decimal) -> str:
    return str(value.quantize(TICK))


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_an_acknowledged_oco_survives_kill_9(
    start_server: Launch, tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    if database == "postgresql":
        env = server_env(
            SANDEX_DATABASE_URL=PG_URL,
            SANDEX_DATABASE_SCHEMA=request.getfixturevalue("pg_schema"),
            SANDEX_MASTER_KEY=MasterKey.generate().to_text(),
        )
    else:
        env = server_env()
    data_dir = tmp_path / "data"
    server = start_server(env=env, data_dir=data_dir)
    with server.open() as sx:
        creds = new_key(
            sx,
            "e2e-oco-restart@example.com",
            label="oco",
            permissions=Permission.READ | Permission.SPOT_TRADE,
        )
    client = binance_client(server.base, creds)
    deadline = time.monotonic() + 5.0
    while (client.get_asset_balance("USDT") or {}).get("free") != "10000.00000000":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    client.order_market_buy(symbol=SYMBOL, quantity="0.01")
    book = client.get_order_book(symbol=SYMBOL, limit=5)
    bid, ask = Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])
    placed = client.order_oco_sell(
        symbol=SYMBOL,
        quantity="0.005",
        listClientOrderId="survivor",
        aboveType="LIMIT_MAKER",
        abovePrice=_px(ask * Decimal("1.3")),
        belowType="STOP_LOSS_LIMIT",
        belowStopPrice=_px(bid * Decimal("0.6")),
        belowPrice=_px(bid * Decimal("0.59")),
        belowTimeInForce="GTC",
    )
    btc = client.get_asset_balance("BTC")
    _sigkill(server)

    again = start_server(env=env, data_dir=data_dir)
    client2 = binance_client(again.base, creds)
    [listed] = client2.get_open_oco_orders()
    assert listed["orderListId"] == placed["orderListId"]
    assert listed["listClientOrderId"] == "survivor"
    assert listed["orders"] == placed["orders"]
    for report in placed["orderReports"]:
        got = client2.get_order(symbol=SYMBOL, orderId=report["orderId"])
        assert (got["orderListId"], got["status"], got["type"]) == (
            placed["orderListId"],
            "NEW",
            report["type"],
        )
    assert client2.get_asset_balance("BTC") == btc
    assert Decimal(btc["locked"]) == Decimal("0.005")  # held once
    canceled = client2.v3_delete_order_list(symbol=SYMBOL, listClientOrderId="survivor")
    assert [r["status"] for r in canceled["orderReports"]] == ["CANCELED", "CANCELED"]
    assert Decimal(client2.get_asset_balance("BTC")["locked"]) == 0
