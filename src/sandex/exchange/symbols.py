"""Spot symbols, their Binance filters, and the checks those filters make.

A :class:`Symbol` is configuration written in Binance's decimal terms
(``tickSize="0.01"``). :attr:`Symbol.rules` is the same thing in the symbol's
fixed-point units, which is what the engine checks orders against. Filter failures
are Binance's, message for message (``-1013 "Filter failure: LOT_SIZE"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import cached_property
from typing import Final

from sandex.exchange.errors import InvalidMarket, OrderRejected
from sandex.exchange.events import Rejected
from sandex.exchange.money import decimals, format_units, parse_number, to_units
from sandex.exchange.orders import OrderType, SelfTradePrevention
from sandex.exchange.units import PriceUnits, QuantityUnits, QuoteUnits

__all__ = [
    "PriceFilter",
    "LotSize",
    "Notional",
    "Symbol",
    "Rules",
    "PRICE_FILTER_FAILURE",
    "LOT_SIZE_FAILURE",
    "MARKET_LOT_SIZE_FAILURE",
    "NOTIONAL_FAILURE",
    "MAX_NUM_ORDERS_FAILURE",
    "MAX_NUM_ALGO_ORDERS_FAILURE",
    "ALL_ORDER_TYPES",
    "ALL_STP_MODES",
    "UNLIMITED",
    "default_symbols",
    "symbols_by_name",
]

PRICE_FILTER_FAILURE: Final = Rejected(-1013, "Filter failure: PRICE_FILTER")
LOT_SIZE_FAILURE: Final = Rejected(-1013, "Filter failure: LOT_SIZE")
MARKET_LOT_SIZE_FAILURE: Final = Rejected(-1013, "Filter failure: MARKET_LOT_SIZE")
NOTIONAL_FAILURE: Final = Rejected(-1013, "Filter failure: NOTIONAL")
MAX_NUM_ORDERS_FAILURE: Final = Rejected(-1013, "Filter failure: MAX_NUM_ORDERS")
MAX_NUM_ALGO_ORDERS_FAILURE: Final = Rejected(-1013, "Filter failure: MAX_NUM_ALGO_ORDERS")

ALL_ORDER_TYPES: Final = (
    OrderType.LIMIT,
    OrderType.LIMIT_MAKER,
    OrderType.MARKET,
    OrderType.STOP_LOSS,
    OrderType.STOP_LOSS_LIMIT,
    OrderType.TAKE_PROFIT,
    OrderType.TAKE_PROFIT_LIMIT,
)
"""Binance's spot ``orderTypes``, in the order exchangeInfo lists them."""

ALL_STP_MODES: Final = (
    SelfTradePrevention.NONE,
    SelfTradePrevention.EXPIRE_TAKER,
    SelfTradePrevention.EXPIRE_MAKER,
    SelfTradePrevention.EXPIRE_BOTH,
)

UNLIMITED: Final = 1 << 100
"""The int bound that stands for a disabled maximum (Binance writes 0)."""

_ZERO = Decimal(0)


@dataclass(frozen=True)
class PriceFilter:
    """``PRICE_FILTER``: ``minPrice <= price <= maxPrice`` and
    ``(price - minPrice) % tickSize == 0``; a zero turns its part of the rule off."""

    min_price: Decimal
    max_price: Decimal
    tick_size: Decimal


@dataclass(frozen=True)
class LotSize:
    """``LOT_SIZE`` (every order) or ``MARKET_LOT_SIZE`` (MARKET orders by quantity):
    ``minQty <= quantity <= maxQty`` and ``(quantity - minQty) % stepSize == 0``."""

    min_qty: Decimal
    max_qty: Decimal
    step_size: Decimal


@dataclass(frozen=True)
class Notional:
    """``NOTIONAL``: ``minNotional <= price * quantity <= maxNotional``.

    MARKET orders are held to the minimum (maximum) only when ``apply_min_to_market``
    (``apply_max_to_market``) is set, and are valued at the average trade price of
    the last ``avg_price_mins`` minutes (0: the last price).
    """

    min_notional: Decimal
    apply_min_to_market: bool = True
    max_notional: Decimal = Decimal(9_000_000)
    apply_max_to_market: bool = False
    avg_price_mins: int = 5


@dataclass(frozen=True)
class Rules:
    """A symbol's filters in its fixed-point units: what the engine checks.

    Each ``range`` holds exactly the acceptable values, so a check is one
    membership test: ``price in rules.prices`` is ``PRICE_FILTER``.
    """

    prices: range
    quantities: range
    market_quantities: range
    notionals: range
    market_notional_min: int
    """0 unless ``applyMinToMarket``."""
    market_notional_max: int
    """:data:`UNLIMITED` unless ``applyMaxToMarket``."""
    avg_price_mins: int
    max_num_orders: int
    max_num_algo_orders: int
    quantity_step: int
    """The step a quote-quantity MARKET order's executed quantity keeps to."""

    def check_quantity(self, quantity: QuantityUnits, *, market: bool = False) -> Rejected | None:
        if quantity not in self.quantities:
            return LOT_SIZE_FAILURE
        if market and quantity not in self.market_quantities:
            return MARKET_LOT_SIZE_FAILURE
        return None

    def check_notional(self, notional: QuoteUnits) -> Rejected | None:
        return None if notional in self.notionals else NOTIONAL_FAILURE

    def check_market_notional(self, notional: QuoteUnits) -> Rejected | None:
        ok = self.market_notional_min <= notional <= self.market_notional_max
        return None if ok else NOTIONAL_FAILURE


def _units(value: Decimal, scale: int, rounding: str) -> int:
    exact = to_units(value, scale)
    if exact is not None:
        return exact
    return int(value.scaleb(scale).to_integral_value(rounding=rounding))


def _range(lo: Decimal, hi: Decimal, step: Decimal, scale: int) -> range:
    """The acceptable ints under ``lo``/``hi``/``step`` (Binance's 0 = no limit)."""
    step_units = to_units(step, scale) or 1
    hi_units = to_units(hi, scale) if hi > 0 else UNLIMITED
    assert hi_units is not None
    lo_units = to_units(lo, scale) or step_units  # no minimum: still above zero
    assert lo_units > 0
    return range(lo_units, hi_units + 1, step_units)


def _check_filter(name: str, lo: Decimal, hi: Decimal, step: Decimal) -> None:
    if min(lo, hi, step) < 0:
        raise InvalidMarket(f"{name}: values must not be negative")
    if hi and lo > hi:
        raise InvalidMarket(f"{name}: minimum {lo} is above maximum {hi}")
    for value in (lo, hi, step):
        if decimals(value) > 8:
            raise InvalidMarket(f"{name}: {value} has more than eight decimals")


@dataclass(frozen=True)
class Symbol:
    """A spot market such as ``BTCUSDT``: assets, filters and what orders it takes."""

    name: str
    base_asset: str
    quote_asset: str
    price_filter: PriceFilter
    lot_size: LotSize
    notional: Notional
    market_lot_size: LotSize | None = None
    max_num_orders: int | None = 200
    max_num_algo_orders: int | None = 5
    order_types: tuple[OrderType, ...] = ALL_ORDER_TYPES
    default_stp_mode: SelfTradePrevention = SelfTradePrevention.EXPIRE_TAKER
    allowed_stp_modes: tuple[SelfTradePrevention, ...] = ALL_STP_MODES
    quote_order_qty_market_allowed: bool = True
    cancel_replace_allowed: bool = True
    base_asset_precision: int = 8
    quote_asset_precision: int = 8
    status: str = "TRADING"

    def __post_init__(self) -> None:
        if not self.name.isalnum() or not self.name.isupper():
            raise InvalidMarket(f"symbol name {self.name!r} must be upper-case letters and digits")
        if self.name != self.base_asset + self.quote_asset:
            raise InvalidMarket(f"{self.name} is not {self.base_asset} + {self.quote_asset}")
        pf, lot = self.price_filter, self.lot_size
        _check_filter("PRICE_FILTER", pf.min_price, pf.max_price, pf.tick_size)
        _check_filter("LOT_SIZE", lot.min_qty, lot.max_qty, lot.step_size)
        if self.market_lot_size is not None:
            m = self.market_lot_size
            _check_filter("MARKET_LOT_SIZE", m.min_qty, m.max_qty, m.step_size)
        if self.notional.min_notional < 0 or self.notional.max_notional < 0:
            raise InvalidMarket("NOTIONAL: values must not be negative")
        if self.default_stp_mode not in self.allowed_stp_modes:
            raise InvalidMarket(f"default STP mode {self.default_stp_mode} is not allowed")
        if not self.order_types:
            raise InvalidMarket("a symbol needs at least one order type")

    # -- units ------------------------------------------------------------------------

    @cached_property
    def price_scale(self) -> int:
        """Decimals of the price unit: 2 when ``tickSize`` is 0.01."""
        pf = self.price_filter
        return max(decimals(pf.tick_size), decimals(pf.min_price), decimals(pf.max_price))

    @cached_property
    def quantity_scale(self) -> int:
        """Decimals of the quantity unit: 5 when ``stepSize`` is 0.00001."""
        lots = [self.lot_size] + ([self.market_lot_size] if self.market_lot_size else [])
        return max(decimals(v) for lot in lots for v in (lot.min_qty, lot.max_qty, lot.step_size))

    @property
    def quote_scale(self) -> int:
        """Decimals of the quote unit, in which ``price * quantity`` is exact."""
        return self.price_scale + self.quantity_scale

    @cached_property
    def rules(self) -> Rules:
        pf, lot, n = self.price_filter, self.lot_size, self.notional
        qs = self.quantity_scale
        market = self.market_lot_size or LotSize(_ZERO, _ZERO, _ZERO)
        min_notional = _units(n.min_notional, self.quote_scale, ROUND_CEILING)
        max_notional = (
            _units(n.max_notional, self.quote_scale, ROUND_FLOOR) if n.max_notional else UNLIMITED
        )
        return Rules(
            prices=_range(pf.min_price, pf.max_price, pf.tick_size, self.price_scale),
            quantities=_range(lot.min_qty, lot.max_qty, lot.step_size, qs),
            market_quantities=_range(market.min_qty, market.max_qty, market.step_size, qs),
            notionals=range(max(min_notional, 1), max_notional + 1),
            market_notional_min=min_notional if n.apply_min_to_market else 0,
            market_notional_max=max_notional if n.apply_max_to_market else UNLIMITED,
            avg_price_mins=n.avg_price_mins,
            max_num_orders=self.max_num_orders or UNLIMITED,
            max_num_algo_orders=self.max_num_algo_orders or UNLIMITED,
            quantity_step=max(
                to_units(lot.step_size, qs) or 1, to_units(market.step_size, qs) or 1
            ),
        )

    # -- the edge: request strings in, units out, and back --------------------------

    def price_units(self, text: str, name: str = "price") -> PriceUnits:
        """``"60000.50"`` → price units; off the tick grid → ``Filter failure: PRICE_FILTER``."""
        units = to_units(parse_number(text, name), self.price_scale)
        if units is None:
            raise OrderRejected(PRICE_FILTER_FAILURE.code, PRICE_FILTER_FAILURE.msg)
        return PriceUnits(units)

    def quantity_units(self, text: str, name: str = "quantity") -> QuantityUnits:
        """``"0.00100000"`` → quantity units; off the step grid → ``Filter failure: LOT_SIZE``."""
        units = to_units(parse_number(text, name), self.quantity_scale)
        if units is None:
            raise OrderRejected(LOT_SIZE_FAILURE.code, LOT_SIZE_FAILURE.msg)
        return QuantityUnits(units)

    def quote_units(self, text: str, name: str = "quoteOrderQty") -> QuoteUnits:
        """A quote amount → quote units, cut (not rounded) to the unit: never spends more."""
        value = parse_number(text, name)
        return QuoteUnits(int(value.scaleb(self.quote_scale).to_integral_value(ROUND_FLOOR)))

    # The market data (klines, tickers, depth) is not typed in units yet: the formatters
    # take any int for now.
    def format_price(self, units: int) -> str:
        return format_units(units, self.price_scale)

    def format_quantity(self, units: int) -> str:
        return format_units(units, self.quantity_scale)

    def format_quote(self, units: int) -> str:
        return format_units(units, self.quote_scale)

    # -- exchangeInfo ------------------------------------------------------------------

    def exchange_info(self) -> dict[str, object]:
        """This symbol as one entry of ``GET /api/v3/exchangeInfo``'s ``symbols``."""
        pf, lot, n = self.price_filter, self.lot_size, self.notional
        filters: list[dict[str, object]] = [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _fmt(pf.min_price),
                "maxPrice": _fmt(pf.max_price),
                "tickSize": _fmt(pf.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": _fmt(lot.min_qty),
                "maxQty": _fmt(lot.max_qty),
                "stepSize": _fmt(lot.step_size),
            },
        ]
        if self.market_lot_size is not None:
            m = self.market_lot_size
            filters.append(
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": _fmt(m.min_qty),
                    "maxQty": _fmt(m.max_qty),
                    "stepSize": _fmt(m.step_size),
                }
            )
        filters.append(
            {
                "filterType": "NOTIONAL",
                "minNotional": _fmt(n.min_notional),
                "applyMinToMarket": n.apply_min_to_market,
                "maxNotional": _fmt(n.max_notional),
                "applyMaxToMarket": n.apply_max_to_market,
                "avgPriceMins": n.avg_price_mins,
            }
        )
        if self.max_num_orders is not None:
            filters.append({"filterType": "MAX_NUM_ORDERS", "maxNumOrders": self.max_num_orders})
        if self.max_num_algo_orders is not None:
            filters.append(
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": self.max_num_algo_orders}
            )
        return {
            "symbol": self.name,
            "status": self.status,
            "baseAsset": self.base_asset,
            "baseAssetPrecision": self.base_asset_precision,
            "quoteAsset": self.quote_asset,
            "quotePrecision": self.quote_asset_precision,
            "quoteAssetPrecision": self.quote_asset_precision,
            "baseCommissionPrecision": self.base_asset_precision,
            "quoteCommissionPrecision": self.quote_asset_precision,
            "orderTypes": [t.value for t in self.order_types],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": self.quote_order_qty_market_allowed,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": self.cancel_replace_allowed,
            "amendAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": filters,
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": self.default_stp_mode.value,
            "allowedSelfTradePreventionModes": [m.value for m in self.allowed_stp_modes],
        }


def _fmt(value: Decimal) -> str:
    return f"{value:.8f}"


def _symbol(
    base: str,
    quote: str,
    *,
    tick: str,
    max_price: str,
    step: str,
    max_qty: str,
    market_max_qty: str,
    min_notional: str,
) -> Symbol:
    d = Decimal
    return Symbol(
        name=base + quote,
        base_asset=base,
        quote_asset=quote,
        price_filter=PriceFilter(d(tick), d(max_price), d(tick)),
        lot_size=LotSize(d(step), d(max_qty), d(step)),
        market_lot_size=LotSize(_ZERO, d(market_max_qty), _ZERO),
        notional=Notional(d(min_notional)),
    )


def default_symbols() -> list[Symbol]:
    """BTCUSDT, ETHUSDT, SOLUSDT and ETHBTC with filters shaped like Binance's own."""
    return [
        _symbol(
            "BTC",
            "USDT",
            tick="0.01",
            max_price="1000000",
            step="0.00001",
            max_qty="9000",
            market_max_qty="120",
            min_notional="5",
        ),
        _symbol(
            "ETH",
            "USDT",
            tick="0.01",
            max_price="1000000",
            step="0.0001",
            max_qty="9000",
            market_max_qty="3000",
            min_notional="5",
        ),
        _symbol(
            "SOL",
            "USDT",
            tick="0.01",
            max_price="1000000",
            step="0.001",
            max_qty="90000",
            market_max_qty="40000",
            min_notional="5",
        ),
        _symbol(
            "ETH",
            "BTC",
            tick="0.00001",
            max_price="922327",
            step="0.001",  # Binance's is 0.0001; 0.001 keeps price * quantity to 8 decimals
            max_qty="100000",
            market_max_qty="2000",
            min_notional="0.0001",
        ),
    ]


def symbols_by_name(symbols: Iterable[Symbol]) -> dict[str, Symbol]:
    """Index ``symbols`` by name, refusing duplicates."""
    out: dict[str, Symbol] = {}
    for s in symbols:
        if s.name in out:
            raise InvalidMarket(f"symbol {s.name} is defined twice")
        out[s.name] = s
    return out
