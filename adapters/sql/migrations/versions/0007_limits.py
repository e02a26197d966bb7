"""Limits that hold against the customer (issue #13) and the ledger's SQL in one place
(issue #14): tenants keep the zones they left while those still govern a window;
reservations keep the route their admission offered; settlements keep what was reported
and the anomaly that made them count otherwise. On PostgreSQL every ledger function is
dropped (all signatures of revisions 0004–0006) and created again from
``adapters/sql/functions/*.sql``, the one home of the ledger's SQL (ADR 0003).

Revision ID: 0007_limits
Revises: 0010_subscriptions
Create Date: 2026-12-02
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

from adapters.sql.functions import function_sql

revision = "0007_limits"
down_revision = "0006_settle_tenant_revision"
branch_labels = None
depends_on = None

OLD_SIGNATURES = (
    "tk_settle(text, text, date, date, text, text, bigint, bigint, bigint, bigint, boolean,"
    " timestamptz, bigint)",
    "tk_settle(text, text, date, date, text, text, bigint, bigint, bigint, bigint, boolean,"
    " timestamptz)",
    "tk_admit(text, text, date, date, integer, bigint, bigint, timestamptz, timestamptz,"
    " bigint)",
    "tk_admit(text, text, date, date, integer, bigint, bigint, timestamptz, timestamptz)",
    "tk_release_expired(timestamptz)",
    "tk_lock_period(text, date, timestamptz)",
    "tk_release_period(text, date, timestamptz)",
)
NEW_SIGNATURES = (
    "tk_release_expired(timestamptz)",
    "tk_settle(text, text, date, date, text, text, bigint, bigint, bigint, numeric, numeric,"
    " timestamptz, bigint)",
    "tk_admit(text, text, date, date, integer, bigint, bigint, boolean, timestamptz,"
    " timestamptz, bigint, text, text, numeric)",
    "tk_lock_period(text, date, timestamptz)",
    "tk_release_period(text, date, timestamptz)",
)


CREATED_HERE = (
    "tk_release_period",
    "tk_lock_period",
    "tk_admit",
    "tk_settle",
    "tk_release_expired",
)
"""The functions this revision created, in creation order (later revisions add others)."""


def _previous(module: str, name: str) -> str:
    return str(getattr(importlib.import_module(f"adapters.sql.migrations.versions.{module}"), name))


def _as_created_here(name: str) -> str:
    """The function as this revision created it: the file's text, except where a later
    revision changed the file and keeps this revision's body (0013: admit and settle)."""
    frozen = {"tk_admit": "ADMIT_0007", "tk_settle": "SETTLE_0007"}
    if name in frozen:
        return _previous("0013_thresholds_in_ledger", frozen[name])
    return function_sql(name)


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("zone_history", sa.Text))
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(
            sa.Column("offered_models", sa.Text, nullable=False, server_default="")
        )
        batch.add_column(sa.Column("tenant_key_model", sa.String(200)))
        batch.add_column(
            sa.Column("max_weight", sa.Numeric(12, 4), nullable=False, server_default="1")
        )
    with op.batch_alter_table("settlements") as batch:
        batch.add_column(sa.Column("reported_credential", sa.String(16)))
        batch.add_column(sa.Column("anomaly", sa.String(64)))
    if op.get_bind().dialect.name == "postgresql":
        for signature in OLD_SIGNATURES:
            op.execute(f"DROP FUNCTION {signature}")
        for name in CREATED_HERE:
            op.execute(_as_created_here(name))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for signature in NEW_SIGNATURES:
            op.execute(f"DROP FUNCTION {signature}")
        op.execute(_previous("0004_usage_ledger", "FUNCTIONS"))
        op.execute(_previous("0005_tenant_revision", "CHECKED_ADMIT"))
        op.execute(_previous("0006_settle_tenant_revision", "CHECKED_SETTLE"))
    with op.batch_alter_table("settlements") as batch:
        batch.drop_column("anomaly")
        batch.drop_column("reported_credential")
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("max_weight")
        batch.drop_column("tenant_key_model")
        batch.drop_column("offered_models")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("zone_history")
