"""The schema as SQLAlchemy Core sees it at the newest revision.

Alembic revisions in ``migrations/versions`` create it; these ``Table`` objects build
statements and describe exactly what the migrations create (tables, columns, types,
nullability, server defaults, indexes, unique, check and foreign-key constraints:
``tests/integration/test_schema_matches_tables.py``
compares them with a freshly migrated database). Nothing here is ORM-mapped: repositories
translate rows to domain objects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC instants in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware instant")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        instant: datetime = value
        if instant.tzinfo is None:
            return instant.replace(tzinfo=UTC)
        return instant.astimezone(UTC)


tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tier", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("billing_anchor_day", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("model_preference", sa.String(200)),
    sa.Column("past_due_since", UtcDateTime),
    sa.Column("stripe_customer_id", sa.String(255)),
    sa.Column("stripe_subscription_id", sa.String(255)),
    sa.Column("subscription_updated_at", UtcDateTime),
    sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("zone_history", sa.Text),
    sa.CheckConstraint("tier IN ('starter', 'premium', 'byok')", name="ck_tenants_tier"),
    sa.CheckConstraint(
        "status IN ('incomplete', 'active', 'past_due', 'canceled')", name="ck_tenants_status"
    ),
    sa.CheckConstraint("billing_anchor_day BETWEEN 1 AND 31", name="ck_tenants_anchor_day"),
    sa.Index("ix_tenants_stripe_customer_id", "stripe_customer_id"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column(
        "tenant_id",
        sa.String(64),
        sa.ForeignKey("tenants.id", name="fk_users_tenant_id"),
        nullable=False,
    ),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("email_verified_at", UtcDateTime),
    sa.UniqueConstraint("email", name="uq_users_email"),
    sa.Index("ix_users_tenant_id", "tenant_id"),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column(
        "tenant_id",
        sa.String(64),
        sa.ForeignKey("tenants.id", name="fk_credentials_tenant_id"),
        primary_key=True,
    ),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("model_preference", sa.String(200), nullable=False),
    sa.Column("ciphertext_store", sa.String(64), nullable=False),
    sa.Column("ciphertext_key_version", sa.Integer, nullable=False),
    sa.Column("ciphertext_token", sa.Text, nullable=False),
    sa.Column("key_mask", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("allow_platform_fallback", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("last_verified_at", UtcDateTime),
    sa.Column("last_error", sa.Text),
    sa.CheckConstraint(
        "status IN ('unverified', 'valid', 'invalid')", name="ck_credentials_status"
    ),
)

auth_tokens = sa.Table(
    "auth_tokens",
    metadata,
    sa.Column("token_hash", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
    sa.Column("last_used_at", UtcDateTime),
    sa.Index("ix_auth_tokens_subject", "subject"),
)

processed_events = sa.Table(
    "processed_events",
    metadata,
    sa.Column("event_id", sa.String(255), primary_key=True),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("outcome", sa.String(255), nullable=False),
    sa.Column("processed_at", UtcDateTime, nullable=False),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("window_key", sa.String(32)),
    sa.Column("percent", sa.Integer),
    sa.Column("used", sa.BigInteger),
    sa.Column("limit_value", sa.BigInteger),
    sa.Column("provider", sa.String(64)),
    sa.Column(
        "created_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()
    ),
    sa.UniqueConstraint("tenant_id", "kind", "window_key", "percent", name="uq_notifications_once"),
    sa.Column("public_id", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("user_id", sa.String(64)),
    sa.Column("link_store", sa.String(64)),
    sa.Column("link_key_version", sa.Integer),
    sa.Column("link_token", sa.Text),
    sa.Column("read_at", UtcDateTime),
    sa.UniqueConstraint("public_id", name="uq_notifications_public_id"),
    sa.Index("ix_notifications_tenant", "tenant_id", "id"),
)

notification_deliveries = sa.Table(
    "notification_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "notification_id",
        sa.Integer,
        sa.ForeignKey("notifications.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("claimed_until", UtcDateTime),
    sa.Column("claim_token", sa.String(64)),
    sa.Column("last_error", sa.Text),
    sa.Column("finished_at", UtcDateTime),
    sa.UniqueConstraint("notification_id", "channel", name="uq_deliveries_channel"),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
)

notification_settings = sa.Table(
    "notification_settings",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("email_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("webhook_url", sa.Text),
    sa.Column("secret_store", sa.String(64)),
    sa.Column("secret_key_version", sa.Integer),
    sa.Column("secret_token", sa.Text),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

usage_days = sa.Table(
    "usage_days",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("day_key", sa.Date, primary_key=True),
    sa.Column("messages", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("messages >= 0", name="ck_usage_days_messages"),
)

usage_periods = sa.Table(
    "usage_periods",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("period_key", sa.Date, primary_key=True),
    sa.Column("tokens_settled", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("tokens_reserved", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("own_key_tokens", sa.BigInteger, nullable=False, server_default="0"),
)

HELD = sa.text("state = 'held'")
UNSWEPT = sa.text("state IN ('held', 'lapsed')")

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("message_id", sa.String(255), primary_key=True),
    sa.Column("day_key", sa.Date, nullable=False),
    sa.Column("period_key", sa.Date, nullable=False),
    sa.Column("tokens", sa.BigInteger, nullable=False),
    sa.Column("admitted_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("offered_models", sa.Text, nullable=False, server_default=""),
    sa.Column("tenant_key_model", sa.String(200)),
    sa.Column("max_weight", sa.Numeric(12, 4), nullable=False, server_default="1"),
    sa.Column("claimed_by", sa.String(255)),
    sa.CheckConstraint(
        "state IN ('held', 'lapsed', 'settled', 'expired', 'released')",
        name="ck_reservations_state",
    ),
    sa.Index(
        "ix_reservations_held_period",
        "tenant_id",
        "period_key",
        "expires_at",
        postgresql_where=HELD,
        sqlite_where=HELD,
    ),
    sa.Index(
        "ix_reservations_unswept_expiry",
        "expires_at",
        postgresql_where=UNSWEPT,
        sqlite_where=UNSWEPT,
    ),
)

settlements = sa.Table(
    "settlements",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("credential", sa.String(16), nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cache_read_tokens", sa.BigInteger, nullable=False),
    sa.Column("weighted_tokens", sa.BigInteger, nullable=False),
    sa.Column("counts_against_budget", sa.Boolean, nullable=False),
    sa.Column("day_key", sa.Date, nullable=False),
    sa.Column("period_key", sa.Date, nullable=False),
    sa.Column("settled_at", UtcDateTime, nullable=False),
    sa.Column("reported_credential", sa.String(16)),
    sa.Column("anomaly", sa.String(64)),
    sa.UniqueConstraint("tenant_id", "message_id", name="uq_settlements_message"),
    sa.Index("ix_settlements_settled_at", "settled_at"),
)

virtual_keys = sa.Table(
    "virtual_keys",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("key_hash", sa.String(128), nullable=False),
    sa.Column("ciphertext_store", sa.String(64), nullable=False),
    sa.Column("ciphertext_key_version", sa.Integer, nullable=False),
    sa.Column("ciphertext_token", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("key_hash", name="uq_virtual_keys_key_hash"),
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", UtcDateTime, nullable=False, index=True),
)

one_time_tokens = sa.Table(
    "one_time_tokens",
    metadata,
    sa.Column("token_hash", sa.String(128), primary_key=True),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("used_at", UtcDateTime),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=True),
    sa.Column("detail", sa.String(500), nullable=False, server_default=""),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_tenant_at", "tenant_id", "at"),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("subscription_id", sa.String(255), nullable=False),
    sa.Column("current_period_start", UtcDateTime),
    sa.Column("current_period_end", UtcDateTime),
    sa.Column("cancel_at_period_end", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("pending_tier", sa.String(32)),
    sa.Column("pending_from", UtcDateTime),
)

paid_invoices = sa.Table(
    "paid_invoices",
    metadata,
    sa.Column("invoice_id", sa.String(255), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False, index=True),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("paid_at", UtcDateTime, nullable=False, index=True),
)
