"""Market shocks have a kind: ``price`` (crash or pump) or ``liquidity`` (a thinner or
deeper book for a while).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("market_shocks") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), server_default="price", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("market_shocks") as batch:
        batch.drop_column("kind")
