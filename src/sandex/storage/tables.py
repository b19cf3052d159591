"""The database schema (SQLAlchemy Core). Migrations in ``migrations/`` build exactly this;
a test compares the two."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
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
    "spot_orders",
    "spot_order_lists",
    "spot_trades",
    "spot_prevented_matches",
    "balances",
    "ledger_journal",
    "spot_books",
    "credits",
    "market_shocks",
    "invites",
    "engine_commands",
    "market_trades",
    "market_minutes",
    "market_backfills",
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

spot_orders = Table(
    "spot_orders",
    metadata,
    Column("symbol", String(20), primary_key=True),
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account", Integer, nullable=False),
    Column("key_id", Integer, nullable=True),
    Column("client_order_id", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("type", String(24), nullable=False),
    Column("time_in_force", String(4), nullable=True),
    Column("price", BigInteger, nullable=False),
    Column("quantity", BigInteger, nullable=True),
    Column("quote_quantity", BigInteger, nullable=True),
    Column("stop_price", BigInteger, nullable=True),
    Column("stp_mode", String(16), nullable=False),
    Column("status", String(24), nullable=False),
    Column("executed", BigInteger, nullable=False),
    Column("cumulative_quote", BigInteger, nullable=False),
    Column("working", Integer, nullable=False),
    Column("working_time", BigInteger, nullable=True),
    Column("hold_asset", String(16), nullable=False),
    Column("held", BigInteger, nullable=False),
    Column("budget", BigInteger, nullable=True),
    Column("time", BigInteger, nullable=False),
    Column("update_time", BigInteger, nullable=False),
    Column("order_list_id", BigInteger, nullable=True),
    Column("prevented_match_id", BigInteger, nullable=True),
    Column("prevented_quantity", BigInteger, nullable=True),
    Index("ix_spot_orders_account", "account", "symbol", "order_id"),
    Index("ix_spot_orders_status", "status"),
    Index("ix_spot_orders_client_order_id", "account", "symbol", "client_order_id"),
    Index("ix_spot_orders_order_list_id", "order_list_id"),
)

spot_order_lists = Table(
    "spot_order_lists",
    metadata,
    Column("list_id", BigInteger, primary_key=True, autoincrement=False),
    Column("contingency_type", String(8), nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("account", Integer, nullable=False),
    Column("list_client_order_id", String(64), nullable=False),
    Column("transaction_time", BigInteger, nullable=False),
    Index("ix_spot_order_lists_account", "account", "list_id"),
    Index("ix_spot_order_lists_client_id", "account", "list_client_order_id"),
)
"""Order lists (OCO); their orders carry ``spot_orders.order_list_id``. A list's status
is its orders' (executing while one is open)."""

spot_trades = Table(
    "spot_trades",
    metadata,
    Column("symbol", String(20), primary_key=True),
    Column("trade_id", BigInteger, primary_key=True, autoincrement=False),
    Column("price", BigInteger, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("quote", BigInteger, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("buyer", Integer, nullable=False),
    Column("seller", Integer, nullable=False),
    Column("buy_order_id", BigInteger, nullable=False),
    Column("sell_order_id", BigInteger, nullable=False),
    Column("buyer_is_maker", Integer, nullable=False),
    Column("buyer_fee", BigInteger, nullable=False),
    Column("seller_fee", BigInteger, nullable=False),
    Index("ix_spot_trades_buyer", "buyer", "symbol", "trade_id"),
    Index("ix_spot_trades_seller", "seller", "symbol", "trade_id"),
)

spot_prevented_matches = Table(
    "spot_prevented_matches",
    metadata,
    Column("symbol", String(20), primary_key=True),
    Column("prevented_match_id", BigInteger, primary_key=True, autoincrement=False),
    Column("taker_order_id", BigInteger, nullable=False),
    Column("maker_order_id", BigInteger, nullable=False),
    Column("account", Integer, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("taker_prevented", BigInteger, nullable=False),
    Column("maker_prevented", BigInteger, nullable=False),
    Column("stp_mode", String(16), nullable=False),
    Column("time", BigInteger, nullable=False),
    Index("ix_spot_prevented_matches_taker", "account", "symbol", "taker_order_id"),
    Index("ix_spot_prevented_matches_maker", "account", "symbol", "maker_order_id"),
)
"""Matches self-trade prevention stopped (``myPreventedMatches``); ids go on per symbol
after a restart from the highest stored one."""

balances = Table(
    "balances",
    metadata,
    Column("account", Integer, primary_key=True, autoincrement=False),
    Column("asset", String(16), primary_key=True),
    Column("free", BigInteger, nullable=False),
    Column("locked", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

ledger_journal = Table(
    "ledger_journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", BigInteger, nullable=False),
    # the ledger entries of one commit that touch a user, as JSON:
    # [[kind, [[account, asset, bucket, amount], ...], ref], ...]
    Column("entries", Text, nullable=False),
)

spot_books = Table(
    "spot_books",
    metadata,
    Column("symbol", String(20), primary_key=True),
    Column("next_order_id", BigInteger, nullable=False),
    Column("next_trade_id", BigInteger, nullable=False),
    Column("last_price", BigInteger, nullable=True),
    Column("reference_price", String(40), nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)

credits = Table(
    "credits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", Integer, nullable=False),
    Column("asset", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("applied_at", BigInteger, nullable=True),
    Index("ix_credits_applied_at", "applied_at"),
)

market_shocks = Table(
    "market_shocks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("symbol", String(20), nullable=False),
    Column("factor", String(40), nullable=False),
    Column("duration_ms", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("applied_at", BigInteger, nullable=True),
    Column("kind", String(16), nullable=False, server_default="price"),
    Index("ix_market_shocks_applied_at", "applied_at"),
)

invites = Table(
    "invites",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", LargeBinary, nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
)

engine_commands = Table(
    "engine_commands",
    metadata,
    Column("command_id", String(64), primary_key=True),
    Column("reply", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_engine_commands_created_at", "created_at"),
)

market_trades = Table(
    "market_trades",
    metadata,
    Column("symbol", String(20), primary_key=True),
    Column("trade_id", BigInteger, primary_key=True, autoincrement=False),
    Column("price", BigInteger, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("quote", BigInteger, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("buyer_is_maker", Boolean, nullable=False),
    Column("agg_id", BigInteger, nullable=False),
)
"""The public trade tape, every trade of the market (``spot_trades`` keeps the users'
only), the newest ones per symbol (the primary key reads "the last N" and "from id")."""

market_minutes = Table(
    "market_minutes",
    metadata,
    Column("symbol", String(20), primary_key=True),
    Column("open_time", BigInteger, primary_key=True, autoincrement=False),
    Column("open", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    Column("low", BigInteger, nullable=False),
    Column("close", BigInteger, nullable=False),
    Column("volume", BigInteger, nullable=False),
    Column("quote_volume", Text, nullable=False),
    Column("trades", BigInteger, nullable=False),
    Column("taker_buy_volume", BigInteger, nullable=False),
    Column("taker_buy_quote_volume", Text, nullable=False),
    Index("ix_market_minutes_open_time", "open_time"),
)
"""The 1m candles that have trades (a quiet minute is flat at the close before it). The
quote volumes are decimal strings: a minute's sum of price units times quantity units
can outgrow 64 bits."""

market_backfills = Table(
    "market_backfills",
    metadata,
    Column("symbol", String(20), primary_key=True),
    Column("anchor", BigInteger, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("volume_per_minute", Float, nullable=False),
)
"""What each symbol's synthetic history before ``anchor`` is generated from, so that it
is the same history after a restart."""
