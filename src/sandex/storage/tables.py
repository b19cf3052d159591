"""The database schema (SQLAlchemy Core). Migrations in ``migrations/`` build exactly this;
a test compares the two."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "metadata",
    "users",
    "recovery_codes",
    "throttles",
    "api_keys",
    "audit_log",
    "audit_head",
    "server_secrets",
    "sessions",
    "key_changes",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("totp_envelope", LargeBinary, nullable=True),
    Column("totp_enrolled_at", BigInteger, nullable=True),
    Column("totp_confirmed_at", BigInteger, nullable=True),
    Column("totp_last_step", BigInteger, nullable=True),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("digest", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Index("ix_recovery_codes_user_id", "user_id"),
)

throttles = Table(
    "throttles",
    metadata,
    Column("subject", String(400), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_started_at", BigInteger, nullable=False),
    Column("locked_until", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("lookup_hash", LargeBinary, nullable=False, unique=True),
    Column("label", String(64), nullable=False),
    Column("permissions", Integer, nullable=False),
    Column("ip_allowlist", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("symbols", Text, nullable=True),
    Column("max_notional", String(64), nullable=True),
    Column("max_open_orders", Integer, nullable=True),
    Column("mode", String(16), nullable=False),
    Column("secret_envelope", LargeBinary, nullable=True),
    Column("public_key_pem", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("trade_lapses_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Column("rotated_from", Integer, nullable=True),
    Column("rotated_to", Integer, nullable=True),
    Column("grace_ends_at", BigInteger, nullable=True),
    Column("last_used_at", BigInteger, nullable=True),
    Column("last_used_ip", String(64), nullable=True),
    Index("ix_api_keys_user_id", "user_id"),
    Index("ix_api_keys_prefix", "prefix"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, nullable=False),
    Column("event", String(64), nullable=False),
    Column("actor", String(64), nullable=True),
    Column("user_id", Integer, nullable=True),
    Column("key_prefix", String(16), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("endpoint", Text, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("reason", Text, nullable=True),
    Column("details", Text, nullable=True),
    Column("hash", LargeBinary, nullable=False),
    Index("ix_audit_log_key_prefix", "key_prefix"),
    Index("ix_audit_log_user_id", "user_id"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", LargeBinary, nullable=False),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("envelope", LargeBinary, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("access_hash", LargeBinary, nullable=False, unique=True),
    Column("refresh_hash", LargeBinary, nullable=False, unique=True),
    Column("previous_refresh_hash", LargeBinary, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("access_expires_at", BigInteger, nullable=False),
    Column("refresh_expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("ip", String(64), nullable=True),
    Index("ix_sessions_user_id", "user_id"),
    Index("ix_sessions_previous_refresh_hash", "previous_refresh_hash"),
)

key_changes = Table(
    "key_changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("key_id", Integer, nullable=False),
    Column("changed_at", BigInteger, nullable=False),
    Index("ix_key_changes_changed_at", "changed_at"),
)
