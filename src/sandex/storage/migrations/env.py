"""Alembic environment: runs on the connection Sandex hands it (see storage/migrate.py)."""

from __future__ import annotations

from alembic import context

from sandex.storage.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
