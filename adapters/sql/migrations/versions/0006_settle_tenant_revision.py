"""Settlement, like admission, may run on an API process's tenant copy: a thirteen-argument
``tk_settle`` (the twelve of revision 0004 plus the tenant revision) answers
``tenant_changed`` without writing anything when the stored tenant no longer has that
revision, else delegates to the twelve-argument function, which stays as it was (ADR 0003).

Revision ID: 0006_settle_tenant_revision
Revises: 0005_tenant_revision
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006_settle_tenant_revision"
down_revision = "0005_tenant_revision"
branch_labels = None
depends_on = None

CHECKED_SETTLE = r"""
CREATE FUNCTION tk_settle(
    p_tenant text, p_message text, p_day date, p_period date, p_model text,
    p_credential text, p_input bigint, p_output bigint, p_cache bigint, p_weighted bigint,
    p_counts boolean, p_at timestamptz, p_revision bigint,
    OUT o_outcome text, OUT o_messages integer,
    OUT o_settled_before bigint, OUT o_reserved_before bigint, OUT o_own_before bigint,
    OUT o_settled_after bigint, OUT o_reserved_after bigint, OUT o_own_after bigint
) LANGUAGE plpgsql AS $$
-- p_revision NULL: no check. Otherwise settle only while the stored tenant has that
-- revision; a tenant saved since (or gone) answers 'tenant_changed' and writes nothing.
DECLARE
    v_replayed boolean;
BEGIN
    IF p_revision IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM tenants t
                       WHERE t.id = p_tenant AND t.revision = p_revision) THEN
        o_outcome := 'tenant_changed';
        RETURN;
    END IF;
    SELECT s.o_replayed, s.o_messages, s.o_settled_before, s.o_reserved_before,
           s.o_own_before, s.o_settled_after, s.o_reserved_after, s.o_own_after
    INTO v_replayed, o_messages, o_settled_before, o_reserved_before, o_own_before,
         o_settled_after, o_reserved_after, o_own_after
    FROM tk_settle(p_tenant, p_message, p_day, p_period, p_model, p_credential, p_input,
                   p_output, p_cache, p_weighted, p_counts, p_at) s;
    o_outcome := CASE WHEN v_replayed THEN 'replayed' ELSE 'settled' END;
END $$;
"""

DROP_CHECKED_SETTLE = """
DROP FUNCTION tk_settle(text, text, date, date, text, text, bigint, bigint, bigint, bigint,
                        boolean, timestamptz, bigint);
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CHECKED_SETTLE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP_CHECKED_SETTLE)
