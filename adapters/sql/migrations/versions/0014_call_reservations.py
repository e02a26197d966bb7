"""The LLM proxy's call reservations (spec §13, issue #20): ``tk_reserve_call`` holds one
call's tokens against the period's budget without counting a message (message caps stay with
admission); the call settles through ``tk_settle`` and is swept by ``tk_release_expired``
like a message's reservation. ``tk_admit`` is created again with its threshold arithmetic in
bigint: a message cap above 21,474,836 overflowed ``percent * cap`` and failed every
admission. ``tk_admit`` from ``adapters/sql/functions/tk_admit.sql``, ``tk_reserve_call``
from its body as of this revision (``RESERVE_CALL_0014``; 0016 changed the file); the
downgrade restores 0013's ``tk_admit``.

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

RESERVE_CALL_0014 = r"""
CREATE FUNCTION tk_reserve_call(
    p_tenant text, p_call text, p_named text, p_day date, p_period date,
    p_budget bigint, p_reserve bigint, p_optional boolean, p_now timestamptz,
    p_expires timestamptz, p_revision bigint, p_models text, p_tenant_model text,
    p_max_weight numeric,
    OUT o_outcome text, OUT o_message text, OUT o_messages integer, OUT o_settled bigint,
    OUT o_reserved bigint, OUT o_own bigint, OUT o_held bigint
) LANGUAGE plpgsql AS $$
-- domain.call_reservations.evaluate_call_reservation, atomically, in one statement: one LLM
-- call's reservation, held WITHOUT counting a message (message caps stay with admission).
-- tk_settle settles it under o_message; tk_release_expired sweeps it when never settled.
-- 1. p_revision given: only while the stored tenant has that revision, else
--    'tenant_changed' having written nothing.
-- 2. The period row lock serialises the tenant's admissions, calls and settlements in the
--    period; expired reservations lapse.
-- 3. p_named is a message whose reservation is still held: the call uses it ('replayed',
--    o_message = p_named, nothing new held). A known p_call answers as first ('replayed').
-- 4. Budget: settled + reserved + p_reserve must fit, else 'token_budget_exhausted'; an
--    optional reservation (a BYOK tenant's platform fallbacks) that does not fit holds
--    nothing and offers the tenant's key alone.
DECLARE
    v usage_periods;
BEGIN
    IF p_revision IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM tenants t
                       WHERE t.id = p_tenant AND t.revision = p_revision) THEN
        o_outcome := 'tenant_changed';
        RETURN;
    END IF;
    v := tk_lock_period(p_tenant, p_period, p_now);
    SELECT coalesce(max(d.messages), 0) INTO o_messages FROM usage_days d
    WHERE d.tenant_id = p_tenant AND d.day_key = p_day;
    SELECT r.message_id, r.tokens INTO o_message, o_held FROM reservations r
    WHERE r.tenant_id = p_tenant AND r.message_id = p_named AND r.state = 'held'
      AND r.expires_at > p_now;
    IF NOT FOUND THEN
        SELECT r.message_id, r.tokens INTO o_message, o_held FROM reservations r
        WHERE r.tenant_id = p_tenant AND r.message_id = p_call;
    END IF;
    IF FOUND THEN
        o_outcome := 'replayed';
    ELSE
        o_message := p_call;
        o_held := p_reserve;
        IF p_budget IS NOT NULL
           AND v.tokens_settled + v.tokens_reserved + p_reserve > p_budget THEN
            IF p_optional THEN
                o_held := 0;
            ELSE
                o_outcome := 'token_budget_exhausted';
            END IF;
        END IF;
        IF o_outcome IS NULL THEN
            UPDATE usage_periods p SET tokens_reserved = p.tokens_reserved + o_held
            WHERE p.tenant_id = p_tenant AND p.period_key = p_period
            RETURNING * INTO v;
            INSERT INTO reservations
                (tenant_id, message_id, day_key, period_key, tokens, admitted_at,
                 expires_at, state, offered_models, tenant_key_model, max_weight)
            VALUES (p_tenant, p_call, p_day, p_period, o_held, p_now, p_expires, 'held',
                    CASE WHEN p_optional AND o_held = 0
                         THEN coalesce(p_tenant_model, '') ELSE p_models END,
                    p_tenant_model, p_max_weight);
            o_outcome := 'admitted';
        END IF;
    END IF;
    o_settled := v.tokens_settled;
    o_reserved := v.tokens_reserved;
    o_own := v.own_key_tokens;
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {ADMIT_SIGNATURE}")
        op.execute(function_sql("tk_admit"))
        op.execute(RESERVE_CALL_0014)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {RESERVE_CALL_SIGNATURE}")
        op.execute(f"DROP FUNCTION {ADMIT_SIGNATURE}")
        previous = importlib.import_module(
            "adapters.sql.migrations.versions.0013_thresholds_in_ledger"
        )
        op.execute(previous.ADMIT_0013)
