"""Group commit for the PostgreSQL ledger (issue #20's targets, #14's hot tenant):
``tk_ledger_batch`` runs many ledger operations (admit, reserve a call, settle) in one
statement, one transaction and one commit, each by its existing function unchanged
(``BATCH_0017``, the body as of this revision: 0019 changed
``adapters/sql/functions/tk_ledger_batch.sql``; the queue is
``adapters/sql/ledger_batches.py``). The downgrade drops it.

Revision ID: 0017_ledger_batches
Revises: 0016_call_claims
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op


revision = "0017_ledger_batches"
down_revision = "0016_call_claims"
branch_labels = None
depends_on = None


BATCH_0017 = r"""
CREATE FUNCTION tk_ledger_batch(p_ops jsonb)
RETURNS TABLE (o_index integer, o_result jsonb) LANGUAGE plpgsql AS $$
-- Group commit (adapters/sql/ledger_batches.py): the ledger operations p_ops, in their
-- order, in one statement and so one transaction and one commit, each run by the function
-- it runs alone, unchanged (tk_admit, tk_reserve_call, tk_settle). An operation is
-- {"k": kind, "t": tenant, "p": period, "a": [the function's arguments, in order]}; one
-- row per operation: its index in p_ops and its function's outcome columns as an object.
-- Operations run in (tenant, period) order, stable (each tenant's keep their order in
-- p_ops): period rows are locked in key order, as tk_release_expired does, so two batches
-- (or a batch and the sweep) never deadlock. Any error fails the whole batch, nothing
-- written; the caller then retries each operation alone.
DECLARE
    v_op jsonb;
    v_a jsonb;
BEGIN
    FOR o_index, v_op IN
        SELECT e.ordinality - 1, e.value
        FROM jsonb_array_elements(p_ops) WITH ORDINALITY AS e
        ORDER BY e.value ->> 't', (e.value ->> 'p')::date, e.ordinality
    LOOP
        v_a := v_op -> 'a';
        CASE v_op ->> 'k'
        WHEN 'admit' THEN
            SELECT to_jsonb(r) INTO o_result
            FROM tk_admit(v_a ->> 0, v_a ->> 1, (v_a ->> 2)::date, (v_a ->> 3)::date,
                          (v_a ->> 4)::integer, (v_a ->> 5)::bigint, (v_a ->> 6)::bigint,
                          (v_a ->> 7)::boolean, (v_a ->> 8)::timestamptz,
                          (v_a ->> 9)::timestamptz, (v_a ->> 10)::bigint, v_a ->> 11,
                          v_a ->> 12, (v_a ->> 13)::numeric) r;
        WHEN 'reserve_call' THEN
            SELECT to_jsonb(r) INTO o_result
            FROM tk_reserve_call(v_a ->> 0, v_a ->> 1, v_a ->> 2, (v_a ->> 3)::date,
                                 (v_a ->> 4)::date, (v_a ->> 5)::bigint, (v_a ->> 6)::bigint,
                                 (v_a ->> 7)::boolean, (v_a ->> 8)::timestamptz,
                                 (v_a ->> 9)::timestamptz, (v_a ->> 10)::bigint, v_a ->> 11,
                                 v_a ->> 12, (v_a ->> 13)::numeric) r;
        WHEN 'settle' THEN
            SELECT to_jsonb(r) INTO o_result
            FROM tk_settle(v_a ->> 0, v_a ->> 1, (v_a ->> 2)::date, (v_a ->> 3)::date,
                           v_a ->> 4, v_a ->> 5, (v_a ->> 6)::bigint, (v_a ->> 7)::bigint,
                           (v_a ->> 8)::bigint, (v_a ->> 9)::numeric, (v_a ->> 10)::numeric,
                           (v_a ->> 11)::timestamptz, (v_a ->> 12)::bigint,
                           (v_a ->> 13)::bigint) r;
        END CASE;
        RETURN NEXT;
    END LOOP;
END $$;
"""
"""``tk_ledger_batch`` as this revision created it (0019 passes a settlement its lease)."""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(BATCH_0017)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION tk_ledger_batch(jsonb)")
