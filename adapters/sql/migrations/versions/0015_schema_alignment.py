"""Drop ``account_mail_outbox`` (revision 0009): account mail goes through the notifications
outbox since the mail wiring of #16, and nothing reads or writes this table any more. Its
rows could hold plaintext sign-in links; none would ever be sent. After this revision the
database holds exactly what ``adapters/sql/tables.py`` describes. The downgrade creates the
table again, empty.

Revision ID: 0015_schema_alignment
Revises: 0014_call_reservations
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_schema_alignment"
down_revision = "0014_call_reservations"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_index("ix_account_mail_outbox_next_attempt_at", table_name="account_mail_outbox")
    op.drop_table("account_mail_outbox")


def downgrade() -> None:
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
