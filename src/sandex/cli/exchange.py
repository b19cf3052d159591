"""``sandex balances …`` and ``sandex market …``: fund accounts, move the simulated market.

Both reach a running server through the database: the server applies a credit (and
marks it applied in the same transaction as the balance) within about half a second,
and a crash, pump or change of liquidity on its next market step. With no server
running, they wait in the database and apply when ``sandex serve`` starts.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

import typer

from sandex.cli.parsing import CliInputError
from sandex.cli.state import opened, out
from sandex.exchange import default_symbols
from sandex.exchange.makers import MAX_LIQUIDITY, MIN_LIQUIDITY
from sandex.exchange.money import ASSET_DECIMALS, format_units

__all__ = ["balances_app", "market_app", "parse_percent", "parse_duration"]

balances_app = typer.Typer(help="Account balances: operator funding.", no_args_is_help=True)
market_app = typer.Typer(
    help="The simulated market: crashes and pumps, thin and deep books.", no_args_is_help=True
)

_WAIT_S = 3.0
_PLAIN_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
"""Digits with an optional fraction: no sign, exponent, NaN or Infinity (as the API)."""


def _amount(text: str) -> int:
    if not _PLAIN_NUMBER.fullmatch(text.strip()):
        raise CliInputError(f"amount {text!r} is not a number like 1000 or 0.5")
    value = Decimal(text.strip())
    if value <= 0:
        raise CliInputError("the amount must be a positive number")
    units = value.scaleb(ASSET_DECIMALS)
    if units != units.to_integral_value():
        raise CliInputError(f"the amount has more than {ASSET_DECIMALS} decimals")
    if units >= 2**62:
        raise CliInputError("the amount is too large")
    return int(units)


@balances_app.command("credit")
def credit(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user's e-mail.")],
    asset: Annotated[str, typer.Argument(help="Asset, e.g. USDT or BTC.")],
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 1000 or 0.5.")],
) -> None:
    """Credit a user's free balance (paper money, from the exchange's funding account)."""
    asset = asset.strip().upper()
    if not re.fullmatch(r"[A-Z0-9]{2,16}", asset):
        raise CliInputError(f"asset {asset!r} must be 2-16 letters or digits, like USDT")
    units = _amount(amount)
    with opened(ctx) as sx:
        user = sx.users.find(email)
        applied = sx.operator.credit(user.id, asset, units, now=sx.clock.now(), wait_s=_WAIT_S)
    shown = format_units(units, ASSET_DECIMALS)
    if applied:
        out.print(f"credited {shown} {asset} to {user.email}", markup=False)
    else:
        out.print(
            f"queued {shown} {asset} for {user.email}: no running server applied it yet;"
            " it applies when `sandex serve` runs",
            markup=False,
        )


def parse_percent(text: str) -> Decimal:
    """``"30%"`` or ``"30"`` → 0.30."""
    raw = text.strip().removesuffix("%").strip()
    if not _PLAIN_NUMBER.fullmatch(raw):
        raise CliInputError(f"{text!r} is not a percentage like 30%")
    value = Decimal(raw)
    if value <= 0:
        raise CliInputError("the percentage must be positive")
    return value / 100


def parse_duration(text: str) -> int:
    """``"10s"``, ``"500ms"``, ``"2m"`` (or plain seconds) → milliseconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if match is None:
        raise CliInputError(f"{text!r} is not a duration like 10s, 500ms or 2m")
    value = Decimal(match.group(1))
    unit = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[match.group(2) or "s"]
    ms = int(value * unit)
    if ms > 24 * 3_600_000:
        raise CliInputError("a shock lasts at most 24h")
    return ms


@market_app.command("crash")
def crash(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. BTCUSDT.")],
    drop: Annotated[
        str | None, typer.Option("--drop", help="How far the price falls, e.g. 30%.")
    ] = None,
    pump: Annotated[
        str | None, typer.Option("--pump", help="Instead: how far it rises, e.g. 50%.")
    ] = None,
    over: Annotated[str, typer.Option("--over", help="Over how long, e.g. 10s.")] = "10s",
) -> None:
    """Move SYMBOL's reference price sharply (a flash crash, or a pump with --pump): the
    market makers follow it, trades print, stops trigger."""
    name = symbol.strip().upper()
    if name not in {s.name for s in default_symbols()}:
        raise CliInputError(f"unknown symbol {name}")
    if (drop is None) == (pump is None):
        raise CliInputError("give one of --drop 30% or --pump 30%")
    if drop is not None:
        fraction = parse_percent(drop)
        if fraction >= 1:
            raise CliInputError("a drop must be below 100%")
        factor = 1 - fraction
    else:
        assert pump is not None
        factor = 1 + parse_percent(pump)
    duration = parse_duration(over)
    with opened(ctx) as sx:
        sx.operator.move_price(name, factor, duration, now=sx.clock.now())
    word = f"drop {drop}" if drop is not None else f"pump {pump}"
    out.print(
        f"{name}: {word} over {duration / 1000:g}s ordered; a running server applies it on"
        " its next market step",
        markup=False,
    )


@market_app.command("liquidity")
def liquidity(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. BTCUSDT.")],
    factor: Annotated[
        str,
        typer.Option(
            "--factor",
            help="Scale the market makers' quote sizes, e.g. 0.1 for a thin book (a tenth of"
            " the depth at every level); 1 restores the usual book.",
        ),
    ],
    lasting: Annotated[
        str | None,
        typer.Option(
            "--for", help="For how long, e.g. 10m (then back to 1); default: until changed again."
        ),
    ] = None,
) -> None:
    """Make SYMBOL's book thinner (or deeper): the makers' quotes shrink by FACTOR at every
    level, so market orders slip further, as in a thin market."""
    name = symbol.strip().upper()
    if name not in {s.name for s in default_symbols()}:
        raise CliInputError(f"unknown symbol {name}")
    if not _PLAIN_NUMBER.fullmatch(factor.strip()):
        raise CliInputError(f"{factor!r} is not a factor like 0.1")
    value = Decimal(factor.strip())
    if not MIN_LIQUIDITY <= value <= MAX_LIQUIDITY:
        raise CliInputError(f"the factor must be from {MIN_LIQUIDITY} to {MAX_LIQUIDITY}")
    duration = 0 if lasting is None else parse_duration(lasting)
    if lasting is not None and duration <= 0:
        raise CliInputError("--for must be a positive duration like 10m")
    with opened(ctx) as sx:
        sx.operator.set_liquidity(name, value, duration, now=sx.clock.now())
    until = f" for {duration / 1000:g}s" if duration else " until changed"
    out.print(
        f"{name}: liquidity x{value}{until} ordered; a running server applies it on its next"
        " market step",
        markup=False,
    )
