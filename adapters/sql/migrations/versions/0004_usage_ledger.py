"""The usage ledger: day and period counters, reservations, settlements; on PostgreSQL the
admission and settlement functions that apply the metering rule in one round trip.

The functions mirror ``domain.metering.evaluate_admission`` and ``InMemoryUsageLedger``;
ADR 0003 explains the locking (one ``usage_periods`` row per tenant and period).

Revision ID: 0004_usage_ledger
Revises: 0003_credentials_tokens_events
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_usage_ledger"
down_revision = "0003_credentials_tokens_events"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
HELD = sa.text("state = 'held'")
UNSWEPT = sa.text("state IN ('held', 'lapsed')")

FUNCTIONS = r"""
CREATE FUNCTION tk_release_period(p_tenant text, p_period date, p_now timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
-- caller holds the usage_periods row lock of (p_tenant, p_period): held reservations past
-- their expiry lapse (leave the counter); release_expired later sweeps them
DECLARE
    v_count bigint;
    v_tokens bigint;
BEGIN
    WITH lapsed AS (
        UPDATE reservations r SET state = 'lapsed'
        WHERE r.tenant_id = p_tenant AND r.period_key = p_period
          AND r.state = 'held' AND r.expires_at <= p_now
        RETURNING r.tokens
    )
    SELECT count(*), coalesce(sum(e.tokens), 0) INTO v_count, v_tokens FROM lapsed e;
    IF v_tokens > 0 THEN
        UPDATE usage_periods p SET tokens_reserved = p.tokens_reserved - v_tokens
        WHERE p.tenant_id = p_tenant AND p.period_key = p_period;
    END IF;
    RETURN v_count;
END $$;

CREATE FUNCTION tk_lock_period(p_tenant text, p_period date, p_now timestamptz)
RETURNS usage_periods LANGUAGE plpgsql AS $$
-- lock (creating if needed) the period row, lapse its expired reservations, return it
DECLARE
    v usage_periods;
BEGIN
    SELECT * INTO v FROM usage_periods p
    WHERE p.tenant_id = p_tenant AND p.period_key = p_period FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO usage_periods AS p (tenant_id, period_key) VALUES (p_tenant, p_period)
        ON CONFLICT (tenant_id, period_key) DO UPDATE SET tenant_id = p.tenant_id
        RETURNING * INTO v;
    END IF;
    IF EXISTS (SELECT 1 FROM reservations r
               WHERE r.tenant_id = p_tenant AND r.period_key = p_period
                 AND r.state = 'held' AND r.expires_at <= p_now) THEN
        PERFORM tk_release_period(p_tenant, p_period, p_now);
        SELECT * INTO v FROM usage_periods p
        WHERE p.tenant_id = p_tenant AND p.period_key = p_period;
    END IF;
    RETURN v;
END $$;

CREATE FUNCTION tk_admit(
    p_tenant text, p_message text, p_day date, p_period date, p_cap integer,
    p_budget bigint, p_reserve bigint, p_now timestamptz, p_expires timestamptz,
    OUT o_outcome text, OUT o_messages integer, OUT o_settled bigint,
    OUT o_reserved bigint, OUT o_own bigint
) LANGUAGE plpgsql AS $$
-- domain.metering.evaluate_admission, atomically: the period row lock serialises a
-- tenant's admissions in a period; the day counter's conditional upsert is the cap itself
DECLARE
    v usage_periods;
BEGIN
    -- a full day refuses without a lock or a write: the day count only grows, and it is
    -- read before the replay check, so an admission of this id that committed before the
    -- count was read is seen as a replay (the same answer as in serial order)
    SELECT d.messages INTO o_messages FROM usage_days d
    WHERE d.tenant_id = p_tenant AND d.day_key = p_day;
    IF coalesce(o_messages, 0) >= p_cap
       AND NOT EXISTS (SELECT 1 FROM reservations r
                       WHERE r.tenant_id = p_tenant AND r.message_id = p_message) THEN
        o_outcome := 'message_cap_reached';
        RETURN;
    END IF;
    SELECT * INTO v FROM usage_periods p
    WHERE p.tenant_id = p_tenant AND p.period_key = p_period FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO usage_periods AS p (tenant_id, period_key) VALUES (p_tenant, p_period)
        ON CONFLICT (tenant_id, period_key) DO UPDATE SET tenant_id = p.tenant_id
        RETURNING * INTO v;
    END IF;
    IF EXISTS (SELECT 1 FROM reservations r
               WHERE r.tenant_id = p_tenant AND r.period_key = p_period
                 AND r.state = 'held' AND r.expires_at <= p_now) THEN
        PERFORM tk_release_period(p_tenant, p_period, p_now);
        SELECT * INTO v FROM usage_periods p
        WHERE p.tenant_id = p_tenant AND p.period_key = p_period;
    END IF;
    IF EXISTS (SELECT 1 FROM reservations r
               WHERE r.tenant_id = p_tenant AND r.message_id = p_message) THEN
        o_outcome := 'replayed';
        SELECT coalesce(max(d.messages), 0) INTO o_messages FROM usage_days d
        WHERE d.tenant_id = p_tenant AND d.day_key = p_day;
    ELSIF p_cap <= 0 THEN
        o_outcome := 'message_cap_reached';
    ELSIF p_budget IS NOT NULL
          AND v.tokens_settled + v.tokens_reserved + p_reserve > p_budget THEN
        SELECT coalesce(max(d.messages), 0) INTO o_messages FROM usage_days d
        WHERE d.tenant_id = p_tenant AND d.day_key = p_day;
        o_outcome := CASE WHEN o_messages >= p_cap THEN 'message_cap_reached'
                          ELSE 'token_budget_exhausted' END;
    ELSE
        INSERT INTO usage_days AS d (tenant_id, day_key, messages)
        VALUES (p_tenant, p_day, 1)
        ON CONFLICT (tenant_id, day_key)
        DO UPDATE SET messages = d.messages + 1 WHERE d.messages < p_cap
        RETURNING d.messages INTO o_messages;
        IF NOT FOUND THEN
            o_outcome := 'message_cap_reached';
        ELSE
            UPDATE usage_periods p SET tokens_reserved = p.tokens_reserved + p_reserve
            WHERE p.tenant_id = p_tenant AND p.period_key = p_period
            RETURNING * INTO v;
            INSERT INTO reservations
                (tenant_id, message_id, day_key, period_key, tokens, admitted_at, expires_at,
                 state)
            VALUES (p_tenant, p_message, p_day, p_period, p_reserve, p_now, p_expires, 'held');
            o_outcome := 'admitted';
        END IF;
    END IF;
    o_settled := v.tokens_settled;
    o_reserved := v.tokens_reserved;
    o_own := v.own_key_tokens;
END $$;

CREATE FUNCTION tk_settle(
    p_tenant text, p_message text, p_day date, p_period date, p_model text,
    p_credential text, p_input bigint, p_output bigint, p_cache bigint, p_weighted bigint,
    p_counts boolean, p_at timestamptz,
    OUT o_replayed boolean, OUT o_messages integer,
    OUT o_settled_before bigint, OUT o_reserved_before bigint, OUT o_own_before bigint,
    OUT o_settled_after bigint, OUT o_reserved_after bigint, OUT o_own_after bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v usage_periods;
    v_day date;
    v_period date;
    v_id bigint;
    v_tokens bigint;
BEGIN
    SELECT r.day_key, r.period_key INTO v_day, v_period FROM reservations r
    WHERE r.tenant_id = p_tenant AND r.message_id = p_message;
    IF NOT FOUND THEN
        v_day := p_day;
        v_period := p_period;
    END IF;
    v := tk_lock_period(p_tenant, v_period, p_at);
    SELECT coalesce(max(d.messages), 0) INTO o_messages FROM usage_days d
    WHERE d.tenant_id = p_tenant AND d.day_key = v_day;
    o_settled_before := v.tokens_settled;
    o_reserved_before := v.tokens_reserved;
    o_own_before := v.own_key_tokens;
    INSERT INTO settlements
        (tenant_id, message_id, model, credential, input_tokens, output_tokens,
         cache_read_tokens, weighted_tokens, counts_against_budget, day_key, period_key,
         settled_at)
    VALUES (p_tenant, p_message, p_model, p_credential, p_input, p_output, p_cache,
            p_weighted, p_counts, v_day, v_period, p_at)
    ON CONFLICT (tenant_id, message_id) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        o_replayed := true;
        o_settled_after := o_settled_before;
        o_reserved_after := o_reserved_before;
        o_own_after := o_own_before;
        RETURN;
    END IF;
    o_replayed := false;
    SELECT CASE WHEN r.state = 'held' THEN r.tokens ELSE 0 END INTO v_tokens
    FROM reservations r
    WHERE r.tenant_id = p_tenant AND r.message_id = p_message
      AND r.state IN ('held', 'lapsed');
    UPDATE reservations r SET state = 'settled'
    WHERE r.tenant_id = p_tenant AND r.message_id = p_message
      AND r.state IN ('held', 'lapsed');
    UPDATE usage_periods p SET
        tokens_reserved = p.tokens_reserved - coalesce(v_tokens, 0),
        tokens_settled = p.tokens_settled + CASE WHEN p_counts THEN p_weighted ELSE 0 END,
        own_key_tokens = p.own_key_tokens + CASE WHEN p_counts THEN 0 ELSE p_weighted END
    WHERE p.tenant_id = p_tenant AND p.period_key = v_period
    RETURNING * INTO v;
    o_settled_after := v.tokens_settled;
    o_reserved_after := v.tokens_reserved;
    o_own_after := v.own_key_tokens;
END $$;

CREATE FUNCTION tk_release_expired(p_now timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
-- period rows are locked in key order, so this never deadlocks with admissions
DECLARE
    r record;
    v_count bigint;
    v_total bigint := 0;
BEGIN
    FOR r IN SELECT DISTINCT x.tenant_id, x.period_key FROM reservations x
             WHERE x.state IN ('held', 'lapsed') AND x.expires_at <= p_now
             ORDER BY x.tenant_id, x.period_key LOOP
        PERFORM 1 FROM usage_periods p
        WHERE p.tenant_id = r.tenant_id AND p.period_key = r.period_key FOR UPDATE;
        PERFORM tk_release_period(r.tenant_id, r.period_key, p_now);
        UPDATE reservations x SET state = 'expired'
        WHERE x.tenant_id = r.tenant_id AND x.period_key = r.period_key
          AND x.state = 'lapsed' AND x.expires_at <= p_now;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        v_total := v_total + v_count;
    END LOOP;
    RETURN v_total;
END $$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION tk_release_expired(timestamptz);
DROP FUNCTION tk_settle(text, text, date, date, text, text, bigint, bigint, bigint, bigint,
                        boolean, timestamptz);
DROP FUNCTION tk_admit(text, text, date, date, integer, bigint, bigint, timestamptz,
                       timestamptz);
DROP FUNCTION tk_lock_period(text, date, timestamptz);
DROP FUNCTION tk_release_period(text, date, timestamptz);
"""


def upgrade() -> None:
    op.create_table(
        "usage_days",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("day_key", sa.Date, primary_key=True),
        sa.Column("messages", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint("messages >= 0", name="ck_usage_days_messages"),
    )
    op.create_table(
        "usage_periods",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("period_key", sa.Date, primary_key=True),
        sa.Column("tokens_settled", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("tokens_reserved", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("own_key_tokens", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "reservations",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("message_id", sa.String(255), primary_key=True),
        sa.Column("day_key", sa.Date, nullable=False),
        sa.Column("period_key", sa.Date, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("admitted_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.CheckConstraint("state IN ('held', 'lapsed', 'settled', 'expired')", name="ck_reservations_state"),
    )
    op.create_index(
        "ix_reservations_held_period",
        "reservations",
        ["tenant_id", "period_key", "expires_at"],
        postgresql_where=HELD,
        sqlite_where=HELD,
    )
    op.create_index(
        "ix_reservations_unswept_expiry",
        "reservations",
        ["expires_at"],
        postgresql_where=UNSWEPT,
        sqlite_where=UNSWEPT,
    )
    op.create_table(
        "settlements",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("credential", sa.String(16), nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger, nullable=False),
        sa.Column("weighted_tokens", sa.BigInteger, nullable=False),
        sa.Column("counts_against_budget", sa.Boolean, nullable=False),
        sa.Column("day_key", sa.Date, nullable=False),
        sa.Column("period_key", sa.Date, nullable=False),
        sa.Column("settled_at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "message_id", name="uq_settlements_message"),
    )
    op.create_index("ix_settlements_settled_at", "settlements", ["settled_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTIONS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP_FUNCTIONS)
    op.drop_table("settlements")
    op.drop_table("reservations")
    op.drop_table("usage_periods")
    op.drop_table("usage_days")
