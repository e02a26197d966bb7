"""The LLM proxy's virtual keys (spec §13): one per tenant, looked up by its SHA-256 (unique),
its plaintext kept only as key-store ciphertext so a config written again carries the same
key.

Revision ID: 0012_virtual_keys
Revises: 0010_subscriptions
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_virtual_keys"
down_revision = "0011_audit_log"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "virtual_keys",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("ciphertext_store", sa.String(64), nullable=False),
        sa.Column("ciphertext_key_version", sa.Integer, nullable=False),
        sa.Column("ciphertext_token", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("key_hash", name="uq_virtual_keys_key_hash"),
    )


def downgrade() -> None:
    op.drop_table("virtual_keys")
