"""Engine commands: the id and answer of every command a gateway sent the engine over
the broker, written in the same transaction as what it changed, so that a command
delivered again after the engine died is answered and never applied twice.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_commands",
        sa.Column("command_id", sa.String(length=64), nullable=False),
        sa.Column("reply", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("command_id", name="pk_engine_commands"),
    )
    op.create_index("ix_engine_commands_created_at", "engine_commands", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_engine_commands_created_at", table_name="engine_commands")
    op.drop_table("engine_commands")
