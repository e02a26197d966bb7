"""Accounts and sessions: when a token was last used (idle expiry), the failed-login counts
behind throttling, the mailed single-use codes (password reset, email verification) and
when a user's address was verified, and the outbox rows of account mail.

Revision ID: 0009_accounts
Revises: 0010_subscriptions
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_accounts"
down_revision = "0008_notifications"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("auth_tokens", sa.Column("last_used_at", TS))
    op.create_index("ix_auth_tokens_subject", "auth_tokens", ["subject"])
    op.add_column("users", sa.Column("email_verified_at", TS))
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", TS, nullable=False, index=True),
    )
    op.create_table(
        "one_time_tokens",
        sa.Column("token_hash", sa.String(128), primary_key=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
    )
    op.create_table(
        "account_mail_outbox",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("claimed_until", TS),
        sa.Column("delivered_at", TS),
        sa.Column("last_error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("account_mail_outbox")
    op.drop_table("one_time_tokens")
    op.drop_table("login_attempts")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_verified_at")
    op.drop_index("ix_auth_tokens_subject", table_name="auth_tokens")
    with op.batch_alter_table("auth_tokens") as batch:
        batch.drop_column("last_used_at")
