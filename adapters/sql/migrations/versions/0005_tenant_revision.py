"""Tenants carry a revision, bumped on every save, so an API process may admit on a tenant
copy it keeps: the admission itself checks, in the same statement, that the stored tenant
still has the copy's revision (ADR 0003).

On PostgreSQL a ten-argument ``tk_admit`` (the nine of revision 0004 plus the revision)
answers ``tenant_changed`` without counting anything when the revision differs, else
delegates to the nine-argument function, which stays as it was.

Revision ID: 0005_tenant_revision
Revises: 0004_usage_ledger
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_tenant_revision"
down_revision = "0004_usage_ledger"
branch_labels = None
depends_on = None

CHECKED_ADMIT = r"""
CREATE FUNCTION tk_admit(
    p_tenant text, p_message text, p_day date, p_period date, p_cap integer,
    p_budget bigint, p_reserve bigint, p_now timestamptz, p_expires timestamptz,
    p_revision bigint,
    OUT o_outcome text, OUT o_messages integer, OUT o_settled bigint,
    OUT o_reserved bigint, OUT o_own bigint
) LANGUAGE plpgsql AS $$
-- p_revision NULL: no check. Otherwise admit only while the stored tenant has that
-- revision; a tenant saved since (or gone) answers 'tenant_changed' and counts nothing.
BEGIN
    IF p_revision IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM tenants t
                       WHERE t.id = p_tenant AND t.revision = p_revision) THEN
        o_outcome := 'tenant_changed';
        RETURN;
    END IF;
    SELECT a.o_outcome, a.o_messages, a.o_settled, a.o_reserved, a.o_own
    INTO o_outcome, o_messages, o_settled, o_reserved, o_own
    FROM tk_admit(p_tenant, p_message, p_day, p_period, p_cap, p_budget, p_reserve, p_now,
                  p_expires) a;
END $$;
"""

DROP_CHECKED_ADMIT = """
DROP FUNCTION tk_admit(text, text, date, date, integer, bigint, bigint, timestamptz,
                       timestamptz, bigint);
"""


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("revision", sa.BigInteger, nullable=False, server_default="0")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CHECKED_ADMIT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP_CHECKED_ADMIT)
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("revision")
