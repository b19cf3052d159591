"""Spot exchange: orders, trades, balances, the ledger journal, book state, operator credits
and market shocks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big, integer, string = sa.BigInteger, sa.Integer, sa.String
    op.create_table(
        "spot_orders",
        sa.Column("symbol", string(length=20), nullable=False),
        sa.Column("order_id", big(), autoincrement=False, nullable=False),
        sa.Column("account", integer(), nullable=False),
        sa.Column("key_id", integer(), nullable=True),
        sa.Column("client_order_id", string(length=64), nullable=False),
        sa.Column("side", string(length=4), nullable=False),
        sa.Column("type", string(length=24), nullable=False),
        sa.Column("time_in_force", string(length=4), nullable=True),
        sa.Column("price", big(), nullable=False),
        sa.Column("quantity", big(), nullable=True),
        sa.Column("quote_quantity", big(), nullable=True),
        sa.Column("stop_price", big(), nullable=True),
        sa.Column("stp_mode", string(length=16), nullable=False),
        sa.Column("status", string(length=24), nullable=False),
        sa.Column("executed", big(), nullable=False),
        sa.Column("cumulative_quote", big(), nullable=False),
        sa.Column("working", integer(), nullable=False),
        sa.Column("working_time", big(), nullable=True),
        sa.Column("hold_asset", string(length=16), nullable=False),
        sa.Column("held", big(), nullable=False),
        sa.Column("budget", big(), nullable=True),
        sa.Column("time", big(), nullable=False),
        sa.Column("update_time", big(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "order_id", name="pk_spot_orders"),
    )
    op.create_index("ix_spot_orders_account", "spot_orders", ["account", "symbol", "order_id"])
    op.create_index("ix_spot_orders_status", "spot_orders", ["status"])
    op.create_index(
        "ix_spot_orders_client_order_id", "spot_orders", ["account", "symbol", "client_order_id"]
    )
    op.create_table(
        "spot_trades",
        sa.Column("symbol", string(length=20), nullable=False),
        sa.Column("trade_id", big(), autoincrement=False, nullable=False),
        sa.Column("price", big(), nullable=False),
        sa.Column("quantity", big(), nullable=False),
        sa.Column("quote", big(), nullable=False),
        sa.Column("time", big(), nullable=False),
        sa.Column("buyer", integer(), nullable=False),
        sa.Column("seller", integer(), nullable=False),
        sa.Column("buy_order_id", big(), nullable=False),
        sa.Column("sell_order_id", big(), nullable=False),
        sa.Column("buyer_is_maker", integer(), nullable=False),
        sa.Column("buyer_fee", big(), nullable=False),
        sa.Column("seller_fee", big(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "trade_id", name="pk_spot_trades"),
    )
    op.create_index("ix_spot_trades_buyer", "spot_trades", ["buyer", "symbol", "trade_id"])
    op.create_index("ix_spot_trades_seller", "spot_trades", ["seller", "symbol", "trade_id"])
    op.create_table(
        "balances",
        sa.Column("account", integer(), autoincrement=False, nullable=False),
        sa.Column("asset", string(length=16), nullable=False),
        sa.Column("free", big(), nullable=False),
        sa.Column("locked", big(), nullable=False),
        sa.Column("updated_at", big(), nullable=False),
        sa.PrimaryKeyConstraint("account", "asset", name="pk_balances"),
    )
    op.create_table(
        "ledger_journal",
        sa.Column("id", integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", big(), nullable=False),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_journal"),
    )
    op.create_table(
        "spot_books",
        sa.Column("symbol", string(length=20), nullable=False),
        sa.Column("next_order_id", big(), nullable=False),
        sa.Column("next_trade_id", big(), nullable=False),
        sa.Column("last_price", big(), nullable=True),
        sa.Column("reference_price", string(length=40), nullable=True),
        sa.Column("updated_at", big(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", name="pk_spot_books"),
    )
    op.create_table(
        "credits",
        sa.Column("id", integer(), autoincrement=True, nullable=False),
        sa.Column("account", integer(), nullable=False),
        sa.Column("asset", string(length=16), nullable=False),
        sa.Column("amount", big(), nullable=False),
        sa.Column("reason", string(length=32), nullable=False),
        sa.Column("created_at", big(), nullable=False),
        sa.Column("applied_at", big(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_credits"),
    )
    op.create_index("ix_credits_applied_at", "credits", ["applied_at"])
    op.create_table(
        "market_shocks",
        sa.Column("id", integer(), autoincrement=True, nullable=False),
        sa.Column("symbol", string(length=20), nullable=False),
        sa.Column("factor", string(length=40), nullable=False),
        sa.Column("duration_ms", big(), nullable=False),
        sa.Column("created_at", big(), nullable=False),
        sa.Column("applied_at", big(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_market_shocks"),
    )
    op.create_index("ix_market_shocks_applied_at", "market_shocks", ["applied_at"])


def downgrade() -> None:
    for table in (
        "market_shocks",
        "credits",
        "spot_books",
        "ledger_journal",
        "balances",
        "spot_trades",
        "spot_orders",
    ):
        op.drop_table(table)
