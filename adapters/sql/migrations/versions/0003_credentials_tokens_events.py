"""BYOK credentials, bearer tokens, processed provider events and notifications.

Revision ID: 0003_credentials_tokens_events
Revises: 0002_tier_ids
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_credentials_tokens_events"
down_revision = "0002_tier_ids"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "credentials",
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
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_verified_at", TS),
        sa.Column("last_error", sa.Text),
        sa.CheckConstraint(
            "status IN ('unverified', 'valid', 'invalid')", name="ck_credentials_status"
        ),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_hash", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
    )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(255), nullable=False),
        sa.Column("processed_at", TS, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("window_key", sa.String(32)),
        sa.Column("percent", sa.Integer),
        sa.Column("used", sa.BigInteger),
        sa.Column("limit_value", sa.BigInteger),
        sa.Column("provider", sa.String(64)),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.current_timestamp()),
        sa.UniqueConstraint(
            "tenant_id", "kind", "window_key", "percent", name="uq_notifications_once"
        ),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("processed_events")
    op.drop_table("auth_tokens")
    op.drop_table("credentials")
