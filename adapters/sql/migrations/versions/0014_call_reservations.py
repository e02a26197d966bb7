"""The LLM proxy's call reservations (spec §13, issue #20): ``tk_reserve_call`` holds one
call's tokens against the period's budget without counting a message (message caps stay with
admission); the call settles through ``tk_settle`` and is swept by ``tk_release_expired``
like a message's reservation. ``tk_admit`` is created again with its threshold arithmetic in
bigint: a message cap above 21,474,836 overflowed ``percent * cap`` and failed every
admission. Both from ``adapters/sql/functions/*.sql``; the downgrade restores 0013's
``tk_admit``.

Revision ID: 0014_call_reservations
Revises: 0013_thresholds_in_ledger
Create Date: 2026-12-02
"""

from __future__ import annotations

import importlib

from alembic import op

from adapters.sql.functions import function_sql

revision = "0014_call_reservations"
down_revision = "0013_thresholds_in_ledger"
branch_labels = None
depends_on = None

ADMIT_SIGNATURE = (
    "tk_admit(text, text, date, date, integer, bigint, bigint, boolean, timestamptz,"
    " timestamptz, bigint, text, text, numeric)"
)
RESERVE_CALL_SIGNATURE = (
    "tk_reserve_call(text, text, text, date, date, bigint, bigint, boolean, timestamptz,"
    " timestamptz, bigint, text, text, numeric)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {ADMIT_SIGNATURE}")
        op.execute(function_sql("tk_admit"))
        op.execute(function_sql("tk_reserve_call"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {RESERVE_CALL_SIGNATURE}")
        op.execute(f"DROP FUNCTION {ADMIT_SIGNATURE}")
        previous = importlib.import_module(
            "adapters.sql.migrations.versions.0013_thresholds_in_ledger"
        )
        op.execute(previous.ADMIT_0013)
