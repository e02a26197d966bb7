"""At most one LLM call uses a held message's reservation (spec §13, issue #20): two calls
naming the same admitted message both settled against its reservation, settlement is
idempotent on the id, and one call's tokens were never counted. ``reservations.claimed_by``
records the call that claimed the message's reservation; ``tk_reserve_call`` (created again
from ``adapters/sql/functions/tk_reserve_call.sql``) claims it under the row lock, and any
other call naming the message holds a reservation of its own. The downgrade restores 0014's
``tk_reserve_call`` and drops the column.

Revision ID: 0016_call_claims
Revises: 0015_schema_alignment
Create Date: 2026-12-02
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

from adapters.sql.functions import function_sql

revision = "0016_call_claims"
down_revision = "0015_schema_alignment"
branch_labels = None
depends_on = None

RESERVE_CALL_SIGNATURE = (
    "tk_reserve_call(text, text, text, date, date, bigint, bigint, boolean, timestamptz,"
    " timestamptz, bigint, text, text, numeric)"
)


def upgrade() -> None:
    op.add_column("reservations", sa.Column("claimed_by", sa.String(255)))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {RESERVE_CALL_SIGNATURE}")
        op.execute(function_sql("tk_reserve_call"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {RESERVE_CALL_SIGNATURE}")
        previous = importlib.import_module(
            "adapters.sql.migrations.versions.0014_call_reservations"
        )
        op.execute(previous.RESERVE_CALL_0014)
    op.drop_column("reservations", "claimed_by")
