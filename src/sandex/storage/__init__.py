"""Storage adapter: SQLAlchemy 2 tables, repositories implementing the service ports,
the unit of work, Alembic migrations, and the master-key file."""

from sandex.storage.database import make_engine, normalize_url, sqlite_url
from sandex.storage.master_key_file import MASTER_KEY_FILE, EnvKeyringSource, FileKeyringSource
from sandex.storage.migrate import upgrade
from sandex.storage.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory

__all__ = [
    "EnvKeyringSource",
    "FileKeyringSource",
    "MASTER_KEY_FILE",
    "SqlUnitOfWork",
    "SqlUnitOfWorkFactory",
    "make_engine",
    "normalize_url",
    "sqlite_url",
    "upgrade",
]
