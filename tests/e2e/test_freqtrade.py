"""freqtrade, from PyPI and unmodified, trades live (``dry_run: false``) against a real
``sandex serve``: it opens a BTC/USDT spot trade with a market buy, closes it with a
market sell about 20 s later, and Sandex's own records of both orders agree with
freqtrade's.

freqtrade runs in a venv of its own, ``.venv-freqtrade`` (``make freqtrade``, which
``make test`` runs first), so that its pinned dependencies never touch the project's.
Its strategy is ``tests/e2e/freqtrade/quick_round_trip.py``. Its exchange block is the
README's freqtrade recipe, run as written (every ccxt URL moved to the server, REST and
WebSocket; ccxt's default options; no websockets; ``only_from_ccxt``); no telegram or
API server.

The key's secret is in freqtrade's config file only (in the test's tmp directory);
nothing here prints the config, and the logs shown on failure have the secret masked.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from e2e.clients import Credentials, ccxt_client, new_key
from e2e.conftest import Server, stop_group
from e2e.readme import freqtrade_exchange
from sandex.bootstrap import Sandex
from sandex.keys import Permission

REPO = Path(__file__).resolve().parents[2]
FT_VENV = REPO / ".venv-freqtrade"
FREQTRADE = FT_VENV / "bin" / "freqtrade"
STRATEGY_DIR = Path(__file__).resolve().parent / "freqtrade"
STRATEGY = "QuickRoundTrip"

EMAIL = "e2e-freqtrade@example.com"
PAIR = "BTC/USDT"
STAKE_USDT = 100
RUN_LIMIT_S = 150.0
"""How long freqtrade may take to open and close its trade."""
WS_RUN_S = 150.0
"""How long freqtrade runs in all (on after its trade, if that was quicker): long enough
for two 1m candles to close, whose candles freqtrade reads from the WebSocket."""
POLL_S = 1.0
STOP_TIMEOUT_S = 20.0
LOG_LINES = 60


# -- freqtrade's configuration ----------------------------------------------------------


def _config(base: str, creds: Credentials, db: Path) -> dict[str, Any]:
    exchange = freqtrade_exchange(base.removeprefix("http://"), creds)  # the README's
    exchange["pair_whitelist"] = [PAIR]
    exchange["pair_blacklist"] = []
    exchange["ccxt_config"]["timeout"] = 10_000
    market = {"price_side": "other", "use_order_book": True, "order_book_top": 1}
    return {
        "bot_name": "sandex-e2e",
        "dry_run": False,
        "trading_mode": "spot",
        "max_open_trades": 1,
        "stake_currency": "USDT",
        "stake_amount": STAKE_USDT,
        "tradable_balance_ratio": 0.99,
        "timeframe": "1m",
        "db_url": f"sqlite:///{db}",
        "initial_state": "running",
        "cancel_open_orders_on_exit": False,
        "internals": {"process_throttle_secs": 1, "heartbeat_interval": 0},
        # market orders fill at once against the simulated makers; freqtrade wants
        # price_side "other" for them
        "order_types": {
            "entry": "market",
            "exit": "market",
            "emergency_exit": "market",
            "force_entry": "market",
            "force_exit": "market",
            "stoploss": "market",
            "stoploss_on_exchange": False,
        },
        "entry_pricing": market,
        "exit_pricing": market,
        "unfilledtimeout": {"entry": 1, "exit": 1, "unit": "minutes"},
        "pairlists": [{"method": "StaticPairList"}],
        "exchange": exchange,
    }


# -- reading freqtrade's database -------------------------------------------------------


def _rows(db: Path, sql: str, *args: object) -> list[sqlite3.Row]:
    """Rows from freqtrade's live database (read-only); none while it has no tables."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # tables not created yet, or a write in progress
        return []
    finally:
        conn.close()


def _closed_trades(db: Path) -> list[sqlite3.Row]:
    return _rows(db, "SELECT * FROM trades WHERE is_open = 0 ORDER BY id")


# -- running it -------------------------------------------------------------------------


class FreqtradeRun:
    """One ``freqtrade trade`` process, stopped with SIGINT. Its log goes to
    ``freqtrade.log``; its console (colours, and what it prints before logging is set
    up) to ``freqtrade.out``."""

    def __init__(self, workdir: Path, config: Path, secret: str) -> None:
        self.log = workdir / "freqtrade.log"
        self.console = workdir / "freqtrade.out"
        self._secret = secret
        userdir = workdir / "user_data"
        userdir.mkdir()
        # nothing of this interpreter's environment that could steer freqtrade's: no
        # proxy for 127.0.0.1, no PYTHONPATH into the project's venv, and no PYTEST_*
        # (with PYTEST_VERSION set, freqtrade believes it is under its own tests and
        # skips its logging setup, so --logfile would write nothing)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.lower().endswith("_proxy")
            and k not in ("PYTHONPATH", "VIRTUAL_ENV")
            and not k.startswith(("SANDEX_", "FREQTRADE__", "PYTEST_"))
        }
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [str(FREQTRADE), "trade", "--config", str(config), "--userdir", str(userdir)]
        cmd += ["--strategy", STRATEGY, "--strategy-path", str(STRATEGY_DIR)]
        cmd += ["--logfile", str(self.log), "-v"]  # -v: its debug lines (the socket's use)
        with self.console.open("wb") as sink:
            self.proc = subprocess.Popen(
                cmd,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def log_tail(self, lines: int = LOG_LINES) -> str:
        """The log's last lines (the console's while there is no log), secret masked."""
        text = ""
        for path in (self.log, self.console):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if text.strip():
                break
        text = text.replace(self._secret, "<secret>")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int:
        """SIGINT (freqtrade's Ctrl-C: it closes its database and exchange cleanly);
        SIGKILL if it is still there after STOP_TIMEOUT_S."""
        return stop_group(self.proc, signal.SIGINT, STOP_TIMEOUT_S)


def _why(run: FreqtradeRun, server: Server) -> str:
    return (
        f"\n--- freqtrade (last {LOG_LINES} lines) ---\n{run.log_tail()}"
        f"\n--- sandex serve ---\n{server.log_tail()}"
    )


@pytest.fixture
def freqtrade_bin() -> Path:
    if not FREQTRADE.exists():
        reason = f"{FREQTRADE.relative_to(REPO)} is missing: `make freqtrade` creates it"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
        pytest.skip(reason)
    return FREQTRADE


def test_freqtrade_opens_and_closes_a_trade_live(
    freqtrade_bin: Path, sqlite_server: Server, operator: Sandex, tmp_path: Path
) -> None:
    creds = new_key(
        operator,
        EMAIL,
        label="freqtrade",
        permissions=Permission.READ | Permission.SPOT_TRADE,
        ips=("127.0.0.1",),
    )
    db = tmp_path / "trades.sqlite"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_config(sqlite_server.base, creds, db), indent=2))
    config.chmod(0o600)

    run = FreqtradeRun(tmp_path, config, creds.signing_secret)
    started = time.monotonic()
    try:
        while not _closed_trades(db):
            if run.proc.poll() is not None:
                pytest.fail(
                    f"freqtrade exited with {run.proc.returncode} before closing a trade"
                    + _why(run, sqlite_server)
                )
            if time.monotonic() - started > RUN_LIMIT_S:
                pytest.fail(
                    f"freqtrade closed no trade within {RUN_LIMIT_S:.0f} s"
                    + _why(run, sqlite_server)
                )
            time.sleep(POLL_S)
        took = time.monotonic() - started
        # on, across candle boundaries, so that its 1m candles must come over the socket
        while time.monotonic() - started < WS_RUN_S and run.proc.poll() is None:
            time.sleep(POLL_S)
    finally:
        code = run.stop()
    print(f"freqtrade opened and closed a trade in {took:.1f} s; it exited with {code}")
    if sqlite_server.proc.poll() is not None:
        pytest.fail("the server died during the run" + _why(run, sqlite_server))

    # nothing freqtrade had to work around: a refused or malformed answer from the
    # server shows up as a WARNING or ERROR line even when freqtrade recovers from it
    log_lines = run.log.read_text(errors="replace").splitlines()
    complaints = [line for line in log_lines if " - WARNING - " in line or " - ERROR - " in line]
    assert not complaints, "freqtrade complained:\n" + "\n".join(complaints).replace(
        creds.signing_secret, "<secret>"
    )
    # its candles came over the WebSocket (enable_ws, freqtrade's default): a candle the
    # socket did not deliver in time makes it log that it falls back to REST
    fallbacks = [line for line in log_lines if "falling back to REST api" in line]
    assert not fallbacks, "freqtrade fell back to REST:\n" + "\n".join(fallbacks)
    assert any(f"reuse watch result for {PAIR}, 1m" in line for line in log_lines), (
        "freqtrade never used the WebSocket's candles" + _why(run, sqlite_server)
    )

    # freqtrade's side: one closed BTC/USDT trade, closed by the strategy's custom_exit,
    # with a filled buy and a filled sell
    trades = _closed_trades(db)
    assert len(trades) == 1, [dict(t) for t in trades]
    trade = trades[0]
    assert trade["pair"] == PAIR
    assert trade["exit_reason"] == "quick_exit", dict(trade)
    assert trade["amount"] > 0 and trade["open_rate"] > 0 and trade["close_rate"] > 0
    orders = {
        row["ft_order_side"]: row
        for row in _rows(db, "SELECT * FROM orders WHERE ft_trade_id = ?", trade["id"])
    }
    assert set(orders) == {"buy", "sell"}, {side: dict(o) for side, o in orders.items()}
    for side, row in orders.items():
        assert row["status"] == "closed" and row["order_id"], (side, dict(row))
        assert row["filled"] > 0, (side, dict(row))

    # Sandex's side: the same two orders, filled, with the amounts freqtrade recorded
    exchange = ccxt_client(sqlite_server.base, creds, fetchMarkets={"types": ["spot"]})
    for side, row in orders.items():
        order = exchange.fetch_order(row["order_id"], PAIR)
        assert order["side"] == side and order["status"] == "closed", order
        assert order["type"] == "market", order
        assert order["filled"] == pytest.approx(row["filled"]), (order, dict(row))
    mine = exchange.fetch_my_trades(PAIR)
    by_order = {t["order"] for t in mine}
    assert {str(o["order_id"]) for o in orders.values()} <= by_order, mine
    assert {t["side"] for t in mine} == {"buy", "sell"}, mine
