"""Budget leases for the LLM proxy (issue #20): one process reserves a block of a tenant's
budget as one held reservation and serves calls from it in memory. A call drawn from a
lease takes its own reservation out of the lease as it settles (``tk_draw_lease``, called by
``tk_settle``, which gains the lease and the tokens drawn as its last two arguments, passed
on by ``tk_ledger_batch``); a lease whose calls have all settled gives back what it still
holds (``tk_release_held``), ending in the new state ``released``. The functions are created
from ``adapters/sql/functions``. The downgrade marks released reservations expired (ended
unsettled, their tokens already off the counters) and restores 0013's ``tk_settle`` and 0017's
``tk_ledger_batch``.

Revision ID: 0019_budget_leases
Revises: 0018_retired_groq_models
Create Date: 2026-12-03
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

from adapters.sql.functions import function_sql

revision = "0019_budget_leases"
down_revision = "0018_retired_groq_models"
branch_labels = None
depends_on = None

STATES = "state IN ('held', 'lapsed', 'settled', 'expired', 'released')"
STATES_0004 = "state IN ('held', 'lapsed', 'settled', 'expired')"
SETTLE_SIGNATURE_0013 = (
    "tk_settle(text, text, date, date, text, text, bigint, bigint, bigint, numeric, numeric,"
    " timestamptz, bigint, bigint)"
)
SETTLE_SIGNATURE = (
    "tk_settle(text, text, date, date, text, text, bigint, bigint, bigint, numeric, numeric,"
    " timestamptz, bigint, bigint, text, bigint)"
)
CREATED_HERE = (
    "tk_draw_lease(text, text, text, bigint, timestamptz)",
    "tk_release_held(text, text, timestamptz)",
)


def _states(check: str) -> None:
    with op.batch_alter_table("reservations", recreate="auto") as batch:
        batch.drop_constraint("ck_reservations_state", type_="check")
    with op.batch_alter_table("reservations", recreate="auto") as batch:
        batch.create_check_constraint("ck_reservations_state", check)


def upgrade() -> None:
    _states(STATES)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION tk_ledger_batch(jsonb)")
        op.execute(f"DROP FUNCTION {SETTLE_SIGNATURE_0013}")
        op.execute(function_sql("tk_draw_lease"))
        op.execute(function_sql("tk_settle"))
        op.execute(function_sql("tk_release_held"))
        op.execute(function_sql("tk_ledger_batch"))


def _previous(module: str, name: str) -> str:
    return str(getattr(importlib.import_module(f"adapters.sql.migrations.versions.{module}"), name))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION tk_ledger_batch(jsonb)")
        op.execute(f"DROP FUNCTION {SETTLE_SIGNATURE}")
        for signature in CREATED_HERE:
            op.execute(f"DROP FUNCTION {signature}")
        op.execute(_previous("0013_thresholds_in_ledger", "SETTLE_0013"))
        op.execute(_previous("0017_ledger_batches", "BATCH_0017"))
    reservations = sa.table("reservations", sa.column("state", sa.String))
    op.execute(
        reservations.update().where(reservations.c.state == "released").values(state="expired")
    )
    _states(STATES_0004)
