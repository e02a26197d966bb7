"""The audit log: an append-only table of security-relevant events (spec §12). The database
itself refuses to change or delete an entry: a trigger on PostgreSQL and on SQLite raises on
every UPDATE and DELETE of a row. (TRUNCATE, an owner's statement, stays possible for a
retention job run by the operator; see docs/operations.md.)

Revision ID: 0011_audit_log
Revises: 0010_subscriptions
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_audit_log"
down_revision = "0010_subscriptions"
branch_labels = None
depends_on = None

APPEND_ONLY = "the audit log is append-only: entries are never changed or removed"

POSTGRES_FUNCTION = f"""
CREATE FUNCTION tk_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'insufficient_privilege';
END;
$$
"""
POSTGRES_TRIGGER = """
CREATE TRIGGER tk_audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION tk_audit_log_append_only()
"""
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER tk_audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"""
    for verb in ("UPDATE", "DELETE")
]


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("detail", sa.String(500), nullable=False, server_default=""),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_tenant_at", "audit_log", ["tenant_id", "at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER tk_audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION tk_audit_log_append_only()")
    op.drop_index("ix_audit_log_tenant_at", "audit_log")
    op.drop_index("ix_audit_log_at", "audit_log")
    op.drop_table("audit_log")
