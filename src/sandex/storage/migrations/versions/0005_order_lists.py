"""Order lists (OCO): the lists, and each order's list.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("spot_orders", sa.Column("order_list_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_spot_orders_order_list_id", "spot_orders", ["order_list_id"])
    op.create_table(
        "spot_order_lists",
        sa.Column("list_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("contingency_type", sa.String(length=8), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("account", sa.Integer(), nullable=False),
        sa.Column("list_client_order_id", sa.String(length=64), nullable=False),
        sa.Column("transaction_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("list_id", name="pk_spot_order_lists"),
    )
    op.create_index("ix_spot_order_lists_account", "spot_order_lists", ["account", "list_id"])
    op.create_index(
        "ix_spot_order_lists_client_id", "spot_order_lists", ["account", "list_client_order_id"]
    )


def downgrade() -> None:
    op.drop_table("spot_order_lists")
    op.drop_index("ix_spot_orders_order_list_id", table_name="spot_orders")
    with op.batch_alter_table("spot_orders") as batch:
        batch.drop_column("order_list_id")
