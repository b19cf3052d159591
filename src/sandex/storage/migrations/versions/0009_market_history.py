"""Market history: the public trade tape, the 1m candles that traded and the plan of each
symbol's synthetic history, written in the exchange's group commit, so klines and public
trades read the same after a restart.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "market_trades",
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("quote", sa.BigInteger(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("buyer_is_maker", sa.Boolean(), nullable=False),
        sa.Column("agg_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "trade_id", name="pk_market_trades"),
    )
    op.create_table(
        "market_minutes",
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("open_time", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("open", sa.BigInteger(), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("close", sa.BigInteger(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("quote_volume", sa.Text(), nullable=False),
        sa.Column("trades", sa.BigInteger(), nullable=False),
        sa.Column("taker_buy_volume", sa.BigInteger(), nullable=False),
        sa.Column("taker_buy_quote_volume", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "open_time", name="pk_market_minutes"),
    )
    op.create_index("ix_market_minutes_open_time", "market_minutes", ["open_time"])
    op.create_table(
        "market_backfills",
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("anchor", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("volume_per_minute", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", name="pk_market_backfills"),
    )


def downgrade() -> None:
    op.drop_table("market_backfills")
    op.drop_index("ix_market_minutes_open_time", table_name="market_minutes")
    op.drop_table("market_minutes")
    op.drop_table("market_trades")
