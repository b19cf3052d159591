"""Prevented matches: each match self-trade prevention stopped, for
``GET /api/v3/myPreventedMatches``; an order expired by one carries its id and the
quantity it expired (Binance's ``preventedMatchId`` and ``preventedQuantity``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spot_orders") as batch:
        batch.add_column(sa.Column("prevented_match_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("prevented_quantity", sa.BigInteger(), nullable=True))
    op.create_table(
        "spot_prevented_matches",
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("prevented_match_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("taker_order_id", sa.BigInteger(), nullable=False),
        sa.Column("maker_order_id", sa.BigInteger(), nullable=False),
        sa.Column("account", sa.Integer(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("taker_prevented", sa.BigInteger(), nullable=False),
        sa.Column("maker_prevented", sa.BigInteger(), nullable=False),
        sa.Column("stp_mode", sa.String(length=16), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "prevented_match_id", name="pk_spot_prevented_matches"),
    )
    op.create_index(
        "ix_spot_prevented_matches_taker",
        "spot_prevented_matches",
        ["account", "symbol", "taker_order_id"],
    )
    op.create_index(
        "ix_spot_prevented_matches_maker",
        "spot_prevented_matches",
        ["account", "symbol", "maker_order_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_spot_prevented_matches_maker", table_name="spot_prevented_matches")
    op.drop_index("ix_spot_prevented_matches_taker", table_name="spot_prevented_matches")
    op.drop_table("spot_prevented_matches")
    with op.batch_alter_table("spot_orders") as batch:
        batch.drop_column("prevented_quantity")
        batch.drop_column("prevented_match_id")
