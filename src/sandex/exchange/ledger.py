"""Balances as a double-entry ledger: every change is an entry of postings that sum to
zero per asset.

Amounts are ints in units of 10**-8 of the asset (Binance shows eight decimals). Each
user balance has two buckets, ``free`` and ``locked``; two system accounts balance
the books: :data:`FUNDING` (where operator credits and simulated deposits come from)
and :data:`FEES` (where trading fees go). Funds for an open order are *held*: moved
from free to locked under the order's key, then consumed by its trades and released
when it ends, so a user's locked balance is always exactly what their open orders
hold.

Pure: no I/O, no clock. Storage persists the entries; replaying them rebuilds the
balances.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Final, NamedTuple

from sandex.exchange.errors import InsufficientBalance, LedgerError
from sandex.exchange.units import AssetUnits

__all__ = [
    "FUNDING",
    "FEES",
    "FREE",
    "LOCKED",
    "Posting",
    "Entry",
    "Balance",
    "Ledger",
    "fee_units",
]

FUNDING: Final = -1
"""The system account operator credits come from (its balance goes negative)."""
FEES: Final = -2
"""The system account trading fees go to."""
FREE: Final = "free"
LOCKED: Final = "locked"
_NOTHING: Final = AssetUnits(0)


class Posting(NamedTuple):
    account: int
    asset: str
    bucket: str
    amount: AssetUnits
    """Signed: positive adds to the bucket."""


class Entry(NamedTuple):
    """One balanced change: its postings sum to zero for every asset."""

    kind: str
    postings: tuple[Posting, ...]
    ref: str = ""


@dataclass(slots=True)
class Balance:
    free: AssetUnits = _NOTHING
    locked: AssetUnits = _NOTHING


@dataclass(slots=True)
class _Hold:
    account: int
    asset: str
    remaining: AssetUnits


def fee_units(amount: AssetUnits, rate: Decimal) -> AssetUnits:
    """The fee on ``amount`` at ``rate`` (0.001 = 0.1 %), rounded up to a whole unit."""
    if rate < 0:
        raise LedgerError("a fee rate cannot be negative")
    return AssetUnits(int((Decimal(amount) * rate).to_integral_value(ROUND_CEILING)))


class Ledger:
    def __init__(self) -> None:
        self._balances: dict[tuple[int, str], Balance] = {}
        self._accounts: dict[int, dict[str, Balance]] = {}
        """The same balances by account, then asset (an account's read is O(its assets))."""
        self._holds: dict[Hashable, _Hold] = {}

    # -- reading -----------------------------------------------------------------------

    def balance(self, account: int, asset: str) -> Balance:
        found = self._balances.get((account, asset))
        return Balance(found.free, found.locked) if found else Balance()

    def balances(self, account: int) -> dict[str, Balance]:
        mine = self._accounts.get(account, {})
        return {asset: Balance(b.free, b.locked) for asset, b in sorted(mine.items())}

    def held(self, key: Hashable) -> AssetUnits:
        """What the hold ``key`` (an open order) still has locked; 0 if none."""
        hold = self._holds.get(key)
        return _NOTHING if hold is None else hold.remaining

    def holds(self) -> dict[Hashable, tuple[int, str, AssetUnits]]:
        return {k: (h.account, h.asset, h.remaining) for k, h in self._holds.items()}

    def totals(self) -> dict[str, int]:
        """Sum of every bucket of every account per asset: always zero."""
        out: dict[str, int] = {}
        for (_, asset), b in self._balances.items():
            out[asset] = out.get(asset, 0) + b.free + b.locked
        return out

    # -- changing ------------------------------------------------------------------------

    def credit(self, account: int, asset: str, amount: AssetUnits, *, ref: str = "") -> Entry:
        """Add ``amount`` to a user's free balance, from :data:`FUNDING`."""
        _positive(amount)
        return self._apply(
            Entry(
                "credit",
                (
                    Posting(FUNDING, asset, FREE, _minus(amount)),
                    Posting(account, asset, FREE, amount),
                ),
                ref,
            )
        )

    def hold(self, key: Hashable, account: int, asset: str, amount: AssetUnits) -> Entry:
        """Lock ``amount`` of free balance for the open order ``key``.

        Raises :class:`InsufficientBalance` (changing nothing) when it is not free.
        """
        _positive(amount)
        if key in self._holds:
            raise LedgerError(f"hold {key!r} exists already")
        if self.balance(account, asset).free < amount:
            raise InsufficientBalance
        entry = self._apply(
            Entry(
                "hold",
                (
                    Posting(account, asset, FREE, _minus(amount)),
                    Posting(account, asset, LOCKED, amount),
                ),
                str(key),
            )
        )
        self._holds[key] = _Hold(account, asset, amount)
        return entry

    def move_hold(self, source: Hashable, target: Hashable) -> AssetUnits:
        """Give what the order ``source`` holds to the order ``target`` (an OCO's
        shared hold going to the order that triggered); the balances do not change.
        Returns the amount moved (0 when ``source`` holds nothing)."""
        if target in self._holds:
            raise LedgerError(f"hold {target!r} exists already")
        hold = self._holds.pop(source, None)
        if hold is None:
            return _NOTHING
        self._holds[target] = hold
        return hold.remaining

    def release(self, key: Hashable) -> Entry | None:
        """Unlock what the order ``key`` still holds (it ended); None if nothing."""
        hold = self._holds.pop(key, None)
        if hold is None or hold.remaining == 0:
            return None
        a, asset, amount = hold.account, hold.asset, hold.remaining
        return self._apply(
            Entry(
                "release",
                (Posting(a, asset, LOCKED, _minus(amount)), Posting(a, asset, FREE, amount)),
                str(key),
            )
        )

    def settle(
        self,
        *,
        buy: Hashable,
        sell: Hashable,
        base_asset: str,
        quote_asset: str,
        base: AssetUnits,
        quote: AssetUnits,
        buyer_fee: AssetUnits,
        seller_fee: AssetUnits,
        ref: str = "",
    ) -> Entry:
        """One trade: the buy order's hold pays ``quote``, the sell order's hold delivers
        ``base``; the buyer's fee is taken from the base received, the seller's from the
        quote received."""
        _positive(base)
        _positive(quote)
        buy_hold, sell_hold = self._holds.get(buy), self._holds.get(sell)
        if buy_hold is None or sell_hold is None:
            raise LedgerError("both orders of a trade must hold funds")
        if buy_hold.asset != quote_asset or sell_hold.asset != base_asset:
            raise LedgerError("a buy holds the quote asset, a sell the base asset")
        if buy_hold.remaining < quote or sell_hold.remaining < base:
            raise LedgerError("a trade cannot use more than its orders hold")
        if not (0 <= buyer_fee <= base and 0 <= seller_fee <= quote):
            raise LedgerError("a fee cannot exceed what it is taken from")
        buyer, seller = buy_hold.account, sell_hold.account
        postings = [
            Posting(buyer, quote_asset, LOCKED, _minus(quote)),
            Posting(seller, quote_asset, FREE, AssetUnits(quote - seller_fee)),
            Posting(seller, base_asset, LOCKED, _minus(base)),
            Posting(buyer, base_asset, FREE, AssetUnits(base - buyer_fee)),
        ]
        if seller_fee:
            postings.append(Posting(FEES, quote_asset, FREE, seller_fee))
        if buyer_fee:
            postings.append(Posting(FEES, base_asset, FREE, buyer_fee))
        entry = self._apply(Entry("trade", tuple(postings), ref))
        buy_hold.remaining = AssetUnits(buy_hold.remaining - quote)
        sell_hold.remaining = AssetUnits(sell_hold.remaining - base)
        return entry

    def restore(
        self,
        balances: Iterable[tuple[int, str, AssetUnits, AssetUnits]],
        holds: Iterable[tuple[Hashable, int, str, AssetUnits]],
    ) -> None:
        """Load stored ``(account, asset, free, locked)`` balances and the holds of the
        open orders ``(key, account, asset, remaining)`` into an empty ledger.

        Raises :class:`LedgerError` if the balances do not sum to zero per asset, or a
        user's locked balance is not what their holds add up to.
        """
        if self._balances or self._holds:
            raise LedgerError("restore needs an empty ledger")
        for account, asset, free, locked in balances:
            self._balances[(account, asset)] = b = Balance(free, locked)
            self._accounts.setdefault(account, {})[asset] = b
        for key, account, asset, remaining in holds:
            self._holds[key] = _Hold(account, asset, remaining)
        unbalanced = {a: t for a, t in self.totals().items() if t}
        if unbalanced:
            raise LedgerError(f"stored balances do not sum to zero: {unbalanced}")

    def locked_by_holds(self) -> dict[tuple[int, str], AssetUnits]:
        """What the open holds add up to, per account and asset."""
        out: dict[tuple[int, str], AssetUnits] = {}
        for h in self._holds.values():
            key = (h.account, h.asset)
            out[key] = AssetUnits(out.get(key, 0) + h.remaining)
        return out

    def replay(self, entries: Iterable[Entry]) -> None:
        """Rebuild balances from stored entries (holds are rebuilt by the caller)."""
        for entry in entries:
            self._apply(entry)

    def _apply(self, entry: Entry) -> Entry:
        postings = entry.postings
        if len(postings) == 2:  # hold, release, credit: one asset, two opposite amounts
            if postings[0][1] != postings[1][1] or postings[0][3] + postings[1][3]:
                raise LedgerError(f"unbalanced {entry.kind} entry")
        else:
            sums: dict[str, int] = {}
            for _, asset, _, amount in postings:
                sums[asset] = sums.get(asset, 0) + amount
            if any(sums.values()):
                raise LedgerError(f"unbalanced {entry.kind} entry: {sums}")
        balances = self._balances
        for account, asset, bucket, amount in postings:
            b = balances.get((account, asset))
            if b is None:
                b = balances[(account, asset)] = Balance()
                self._accounts.setdefault(account, {})[asset] = b
            if bucket is FREE or bucket == FREE:
                b.free = AssetUnits(b.free + amount)
            else:
                b.locked = AssetUnits(b.locked + amount)
        return entry


def _minus(amount: AssetUnits) -> AssetUnits:
    return AssetUnits(-amount)


def _positive(amount: int) -> None:
    if amount <= 0:
        raise LedgerError("an amount must be positive")
