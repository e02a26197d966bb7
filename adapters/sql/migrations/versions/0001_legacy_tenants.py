"""Tenants and users as the legacy platform had them: tiers ``basic`` and ``plus``.

Revision ID: 0001_legacy_tenants
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_legacy_tenants"
down_revision = None
branch_labels = None
depends_on = None

LEGACY_TIERS = "tier IN ('basic', 'plus')"
STATUSES = "status IN ('incomplete', 'active', 'past_due', 'canceled')"


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("billing_anchor_day", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_preference", sa.String(200)),
        sa.Column("past_due_since", sa.DateTime(timezone=True)),
        sa.Column("stripe_customer_id", sa.String(255)),
        sa.Column("stripe_subscription_id", sa.String(255)),
        sa.Column("subscription_updated_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(LEGACY_TIERS, name="ck_tenants_tier"),
        sa.CheckConstraint(STATUSES, name="ck_tenants_status"),
        sa.CheckConstraint("billing_anchor_day BETWEEN 1 AND 31", name="ck_tenants_anchor_day"),
    )
    op.create_index("ix_tenants_stripe_customer_id", "tenants", ["stripe_customer_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey("tenants.id", name="fk_users_tenant_id"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_index("ix_users_tenant_id", "users", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("users")
    op.drop_table("tenants")
