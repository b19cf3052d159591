"""binance-connector's everyday spot calls against Sandex; run by test_client_matrix.py
with the interpreter of ``.venv-connector`` (binance-connector and python-binance both
install a package named ``binance``).

Input, from the environment only: SANDEX_BASE, SANDEX_API_KEY and either
SANDEX_API_SECRET (HMAC) or SANDEX_PRIVATE_KEY (an Ed25519 PEM). Output: one JSON object
on stdout, the results of every call, or the name of the call that failed with the
error's class, code and message. Nothing here ever prints a credential.
"""

from __future__ import annotations

import json
import os
import sys
import time
from decimal import Decimal
from typing import Any

from binance.error import ClientError
from binance.spot import Spot

SYMBOL = "BTCUSDT"
QTY = "0.001"


def client() -> Spot:
    base, key = os.environ["SANDEX_BASE"], os.environ["SANDEX_API_KEY"]
    if "SANDEX_PRIVATE_KEY" in os.environ:
        return Spot(
            api_key=key, private_key=os.environ["SANDEX_PRIVATE_KEY"], base_url=base, timeout=10
        )
    return Spot(api_key=key, api_secret=os.environ["SANDEX_API_SECRET"], base_url=base, timeout=10)


def usdt_free(spot: Spot) -> str:
    for row in spot.account()["balances"]:
        if row["asset"] == "USDT":
            return str(row["free"])
    return "0"


def everyday(spot: Spot, out: dict[str, Any]) -> None:
    out["step"] = "time"
    out["server_time"] = spot.time()["serverTime"]
    out["step"] = "exchange_info"
    out["btc_listed"] = SYMBOL in {s["symbol"] for s in spot.exchange_info()["symbols"]}
    out["step"] = "ticker_24hr"
    out["last"] = spot.ticker_24hr(symbol=SYMBOL)["lastPrice"]
    out["step"] = "depth"
    book = spot.depth(symbol=SYMBOL, limit=5)
    out["bid"], out["ask"] = book["bids"][0][0], book["asks"][0][0]
    out["step"] = "klines"
    out["candles"] = len(spot.klines(symbol=SYMBOL, interval="1m", limit=10))
    out["step"] = "account"
    deadline = time.monotonic() + 5.0
    while Decimal(usdt_free(spot)) != 10_000 and time.monotonic() < deadline:
        time.sleep(0.1)
    out["usdt_free"] = usdt_free(spot)
    price = str((Decimal(out["bid"]) * Decimal("0.9")).quantize(Decimal("0.01")))
    out["step"] = "new_order LIMIT"
    limit = spot.new_order(
        symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC", quantity=QTY, price=price
    )
    out["limit_id"], out["limit_status"] = limit["orderId"], limit["status"]
    out["step"] = "get_order"
    out["queried_status"] = spot.get_order(symbol=SYMBOL, orderId=limit["orderId"])["status"]
    out["step"] = "get_open_orders"
    out["open_ids"] = [o["orderId"] for o in spot.get_open_orders(symbol=SYMBOL)]
    out["step"] = "cancel_order"
    out["cancel_status"] = spot.cancel_order(symbol=SYMBOL, orderId=limit["orderId"])["status"]
    out["step"] = "new_order MARKET"
    market = spot.new_order(symbol=SYMBOL, side="BUY", type="MARKET", quantity=QTY)
    out["market_id"], out["market_status"] = market["orderId"], market["status"]
    out["market_filled"] = market["executedQty"]
    out["step"] = "my_trades"
    out["trade_order_ids"] = sorted({t["orderId"] for t in spot.my_trades(symbol=SYMBOL)})
    del out["step"]


def main() -> int:
    out: dict[str, Any] = {}
    try:
        everyday(client(), out)
    except ClientError as exc:
        out["error"] = {
            "class": type(exc).__name__,
            "status": exc.status_code,
            "code": exc.error_code,
            "msg": exc.error_message,
        }
    except Exception as exc:  # reported, never a traceback that could hold a request
        out["error"] = {"class": type(exc).__name__, "msg": str(exc)[:500]}
    print(json.dumps(out))
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
