"""The spot exchange's storage: what the venue acknowledged, written in one transaction
per batch, and read back to rebuild the books after a restart."""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from sqlalchemy import Connection, Engine, Select, Table, and_, func, or_, select, update

from sandex.exchange import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce
from sandex.exchange.klines import Candle
from sandex.exchange.marketdata import MarketHistory, TapeTrade
from sandex.exchange.order_lists import ContingencyType, OrderList
from sandex.exchange.pricepath import MINUTE, Backfill
from sandex.exchange.units import QuantityUnits
from sandex.exchange.venue import OrderRecord, PreventedMatch, TradeRecord
from sandex.service.journal import Batch
from sandex.service.ports import (
    BookRow,
    History,
    PendingCredit,
    PendingShock,
    PreventedQuery,
    ShockKind,
    StorageBusy,
    StoredExchange,
    StoredOrderList,
)
from sandex.storage.database import WAL_SIZE_LIMIT, reader
from sandex.storage.tables import (
    balances,
    credits,
    engine_commands,
    ledger_journal,
    market_backfills,
    market_minutes,
    market_shocks,
    market_trades,
    spot_books,
    spot_order_lists,
    spot_orders,
    spot_prevented_matches,
    spot_trades,
)

__all__ = ["SqlExchangeStore", "SqlCreditRepository"]

_OPEN = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)
_RESTART_WAIT_MS: Final = 200
"""How long a RESTART checkpoint waits for readers still on the old log."""


class SqlCreditRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, account: int, asset: str, amount: int, reason: str, now: int) -> int:
        result = self._conn.execute(
            credits.insert().values(
                account=account, asset=asset, amount=amount, reason=reason, created_at=now
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


class SqlExchangeStore:
    """Implements :class:`sandex.service.ports.ExchangeStore` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer: Any = None
        """The DB-API connection batches are written on (held: a pooled connection's
        checkout, events and transaction objects cost more than a small batch)."""
        self.network = engine.dialect.name != "sqlite"
        """Whether writes wait on a network round trip (worth a thread of their own)."""
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql = {
            "orders": _upsert_sql(spot_orders, ("symbol", "order_id"), mark),
            "trades": _insert_sql(spot_trades, mark),
            "prevented": _insert_sql(spot_prevented_matches, mark),
            "balances": _upsert_sql(balances, ("account", "asset"), mark),
            "journal": _insert_sql(ledger_journal, mark, skip=("id",)),
            "books": _upsert_sql(spot_books, ("symbol",), mark),
            "order_lists": _upsert_sql(spot_order_lists, ("list_id",), mark),
            "credits": f"UPDATE credits SET applied_at = {mark} WHERE id = {mark}",  # noqa: S608
            "commands": _insert_sql(engine_commands, mark),
            "market_trades": _upsert_sql(market_trades, ("symbol", "trade_id"), mark),
            "market_minutes": _upsert_sql(market_minutes, ("symbol", "open_time"), mark),
            "market_backfills": _upsert_sql(market_backfills, ("symbol",), mark),
        }

    # -- writing -----------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Persist one batch atomically (the group commit).

        The statements are plain SQL prepared once (``INSERT … ON CONFLICT … DO UPDATE``
        reads the same on SQLite and PostgreSQL): building SQLAlchemy statements per
        batch cost more than the writes themselves.
        """
        sql = self._sql
        now = batch.now
        conn = self._writer or self._open_writer()
        cursor = conn.cursor()
        if not self.network:  # SQLite runs in autocommit mode here: take the lock now
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StorageBusy(str(exc)) from None  # nothing begun: keep the connection
                self._drop_writer()
                raise
        try:
            run = cursor.executemany
            if batch.orders:
                run(sql["orders"], [_order_values(o) for o in batch.orders])
            if batch.trades:
                run(sql["trades"], [_trade_values(t) for t in batch.trades])
            if batch.prevented:
                run(sql["prevented"], [_prevented_values(p) for p in batch.prevented])
            if batch.balances:
                run(sql["balances"], [(*b, now) for b in batch.balances])
            if batch.journal:
                run(sql["journal"], [(now, entries) for entries in batch.journal])
            if batch.books:
                run(sql["books"], [(*b, now) for b in batch.books])
            if batch.applied_credits:
                run(sql["credits"], [(now, cid) for cid in batch.applied_credits])
            if batch.order_lists:
                run(sql["order_lists"], [_list_values(ol) for ol in batch.order_lists])
            if batch.commands:
                run(sql["commands"], [(c.command_id, c.reply, now) for c in batch.commands])
            if batch.market_trades or batch.market_minutes or batch.market_backfills:
                self._write_market(run, batch)
            conn.commit()
        except BaseException:
            self._drop_writer()
            raise

    def _open_writer(self) -> Any:
        """The connection batches are written on. On SQLite it is the writer's own, taken
        out of the pool for good (``detach``): the pragmas set on it here must never reach
        a connection that others check out."""
        conn = self._engine.raw_connection()
        if not self.network:
            conn.detach()
            cursor = conn.cursor()
            # checkpoints run off the request path (see checkpoint())
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            # never sleep in SQLite's busy handler on the event loop: say so at once
            # (StorageBusy) and let the caller come back in a millisecond
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.close()
        self._writer = conn
        return conn

    def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log back into the database, so that the log can
        start over (and is cut back to :data:`WAL_SIZE_LIMIT`) instead of growing.

        The writer connection does not checkpoint as it commits, so that no order waits
        on the fsyncs; the server calls this a few times a second, from another thread.
        A PASSIVE checkpoint never waits for readers or writers; when a steady stream of
        commits keeps the log from ever being copied whole (it has outgrown the limit), a
        RESTART one holds new writers back for a moment (at most :data:`_RESTART_WAIT_MS`:
        the exchange writer retries every millisecond meanwhile). The checkpoint runs
        outside any transaction, on a connection of its own. No-op on PostgreSQL."""
        if self.network:
            return
        conn = self._engine.raw_connection()
        conn.detach()  # its busy timeout below is its own
        try:
            cursor = conn.cursor()
            cursor.execute("PRAGMA page_size")
            page_size = _one(cursor)[0]
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            frames = _one(cursor)[1]  # (busy, frames in the log, frames copied)
            if frames * page_size > WAL_SIZE_LIMIT:
                cursor.execute(f"PRAGMA busy_timeout={_RESTART_WAIT_MS}")
                cursor.execute("PRAGMA wal_checkpoint(RESTART)")
                _one(cursor)
        finally:
            conn.close()

    def _drop_writer(self) -> None:
        """Roll back and close the writer connection (a new one is opened next time)."""
        conn, self._writer = self._writer, None
        if conn is None:
            return
        try:
            conn.rollback()
        except Exception:  # a broken connection: never give it back to the pool
            conn.invalidate()
        else:
            conn.close()

    def close(self) -> None:
        """Close the writer connection."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def add_credit(self, account: int, asset: str, amount: int, reason: str, now: int) -> int:
        with self._engine.begin() as conn:
            return SqlCreditRepository(conn).add(account, asset, amount, reason, now)

    def credit_applied(self, credit_id: int) -> bool:
        with reader(self._engine) as conn:
            row = conn.execute(
                select(credits.c.applied_at).where(credits.c.id == credit_id)
            ).first()
            return row is not None and row[0] is not None

    def add_shock(
        self,
        symbol: str,
        factor: str,
        duration_ms: int,
        now: int,
        kind: ShockKind = ShockKind.PRICE,
    ) -> int:
        with self._engine.begin() as conn:
            result = conn.execute(
                market_shocks.insert().values(
                    symbol=symbol,
                    factor=factor,
                    duration_ms=duration_ms,
                    created_at=now,
                    kind=kind.value,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def pending_shocks(self, now: int) -> list[PendingShock]:
        """Shocks not yet applied; they are marked applied as they are read (the write
        lock is taken only when there are some: this is polled every half second)."""
        with reader(self._engine) as conn:
            waiting = select(market_shocks.c.id).where(market_shocks.c.applied_at.is_(None))
            if conn.execute(waiting.limit(1)).first() is None:
                return []
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(market_shocks).where(market_shocks.c.applied_at.is_(None))
            ).all()
            if rows:
                conn.execute(
                    update(market_shocks)
                    .where(market_shocks.c.id.in_([r.id for r in rows]))
                    .values(applied_at=now)
                )
        return [
            PendingShock(r.id, r.symbol, r.factor, r.duration_ms, ShockKind(r.kind))
            for r in sorted(rows, key=lambda r: r.id)
        ]

    # -- reading -----------------------------------------------------------------------

    def pending_credits(self) -> list[PendingCredit]:
        with reader(self._engine) as conn:
            rows = conn.execute(
                select(credits).where(credits.c.applied_at.is_(None)).order_by(credits.c.id)
            ).all()
        return [PendingCredit(r.id, r.account, r.asset, r.amount, r.reason) for r in rows]

    def load(self) -> StoredExchange:
        with reader(self._engine) as conn:
            bal = [
                (r.account, r.asset, r.free, r.locked) for r in conn.execute(select(balances)).all()
            ]
            orders = [
                _order(r)
                for r in conn.execute(
                    select(spot_orders).where(spot_orders.c.status.in_(_OPEN))
                ).all()
            ]
            books = [
                BookRow(r.symbol, r.next_order_id, r.next_trade_id, r.last_price, r.reference_price)
                for r in conn.execute(select(spot_books)).all()
            ]
            list_ids = sorted({o.order_list_id for o in orders if o.order_list_id is not None})
            c = spot_order_lists.c
            lists = self._lists(conn, select(c.list_id).where(c.list_id.in_(list_ids)))
            last_list = conn.execute(select(func.max(spot_order_lists.c.list_id))).scalar()
            pm = spot_prevented_matches.c
            prevented = [
                (r[0], r[1] + 1)
                for r in conn.execute(
                    select(pm.symbol, func.max(pm.prevented_match_id)).group_by(pm.symbol)
                ).all()
            ]
        return StoredExchange(bal, orders, books, lists, (last_list or 0) + 1, prevented)

    def order_lists(
        self,
        account: int,
        window: History,
        list_id: int | None = None,
        list_client_order_id: str | None = None,
    ) -> list[StoredOrderList]:
        """An account's order lists with their orders: one by id or client id (the
        newest with that client id), else a page of ``window`` (by ``from_id`` or
        time, as ``allOrderList`` pages them), oldest first."""
        c = spot_order_lists.c
        q = select(c.list_id).where(c.account == account)
        if list_id is not None or list_client_order_id is not None:
            if list_id is not None:
                q = q.where(c.list_id == list_id)
            if list_client_order_id is not None:
                q = q.where(c.list_client_order_id == list_client_order_id)
            q = q.order_by(c.list_id.desc()).limit(1)
        else:
            q = _page(q, c.list_id, c.transaction_time, window)
        with reader(self._engine) as conn:
            lists = self._lists(conn, q)
            ids = [ol.list_id for ol in lists]
            legs: dict[int, list[OrderRecord]] = {i: [] for i in ids}
            if ids:
                q = select(spot_orders).where(spot_orders.c.order_list_id.in_(ids))
                for r in conn.execute(q.order_by(spot_orders.c.order_id)).all():
                    legs[r.order_list_id].append(_order(r))
        return [StoredOrderList(ol, legs[ol.list_id]) for ol in lists]

    @staticmethod
    def _lists(conn: Connection, list_ids: Select[Any]) -> list[OrderList]:
        """The lists whose ids ``list_ids`` selects, oldest first."""
        q = select(spot_order_lists, spot_orders.c.order_id).join(
            spot_orders, spot_orders.c.order_list_id == spot_order_lists.c.list_id
        )
        q = q.where(spot_order_lists.c.list_id.in_(list_ids.scalar_subquery()))
        rows = conn.execute(q.order_by(spot_orders.c.order_id)).all()
        by_id: dict[int, OrderList] = {}
        ids: dict[int, list[int]] = {}
        for r in rows:
            if r.list_id not in by_id:
                by_id[r.list_id] = OrderList(
                    r.list_id,
                    ContingencyType(r.contingency_type),
                    r.symbol,
                    r.account,
                    r.list_client_order_id,
                    r.transaction_time,
                    (),
                )
            ids.setdefault(r.list_id, []).append(r.order_id)
        for list_id, ol in by_id.items():
            ol.order_ids = tuple(ids[list_id])
        return [by_id[i] for i in sorted(by_id)]

    def balances(self, account: int) -> dict[str, tuple[int, int]]:
        """``account``'s free and locked balance per asset."""
        b = balances.c
        q = select(b.asset, b.free, b.locked).where(b.account == account).order_by(b.asset)
        with reader(self._engine) as conn:
            return {r.asset: (r.free, r.locked) for r in conn.execute(q).all()}

    def open_orders(self, account: int, symbol: str | None) -> list[OrderRecord]:
        """``account``'s open orders (on ``symbol``, or all), oldest first."""
        c = spot_orders.c
        q = select(spot_orders).where(c.account == account, c.status.in_(_OPEN))
        if symbol is not None:
            q = q.where(c.symbol == symbol)
        with reader(self._engine) as conn:
            rows = conn.execute(q.order_by(c.time, c.symbol, c.order_id)).all()
        return [_order(r) for r in rows]

    def open_order_lists(self, account: int) -> list[StoredOrderList]:
        """``account``'s order lists that still have an open order, oldest first."""
        c = spot_orders.c
        q = select(c.order_list_id).where(
            c.account == account, c.status.in_(_OPEN), c.order_list_id.is_not(None)
        )
        with reader(self._engine) as conn:
            ids = sorted({r[0] for r in conn.execute(q.distinct()).all()})
        found = [self.order_lists(account, History(limit=1), list_id) for list_id in ids]
        return [lists[0] for lists in found if lists]

    def recent_client_ids(self, since: int) -> list[tuple[int, str, str, int]]:
        """``(account, symbol, client order id, time)`` of users' orders placed since
        ``since`` and not canceled, oldest first."""
        c = spot_orders.c
        q = (
            select(c.account, c.symbol, c.client_order_id, c.time)
            .where(c.time >= since, c.account > 0, c.status != OrderStatus.CANCELED.value)
            .order_by(c.time)
        )
        with reader(self._engine) as conn:
            return [(r[0], r[1], r[2], r[3]) for r in conn.execute(q).all()]

    def command_replies(self, command_ids: list[str]) -> dict[str, bytes]:
        """The stored answers of those of ``command_ids`` the engine already applied."""
        if not command_ids:
            return {}
        c = engine_commands.c
        q = select(c.command_id, c.reply).where(c.command_id.in_(command_ids))
        with reader(self._engine) as conn:
            return {r.command_id: bytes(r.reply) for r in conn.execute(q).all()}

    def prune_commands(self, before: int) -> int:
        """Forget the answers of commands applied before ``before`` (a broker redelivers
        a command within minutes, never days)."""
        with self._engine.begin() as conn:
            result = conn.execute(
                engine_commands.delete().where(engine_commands.c.created_at < before)
            )
            return int(result.rowcount or 0)

    def order(
        self, account: int, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> OrderRecord | None:
        q = select(spot_orders).where(
            spot_orders.c.account == account, spot_orders.c.symbol == symbol
        )
        if order_id is not None:
            q = q.where(spot_orders.c.order_id == order_id)
        if client_order_id is not None:
            q = q.where(spot_orders.c.client_order_id == client_order_id)
        q = q.order_by(spot_orders.c.order_id.desc()).limit(1)
        with reader(self._engine) as conn:
            row = conn.execute(q).first()
        return None if row is None else _order(row)

    def orders(self, account: int, symbol: str, window: History) -> list[OrderRecord]:
        """A page of ``account``'s orders on ``symbol``, oldest first."""
        c = spot_orders.c
        q = select(spot_orders).where(c.account == account, c.symbol == symbol)
        q = _page(q, c.order_id, c.time, window)
        with reader(self._engine) as conn:
            rows = [_order(r) for r in conn.execute(q).all()]
        return sorted(rows, key=lambda o: o.order_id)

    def trades(
        self, account: int, symbol: str, window: History, order_id: int | None = None
    ) -> list[TradeRecord]:
        """A page of ``account``'s trades on ``symbol`` (of one order), oldest first."""
        c = spot_trades.c
        mine = or_(c.buyer == account, c.seller == account)
        q = select(spot_trades).where(c.symbol == symbol, mine)
        if order_id is not None:
            q = q.where(
                or_(
                    and_(c.buyer == account, c.buy_order_id == order_id),
                    and_(c.seller == account, c.sell_order_id == order_id),
                )
            )
        q = _page(q, c.trade_id, c.time, window)
        with reader(self._engine) as conn:
            rows = [_trade(r) for r in conn.execute(q).all()]
        return sorted(rows, key=lambda t: t.trade_id)

    def prevented_matches(
        self, account: int, symbol: str, query: PreventedQuery
    ) -> list[PreventedMatch]:
        """The account's prevented matches on ``symbol``: one by id, or those of an
        order (as taker or maker) from ``from_id`` on, oldest first."""
        c = spot_prevented_matches.c
        q = select(spot_prevented_matches).where(c.account == account, c.symbol == symbol)
        if query.prevented_match_id is not None:
            q = q.where(c.prevented_match_id == query.prevented_match_id)
        if query.order_id is not None:
            q = q.where(or_(c.taker_order_id == query.order_id, c.maker_order_id == query.order_id))
        if query.from_id is not None:
            q = q.where(c.prevented_match_id >= query.from_id)
        q = q.order_by(c.prevented_match_id).limit(query.limit)
        with reader(self._engine) as conn:
            return [_prevented(r) for r in conn.execute(q).all()]

    # -- market history (the public tape, 1m candles, back-fill plans) -------------------

    def _write_market(self, run: Any, batch: Batch) -> None:
        """The batch's public trades, changed 1m candles and back-fill plans (in the
        batch's transaction; TapeTrade is a row of ``market_trades`` as it is)."""
        sql = self._sql
        if batch.market_trades:
            run(sql["market_trades"], batch.market_trades)
        if batch.market_minutes:
            run(
                sql["market_minutes"],
                [_minute_values(m.symbol, m.candle) for m in batch.market_minutes],
            )
        if batch.market_backfills:
            run(
                sql["market_backfills"],
                [
                    (s, p.anchor, p.price, p.seed, p.volume_per_minute)
                    for s, p in batch.market_backfills
                ],
            )

    def market_history(self, keep_trades: int) -> dict[str, MarketHistory]:
        """Each symbol's stored market history: back-fill plan, 1m candles (oldest first)
        and its newest ``keep_trades`` public trades (in id order), read as of one moment
        (a gateway follows the engine's events from there)."""
        plans: dict[str, Backfill] = {}
        minutes: dict[str, list[Candle]] = {}
        trades: dict[str, list[TapeTrade]] = {}
        conn = reader(self._engine)
        if self.network:  # one snapshot for every read (SQLite's transaction is one)
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn:
            for r in conn.execute(select(market_backfills)).all():
                plans[r.symbol] = Backfill(r.anchor, r.price, r.seed, r.volume_per_minute)
            mc = market_minutes.c
            by_time = select(market_minutes).order_by(mc.symbol, mc.open_time)
            for symbol, opened, o, h, low, c, v, qv, n, tb, tq in conn.execute(by_time).all():
                kept = minutes.get(symbol)  # a month of rows: positional and quick
                if kept is None:
                    kept = minutes[symbol] = []
                kept.append(
                    Candle(opened, opened + MINUTE - 1, o, h, low, c, v, int(qv), n, tb, int(tq))
                )
            t = market_trades.c
            for (symbol,) in conn.execute(select(t.symbol).distinct()).all():
                q = select(market_trades).where(t.symbol == symbol)
                rows = conn.execute(q.order_by(t.trade_id.desc()).limit(keep_trades)).all()
                trades[symbol] = [_tape_trade(r) for r in reversed(rows)]
        return {
            symbol: MarketHistory(
                plans.get(symbol), minutes.get(symbol, []), trades.get(symbol, [])
            )
            for symbol in sorted({*plans, *minutes, *trades})
        }

    def public_trades(self, symbol: str, from_id: int, limit: int) -> list[TapeTrade]:
        """Up to ``limit`` public trades of ``symbol`` from id ``from_id`` on, in id order."""
        t = market_trades.c
        q = select(market_trades).where(t.symbol == symbol, t.trade_id >= from_id)
        with reader(self._engine) as conn:
            rows = conn.execute(q.order_by(t.trade_id).limit(limit)).all()
        return [_tape_trade(r) for r in rows]

    def prune_market_history(self, before: int, keep_trades: int) -> int:
        """Forget each symbol's 1m candles that opened before ``before`` (its newest one
        stays: the price of a quiet market) and all but its newest ``keep_trades``
        public trades; how many rows went. A back-fill plan whose candles after it are
        gone moves up to the first one kept: the synthetic history ends there."""
        m, t, b = market_minutes.c, market_trades.c, market_backfills.c
        gone = 0
        with self._engine.begin() as conn:
            newest = select(m.symbol, func.max(m.open_time)).group_by(m.symbol)
            for symbol, last in conn.execute(newest).all():
                cut = min(before, last)
                result = conn.execute(
                    market_minutes.delete().where(m.symbol == symbol, m.open_time < cut)
                )
                if not result.rowcount:
                    continue
                gone += result.rowcount
                first = conn.execute(
                    select(m.open_time, m.open)
                    .where(m.symbol == symbol)
                    .order_by(m.open_time)
                    .limit(1)
                ).one()
                conn.execute(
                    update(market_backfills)
                    .where(b.symbol == symbol, b.anchor < first.open_time)
                    .values(anchor=first.open_time, price=first.open)
                )
            tape = select(t.symbol, func.max(t.trade_id)).group_by(t.symbol)
            for symbol, last in conn.execute(tape).all():
                result = conn.execute(
                    market_trades.delete().where(
                        t.symbol == symbol, t.trade_id <= last - keep_trades
                    )
                )
                gone += result.rowcount
        return gone


def _minute_values(symbol: str, c: Candle) -> tuple[object, ...]:
    """A row of ``market_minutes``, in its column order."""
    return (
        symbol, c.open_time, c.open, c.high, c.low, c.close, c.volume, str(c.quote_volume),
        c.trades, c.taker_buy_volume, str(c.taker_buy_quote_volume),
    )  # fmt: skip


def _tape_trade(r: Any) -> TapeTrade:
    return TapeTrade(
        r.symbol, r.trade_id, r.price, r.quantity, r.quote, r.time, bool(r.buyer_is_maker),
        r.agg_id,
    )  # fmt: skip


def _page(q: Select[Any], id_column: Any, time_column: Any, window: History) -> Select[Any]:
    """``q`` cut to one page of history as Binance pages it: ``limit`` rows from
    ``from_id`` on, or from ``start`` on, else the newest ``limit`` up to ``end``
    (each within ``start``/``end`` when given). The rows come in either order."""
    from_id, start, end, limit = window
    if from_id is not None:
        q = q.where(id_column >= from_id)
    if start is not None:
        q = q.where(time_column >= start)
    if end is not None:
        q = q.where(time_column <= end)
    oldest_first = from_id is not None or (start is not None and end is None)
    return q.order_by(id_column if oldest_first else id_column.desc()).limit(limit)


def _one(cursor: Any) -> tuple[int, ...]:
    row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def _insert_sql(table: Table, mark: str, skip: tuple[str, ...] = ()) -> str:
    names = [c.name for c in table.columns if c.name not in skip]
    quoted = ", ".join(f'"{n}"' for n in names)
    values = ", ".join(mark for _ in names)  # names from our own schema, values bound
    return f"INSERT INTO {table.name} ({quoted}) VALUES ({values})"  # noqa: S608


def _upsert_sql(table: Table, keys: tuple[str, ...], mark: str) -> str:
    names = [c.name for c in table.columns]
    updates = ", ".join(f'"{n}" = excluded."{n}"' for n in names if n not in keys)
    conflict = ", ".join(f'"{k}"' for k in keys)
    return f"{_insert_sql(table, mark)} ON CONFLICT ({conflict}) DO UPDATE SET {updates}"


def _order_values(o: OrderRecord) -> tuple[object, ...]:
    """A row of ``spot_orders``, in its column order."""
    return (
        o.symbol, o.order_id, o.account, o.key_id, o.client_order_id, o.side.value,
        o.type.value, None if o.time_in_force is None else o.time_in_force.value, o.price,
        o.quantity, o.quote_quantity, o.stop_price, o.stp_mode.value, o.status.value,
        o.executed, o.cumulative_quote, int(o.working), o.working_time, o.hold_asset, o.held,
        o.budget, o.time, o.update_time, o.order_list_id, o.prevented_match_id,
        o.prevented_quantity or None,
    )  # fmt: skip


def _list_values(ol: OrderList) -> tuple[object, ...]:
    """A row of ``spot_order_lists``, in its column order."""
    return (
        ol.list_id,
        ol.contingency_type.value,
        ol.symbol,
        ol.account,
        ol.list_client_order_id,
        ol.transaction_time,
    )


def _trade_values(t: TradeRecord) -> tuple[object, ...]:
    return (*t[:10], int(t.buyer_is_maker), t.buyer_fee, t.seller_fee)


def _prevented_values(p: PreventedMatch) -> tuple[object, ...]:
    """A row of ``spot_prevented_matches``, in its column order."""
    return (
        p.symbol, p.prevented_match_id, p.taker_order_id, p.maker_order_id, p.account,
        p.price, p.taker_prevented, p.maker_prevented, p.mode.value, p.time,
    )  # fmt: skip


def _prevented(r: Any) -> PreventedMatch:
    return PreventedMatch(
        r.symbol, r.prevented_match_id, r.taker_order_id, r.maker_order_id, r.account,
        r.price, r.taker_prevented, r.maker_prevented, SelfTradePrevention(r.stp_mode), r.time,
    )  # fmt: skip


def _order(r: Any) -> OrderRecord:
    return OrderRecord(
        symbol=r.symbol,
        order_id=r.order_id,
        account=r.account,
        key_id=r.key_id,
        client_order_id=r.client_order_id,
        side=Side(r.side),
        type=OrderType(r.type),
        time_in_force=None if r.time_in_force is None else TimeInForce(r.time_in_force),
        price=r.price,
        quantity=r.quantity,
        quote_quantity=r.quote_quantity,
        stop_price=r.stop_price,
        stp_mode=SelfTradePrevention(r.stp_mode),
        time=r.time,
        update_time=r.update_time,
        status=OrderStatus(r.status),
        executed=r.executed,
        cumulative_quote=r.cumulative_quote,
        working=bool(r.working),
        working_time=r.working_time,
        hold_asset=r.hold_asset,
        held=r.held,
        budget=r.budget,
        order_list_id=r.order_list_id,
        prevented_match_id=r.prevented_match_id,
        prevented_quantity=QuantityUnits(r.prevented_quantity or 0),
    )


def _trade(r: Any) -> TradeRecord:
    return TradeRecord(
        r.symbol, r.trade_id, r.price, r.quantity, r.quote, r.time, r.buyer, r.seller,
        r.buy_order_id, r.sell_order_id, bool(r.buyer_is_maker), r.buyer_fee, r.seller_fee,
    )  # fmt: skip
