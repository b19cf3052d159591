"""A freqtrade strategy that makes one quick round trip, for the e2e test, with an
informative 1h timeframe beside its 1m one (it enters only once the 1h candles are in).

Loaded by freqtrade itself (``--strategy QuickRoundTrip --strategy-path`` this folder,
in the ``.venv-freqtrade`` interpreter), never imported by pytest: the project's venv has
no freqtrade. It enters at once (the entry signal is always on), exits ``HOLD_S``
seconds after the entry filled (``custom_exit``), and enters no second trade once one is
closed, so that the exchange sees exactly one buy and one sell.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from freqtrade.persistence import Trade
from freqtrade.strategy import IStrategy
from pandas import DataFrame

HOLD_S = 20
"""How long a trade stays open before custom_exit closes it."""
INFORMATIVE = "1h"
MIN_HOURLY = 100
"""Hourly candles the informative timeframe must have before the strategy enters."""


class QuickRoundTrip(IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "1m"
    can_short = False
    startup_candle_count = 0
    process_only_new_candles = False

    # exits come from custom_exit only: no ROI, no stoploss a small move could trigger
    minimal_roi = {"0": 100.0}  # noqa: RUF012 (freqtrade's own attribute types)
    stoploss = -0.99
    trailing_stop = False
    use_exit_signal = True
    exit_profit_only = False

    def informative_pairs(self) -> list[tuple[str, str]]:
        # a multi-timeframe strategy's everyday need: the pair's 1h candles beside its 1m
        return [("BTC/USDT", INFORMATIVE)]

    def populate_indicators(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        # enter only once the informative 1h candles arrived, so that the trade proves
        # freqtrade got them
        hourly = self.dp.get_pair_dataframe(metadata["pair"], INFORMATIVE)
        dataframe["enter_long"] = 1 if len(hourly) >= MIN_HOURLY else 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe

    def confirm_trade_entry(
        self,
        pair: str,
        order_type: str,
        amount: float,
        rate: float,
        time_in_force: str,
        current_time: datetime,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> bool:
        # one round trip per run: no new entry once a trade has closed
        return not Trade.get_trades_proxy(is_open=False)

    def custom_exit(
        self,
        pair: str,
        trade: Trade,
        current_time: datetime,
        current_rate: float,
        current_profit: float,
        **kwargs: Any,
    ) -> str | None:
        if (current_time - trade.open_date_utc).total_seconds() >= HOLD_S:
            return "quick_exit"
        return None
