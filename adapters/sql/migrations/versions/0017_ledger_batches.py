"""Group commit for the PostgreSQL ledger (issue #20's targets, #14's hot tenant):
``tk_ledger_batch`` runs many ledger operations (admit, reserve a call, settle) in one
statement, one transaction and one commit, each by its existing function unchanged
(``adapters/sql/functions/tk_ledger_batch.sql``; the queue is
``adapters/sql/ledger_batches.py``). The downgrade drops it.

Revision ID: 0017_ledger_batches
Revises: 0016_call_claims
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from adapters.sql.functions import function_sql

revision = "0017_ledger_batches"
down_revision = "0016_call_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(function_sql("tk_ledger_batch"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION tk_ledger_batch(jsonb)")
