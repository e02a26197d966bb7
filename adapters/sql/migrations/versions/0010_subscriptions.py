"""Each tenant's subscription record (period, cancel at period end, a downgrade waiting for
the period end) and the paid invoices the usage report counts as revenue.

Revision ID: 0010_subscriptions
Revises: 0006_settle_tenant_revision
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_subscriptions"
down_revision = "0006_settle_tenant_revision"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("subscription_id", sa.String(255), nullable=False),
        sa.Column("current_period_start", sa.DateTime(timezone=True)),
        sa.Column("current_period_end", sa.DateTime(timezone=True)),
        sa.Column(
            "cancel_at_period_end", sa.Boolean, nullable=False, server_default=sa.false()
        ),
        sa.Column("pending_tier", sa.String(32)),
        sa.Column("pending_from", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "paid_invoices",
        sa.Column("invoice_id", sa.String(255), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_paid_invoices_tenant_id", "paid_invoices", ["tenant_id"])
    op.create_index("ix_paid_invoices_paid_at", "paid_invoices", ["paid_at"])


def downgrade() -> None:
    op.drop_index("ix_paid_invoices_paid_at", table_name="paid_invoices")
    op.drop_index("ix_paid_invoices_tenant_id", table_name="paid_invoices")
    op.drop_table("paid_invoices")
    op.drop_table("subscriptions")
