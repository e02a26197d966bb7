"""Threshold notifications commit with the admission or settlement that crossed them
(issue #15): on PostgreSQL ``tk_admit`` writes the cap's 80%/100% crossings and
``tk_settle`` (given the period's platform budget, a new last argument) the budget's to the
notifications outbox (``tk_enqueue_notification``, revision 0008) inside their own
statement, so a crash between the ledger's commit and the notifier can lose nothing.
``tk_settle`` and ``tk_admit`` are created again from their bodies as of this revision
(``SETTLE_0013``, ``ADMIT_0013``; 0014 and 0019 changed the files); the downgrade restores
the bodies of 0007, kept here.

Revision ID: 0013_thresholds_in_ledger
Revises: 0012_virtual_keys
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op


revision = "0013_thresholds_in_ledger"
down_revision = "0012_virtual_keys"
branch_labels = None
depends_on = None

ADMIT_SIGNATURE = (
    "tk_admit(text, text, date, date, integer, bigint, bigint, boolean, timestamptz,"
    " timestamptz, bigint, text, text, numeric)"
)

SETTLE_SIGNATURE_0007 = (
    "tk_settle(text, text, date, date, text, text, bigint, bigint, bigint, numeric, numeric,"
    " timestamptz, bigint)"
)
SETTLE_SIGNATURE = (
    "tk_settle(text, text, date, date, text, text, bigint, bigint, bigint, numeric, numeric,"
    " timestamptz, bigint, bigint)"
)

SETTLE_0007 = r"""
CREATE FUNCTION tk_settle(
    p_tenant text, p_message text, p_day date, p_period date, p_model text,
    p_credential text, p_input bigint, p_output bigint, p_cache bigint,
    p_reported_weight numeric, p_unadmitted_weight numeric, p_at timestamptz,
    p_revision bigint,
    OUT o_outcome text, OUT o_messages integer,
    OUT o_settled_before bigint, OUT o_reserved_before bigint, OUT o_own_before bigint,
    OUT o_settled_after bigint, OUT o_reserved_after bigint, OUT o_own_after bigint,
    OUT o_counted_as text, OUT o_weighted bigint, OUT o_anomaly text
) LANGUAGE plpgsql AS $$
-- Replace a message's reservation by its count, once per message id, in one statement:
-- p_revision given: only while the stored tenant has that revision ('tenant_changed',
-- nothing written, otherwise). The settlement is checked against the route its admission
-- offered (domain.metering.settlement_terms): 'tenant' counts as the tenant's key only when
-- the admission routed the message there; a model the route did not offer (or the catalog
-- does not know) is rated at the route's highest weight; no admission counts in full.
DECLARE
    v usage_periods;
    v_day date;
    v_period date;
    v_models text;
    v_tenant_model text;
    v_max_weight numeric;
    v_admitted boolean;
    v_offered boolean;
    v_total numeric := p_input + p_output + p_cache;
    v_id bigint;
    v_tokens bigint;
BEGIN
    IF p_revision IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM tenants t
                       WHERE t.id = p_tenant AND t.revision = p_revision) THEN
        o_outcome := 'tenant_changed';
        RETURN;
    END IF;
    SELECT r.day_key, r.period_key, r.offered_models, r.tenant_key_model, r.max_weight
    INTO v_day, v_period, v_models, v_tenant_model, v_max_weight
    FROM reservations r WHERE r.tenant_id = p_tenant AND r.message_id = p_message;
    v_admitted := FOUND;
    IF NOT v_admitted THEN
        v_day := p_day;
        v_period := p_period;
    END IF;
    v := tk_lock_period(p_tenant, v_period, p_at);
    SELECT coalesce(max(d.messages), 0) INTO o_messages FROM usage_days d
    WHERE d.tenant_id = p_tenant AND d.day_key = v_day;
    o_settled_before := v.tokens_settled;
    o_reserved_before := v.tokens_reserved;
    o_own_before := v.own_key_tokens;
    SELECT s.credential, s.weighted_tokens, s.anomaly
    INTO o_counted_as, o_weighted, o_anomaly
    FROM settlements s WHERE s.tenant_id = p_tenant AND s.message_id = p_message;
    IF FOUND THEN
        o_outcome := 'replayed';
        o_settled_after := o_settled_before;
        o_reserved_after := o_reserved_before;
        o_own_after := o_own_before;
        RETURN;
    END IF;
    IF NOT v_admitted THEN
        o_counted_as := 'platform';
        o_weighted := ceil(v_total * coalesce(p_reported_weight, p_unadmitted_weight));
        o_anomaly := 'not_admitted';
    ELSE
        v_offered := p_reported_weight IS NOT NULL
                     AND p_model = ANY (string_to_array(v_models, ' '));
        o_weighted := ceil(v_total * CASE WHEN v_offered THEN p_reported_weight
                                          ELSE v_max_weight END);
        IF p_credential = 'tenant' AND v_tenant_model IS NOT NULL THEN
            o_counted_as := 'tenant';
        ELSIF p_credential = 'tenant' THEN
            o_counted_as := 'platform';
            o_anomaly := 'tenant_key_not_routed';
        ELSE
            o_counted_as := 'platform';
            o_anomaly := CASE WHEN v_offered THEN NULL ELSE 'model_not_offered' END;
        END IF;
    END IF;
    INSERT INTO settlements
        (tenant_id, message_id, model, credential, input_tokens, output_tokens,
         cache_read_tokens, weighted_tokens, counts_against_budget, day_key, period_key,
         settled_at, reported_credential, anomaly)
    VALUES (p_tenant, p_message, p_model, o_counted_as, p_input, p_output, p_cache,
            o_weighted, o_counted_as = 'platform', v_day, v_period, p_at, p_credential,
            o_anomaly)
    ON CONFLICT (tenant_id, message_id) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        -- settled by a concurrent call that locked another period (no admission, a
        -- different window): that one counted it
        SELECT s.credential, s.weighted_tokens, s.anomaly
        INTO o_counted_as, o_weighted, o_anomaly
        FROM settlements s WHERE s.tenant_id = p_tenant AND s.message_id = p_message;
        o_outcome := 'replayed';
        o_settled_after := o_settled_before;
        o_reserved_after := o_reserved_before;
        o_own_after := o_own_before;
        RETURN;
    END IF;
    SELECT CASE WHEN r.state = 'held' THEN r.tokens ELSE 0 END INTO v_tokens
    FROM reservations r
    WHERE r.tenant_id = p_tenant AND r.message_id = p_message
      AND r.state IN ('held', 'lapsed');
    UPDATE reservations r SET state = 'settled'
    WHERE r.tenant_id = p_tenant AND r.message_id = p_message
      AND r.state IN ('held', 'lapsed');
    UPDATE usage_periods p SET
        tokens_reserved = p.tokens_reserved - coalesce(v_tokens, 0),
        tokens_settled = p.tokens_settled
                         + CASE WHEN o_counted_as = 'platform' THEN o_weighted ELSE 0 END,
        own_key_tokens = p.own_key_tokens
                         + CASE WHEN o_counted_as = 'platform' THEN 0 ELSE o_weighted END
    WHERE p.tenant_id = p_tenant AND p.period_key = v_period
    RETURNING * INTO v;
    o_outcome := 'settled';
    o_settled_after := v.tokens_settled;
    o_reserved_after := v.tokens_reserved;
    o_own_after := v.own_key_tokens;
END $$;
"""
"""``tk_settle`` as revision 0007 created it (no budget argument, no outbox write)."""

ADMIT_0007 = r"""
CREATE FUNCTION tk_admit(
    p_tenant text, p_message text, p_day date, p_period date, p_cap integer,
    p_budget bigint, p_reserve bigint, p_optional boolean, p_now timestamptz,
    p_expires timestamptz, p_revision bigint, p_models text, p_tenant_model text,
    p_max_weight numeric,
    OUT o_outcome text, OUT o_messages integer, OUT o_settled bigint,
    OUT o_reserved bigint, OUT o_own bigint, OUT o_held bigint
) LANGUAGE plpgsql AS $$
-- domain.metering.evaluate_admission, atomically, in one statement:
-- 1. p_revision given: admit only while the stored tenant has that revision, else
--    'tenant_changed' having counted nothing.
-- 2. A full day refuses without a lock or a write: the day count only grows, and it is
--    read before the replay check, so an admission of this id that committed before the
--    count was read is seen as a replay (the answer of the serial order).
-- 3. The period row lock serialises the tenant's admissions in the period; expired
--    reservations lapse; a known message id is a replay (the first answer, counted once).
-- 4. Budget: settled + reserved + this reservation must fit, else refuse (the cap is
--    reported first); an optional reservation (a BYOK tenant's platform fallbacks) that
--    does not fit is admitted holding nothing, and offers the tenant's key alone.
-- 5. The cap is the day counter's conditional upsert itself.
-- 6. The reservation keeps the route offered (domain.metering.offered_route), which its
--    settlement is checked against.
DECLARE
    v usage_periods;
BEGIN
    IF p_revision IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM tenants t
                       WHERE t.id = p_tenant AND t.revision = p_revision) THEN
        o_outcome := 'tenant_changed';
        RETURN;
    END IF;
    SELECT d.messages INTO o_messages FROM usage_days d
    WHERE d.tenant_id = p_tenant AND d.day_key = p_day;
    IF coalesce(o_messages, 0) >= p_cap
       AND NOT EXISTS (SELECT 1 FROM reservations r
                       WHERE r.tenant_id = p_tenant AND r.message_id = p_message) THEN
        o_outcome := 'message_cap_reached';
        RETURN;
    END IF;
    v := tk_lock_period(p_tenant, p_period, p_now);
    SELECT r.tokens INTO o_held FROM reservations r
    WHERE r.tenant_id = p_tenant AND r.message_id = p_message;
    IF FOUND THEN
        o_outcome := 'replayed';
        SELECT coalesce(max(d.messages), 0) INTO o_messages FROM usage_days d
        WHERE d.tenant_id = p_tenant AND d.day_key = p_day;
    ELSIF p_cap <= 0 THEN
        o_outcome := 'message_cap_reached';
    ELSE
        o_held := p_reserve;
        IF p_budget IS NOT NULL
           AND v.tokens_settled + v.tokens_reserved + p_reserve > p_budget THEN
            IF p_optional THEN
                o_held := 0;
            ELSE
                SELECT coalesce(max(d.messages), 0) INTO o_messages FROM usage_days d
                WHERE d.tenant_id = p_tenant AND d.day_key = p_day;
                o_outcome := CASE WHEN o_messages >= p_cap THEN 'message_cap_reached'
                                  ELSE 'token_budget_exhausted' END;
            END IF;
        END IF;
        IF o_outcome IS NULL THEN
            INSERT INTO usage_days AS d (tenant_id, day_key, messages)
            VALUES (p_tenant, p_day, 1)
            ON CONFLICT (tenant_id, day_key)
            DO UPDATE SET messages = d.messages + 1 WHERE d.messages < p_cap
            RETURNING d.messages INTO o_messages;
            IF NOT FOUND THEN
                o_outcome := 'message_cap_reached';
            ELSE
                UPDATE usage_periods p SET tokens_reserved = p.tokens_reserved + o_held
                WHERE p.tenant_id = p_tenant AND p.period_key = p_period
                RETURNING * INTO v;
                INSERT INTO reservations
                    (tenant_id, message_id, day_key, period_key, tokens, admitted_at,
                     expires_at, state, offered_models, tenant_key_model, max_weight)
                VALUES (p_tenant, p_message, p_day, p_period, o_held, p_now, p_expires, 'held',
                        CASE WHEN p_optional AND o_held = 0
                             THEN coalesce(p_tenant_model, '') ELSE p_models END,
                        p_tenant_model, p_max_weight);
                o_outcome := 'admitted';
            END IF;
        END IF;
    END IF;
    o_settled := v.tokens_settled;
    o_reserved := v.tokens_reserved;
    o_own := v.own_key_tokens;
END $$;
"""
"""``tk_admit`` as revision 0007 created it (no outbox write)."""


ADMIT_0013 = r"""
CREATE FUNCTION tk_admit(
    p_tenant text, p_message text, p_day date, p_period date, p_cap integer,
    p_budget bigint, p_reserve bigint, p_optional boolean, p_now timestamptz,
    p_expires timestamptz, p_revision bigint, p_models text, p_tenant_model text,
    p_max_weight numeric,
    OUT o_outcome text, OUT o_messages integer, OUT o_settled bigint,
    OUT o_reserved bigint, OUT o_own bigint, OUT o_held bigint
) LANGUAGE plpgsql AS $$
-- domain.metering.evaluate_admission, atomically, in one statement:
-- 1. p_revision given: admit only while the stored tenant has that revision, else
--    'tenant_changed' having counted nothing.
-- 2. A full day refuses without a lock or a write: the day count only grows, and it is
--    read before the replay check, so an admission of this id that committed before the
--    count was read is seen as a replay (the answer of the serial order).
-- 3. The period row lock serialises the tenant's admissions in the period; expired
--    reservations lapse; a known message id is a replay (the first answer, counted once).
-- 4. Budget: settled + reserved + this reservation must fit, else refuse (the cap is
--    reported first); an optional reservation (a BYOK tenant's platform fallbacks) that
--    does not fit is admitted holding nothing, and offers the tenant's key alone.
-- 5. The cap is the day counter's conditional upsert itself.
-- 6. The reservation keeps the route offered (domain.metering.offered_route), which its
--    settlement is checked against.
-- 7. The thresholds of the cap this admission crossed (domain.metering.crossed_percents:
--    before * 100 < percent * cap <= after * 100) go to the notifications outbox in this
--    transaction, once per (tenant, kind, window, percent): committed with the count.
DECLARE
    v usage_periods;
BEGIN
    IF p_revision IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM tenants t
                       WHERE t.id = p_tenant AND t.revision = p_revision) THEN
        o_outcome := 'tenant_changed';
        RETURN;
    END IF;
    SELECT d.messages INTO o_messages FROM usage_days d
    WHERE d.tenant_id = p_tenant AND d.day_key = p_day;
    IF coalesce(o_messages, 0) >= p_cap
       AND NOT EXISTS (SELECT 1 FROM reservations r
                       WHERE r.tenant_id = p_tenant AND r.message_id = p_message) THEN
        o_outcome := 'message_cap_reached';
        RETURN;
    END IF;
    v := tk_lock_period(p_tenant, p_period, p_now);
    SELECT r.tokens INTO o_held FROM reservations r
    WHERE r.tenant_id = p_tenant AND r.message_id = p_message;
    IF FOUND THEN
        o_outcome := 'replayed';
        SELECT coalesce(max(d.messages), 0) INTO o_messages FROM usage_days d
        WHERE d.tenant_id = p_tenant AND d.day_key = p_day;
    ELSIF p_cap <= 0 THEN
        o_outcome := 'message_cap_reached';
    ELSE
        o_held := p_reserve;
        IF p_budget IS NOT NULL
           AND v.tokens_settled + v.tokens_reserved + p_reserve > p_budget THEN
            IF p_optional THEN
                o_held := 0;
            ELSE
                SELECT coalesce(max(d.messages), 0) INTO o_messages FROM usage_days d
                WHERE d.tenant_id = p_tenant AND d.day_key = p_day;
                o_outcome := CASE WHEN o_messages >= p_cap THEN 'message_cap_reached'
                                  ELSE 'token_budget_exhausted' END;
            END IF;
        END IF;
        IF o_outcome IS NULL THEN
            INSERT INTO usage_days AS d (tenant_id, day_key, messages)
            VALUES (p_tenant, p_day, 1)
            ON CONFLICT (tenant_id, day_key)
            DO UPDATE SET messages = d.messages + 1 WHERE d.messages < p_cap
            RETURNING d.messages INTO o_messages;
            IF NOT FOUND THEN
                o_outcome := 'message_cap_reached';
            ELSE
                UPDATE usage_periods p SET tokens_reserved = p.tokens_reserved + o_held
                WHERE p.tenant_id = p_tenant AND p.period_key = p_period
                RETURNING * INTO v;
                INSERT INTO reservations
                    (tenant_id, message_id, day_key, period_key, tokens, admitted_at,
                     expires_at, state, offered_models, tenant_key_model, max_weight)
                VALUES (p_tenant, p_message, p_day, p_period, o_held, p_now, p_expires, 'held',
                        CASE WHEN p_optional AND o_held = 0
                             THEN coalesce(p_tenant_model, '') ELSE p_models END,
                        p_tenant_model, p_max_weight);
                o_outcome := 'admitted';
                PERFORM tk_enqueue_notification(p_tenant, 'messages', to_char(p_day, 'YYYY-MM-DD'),
                                                t.percent, o_messages, p_cap, NULL, NULL, NULL,
                                                NULL, NULL, NULL, p_now, ARRAY['email', 'webhook'])
                FROM unnest(ARRAY[80, 100]) AS t(percent)
                WHERE (o_messages - 1) * 100 < t.percent * p_cap
                  AND t.percent * p_cap <= o_messages * 100;
            END IF;
        END IF;
    END IF;
    o_settled := v.tokens_settled;
    o_reserved := v.tokens_reserved;
    o_own := v.own_key_tokens;
END $$;
"""
"""``tk_admit`` as this revision created it (0014 widens its threshold arithmetic)."""


SETTLE_0013 = r"""
CREATE FUNCTION tk_settle(
    p_tenant text, p_message text, p_day date, p_period date, p_model text,
    p_credential text, p_input bigint, p_output bigint, p_cache bigint,
    p_reported_weight numeric, p_unadmitted_weight numeric, p_at timestamptz,
    p_revision bigint, p_budget bigint,
    OUT o_outcome text, OUT o_messages integer,
    OUT o_settled_before bigint, OUT o_reserved_before bigint, OUT o_own_before bigint,
    OUT o_settled_after bigint, OUT o_reserved_after bigint, OUT o_own_after bigint,
    OUT o_counted_as text, OUT o_weighted bigint, OUT o_anomaly text
) LANGUAGE plpgsql AS $$
-- Replace a message's reservation by its count, once per message id, in one statement:
-- p_revision given: only while the stored tenant has that revision ('tenant_changed',
-- nothing written, otherwise). The settlement is checked against the route its admission
-- offered (domain.metering.settlement_terms): 'tenant' counts as the tenant's key only when
-- the admission routed the message there; a model the route did not offer (or the catalog
-- does not know) is rated at the route's highest weight; no admission counts in full.
-- The thresholds of the platform budget p_budget (a BYOK tenant's fallback budget) this
-- settlement crosses (domain.metering.crossed_percents) go to the notifications outbox in
-- this transaction, once per (tenant, kind, period, percent).
DECLARE
    v usage_periods;
    v_day date;
    v_period date;
    v_models text;
    v_tenant_model text;
    v_max_weight numeric;
    v_admitted boolean;
    v_offered boolean;
    v_total numeric := p_input + p_output + p_cache;
    v_id bigint;
    v_tokens bigint;
BEGIN
    IF p_revision IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM tenants t
                       WHERE t.id = p_tenant AND t.revision = p_revision) THEN
        o_outcome := 'tenant_changed';
        RETURN;
    END IF;
    SELECT r.day_key, r.period_key, r.offered_models, r.tenant_key_model, r.max_weight
    INTO v_day, v_period, v_models, v_tenant_model, v_max_weight
    FROM reservations r WHERE r.tenant_id = p_tenant AND r.message_id = p_message;
    v_admitted := FOUND;
    IF NOT v_admitted THEN
        v_day := p_day;
        v_period := p_period;
    END IF;
    v := tk_lock_period(p_tenant, v_period, p_at);
    SELECT coalesce(max(d.messages), 0) INTO o_messages FROM usage_days d
    WHERE d.tenant_id = p_tenant AND d.day_key = v_day;
    o_settled_before := v.tokens_settled;
    o_reserved_before := v.tokens_reserved;
    o_own_before := v.own_key_tokens;
    SELECT s.credential, s.weighted_tokens, s.anomaly
    INTO o_counted_as, o_weighted, o_anomaly
    FROM settlements s WHERE s.tenant_id = p_tenant AND s.message_id = p_message;
    IF FOUND THEN
        o_outcome := 'replayed';
        o_settled_after := o_settled_before;
        o_reserved_after := o_reserved_before;
        o_own_after := o_own_before;
        RETURN;
    END IF;
    IF NOT v_admitted THEN
        o_counted_as := 'platform';
        o_weighted := ceil(v_total * coalesce(p_reported_weight, p_unadmitted_weight));
        o_anomaly := 'not_admitted';
    ELSE
        v_offered := p_reported_weight IS NOT NULL
                     AND p_model = ANY (string_to_array(v_models, ' '));
        o_weighted := ceil(v_total * CASE WHEN v_offered THEN p_reported_weight
                                          ELSE v_max_weight END);
        IF p_credential = 'tenant' AND v_tenant_model IS NOT NULL THEN
            o_counted_as := 'tenant';
        ELSIF p_credential = 'tenant' THEN
            o_counted_as := 'platform';
            o_anomaly := 'tenant_key_not_routed';
        ELSE
            o_counted_as := 'platform';
            o_anomaly := CASE WHEN v_offered THEN NULL ELSE 'model_not_offered' END;
        END IF;
    END IF;
    INSERT INTO settlements
        (tenant_id, message_id, model, credential, input_tokens, output_tokens,
         cache_read_tokens, weighted_tokens, counts_against_budget, day_key, period_key,
         settled_at, reported_credential, anomaly)
    VALUES (p_tenant, p_message, p_model, o_counted_as, p_input, p_output, p_cache,
            o_weighted, o_counted_as = 'platform', v_day, v_period, p_at, p_credential,
            o_anomaly)
    ON CONFLICT (tenant_id, message_id) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        -- settled by a concurrent call that locked another period (no admission, a
        -- different window): that one counted it
        SELECT s.credential, s.weighted_tokens, s.anomaly
        INTO o_counted_as, o_weighted, o_anomaly
        FROM settlements s WHERE s.tenant_id = p_tenant AND s.message_id = p_message;
        o_outcome := 'replayed';
        o_settled_after := o_settled_before;
        o_reserved_after := o_reserved_before;
        o_own_after := o_own_before;
        RETURN;
    END IF;
    SELECT CASE WHEN r.state = 'held' THEN r.tokens ELSE 0 END INTO v_tokens
    FROM reservations r
    WHERE r.tenant_id = p_tenant AND r.message_id = p_message
      AND r.state IN ('held', 'lapsed');
    UPDATE reservations r SET state = 'settled'
    WHERE r.tenant_id = p_tenant AND r.message_id = p_message
      AND r.state IN ('held', 'lapsed');
    UPDATE usage_periods p SET
        tokens_reserved = p.tokens_reserved - coalesce(v_tokens, 0),
        tokens_settled = p.tokens_settled
                         + CASE WHEN o_counted_as = 'platform' THEN o_weighted ELSE 0 END,
        own_key_tokens = p.own_key_tokens
                         + CASE WHEN o_counted_as = 'platform' THEN 0 ELSE o_weighted END
    WHERE p.tenant_id = p_tenant AND p.period_key = v_period
    RETURNING * INTO v;
    o_outcome := 'settled';
    IF o_counted_as = 'platform' AND p_budget > 0 THEN
        PERFORM tk_enqueue_notification(p_tenant, 'tokens', to_char(v_period, 'YYYY-MM-DD'),
                                        t.percent, v.tokens_settled, p_budget, NULL, NULL,
                                        NULL, NULL, NULL, NULL, p_at, ARRAY['email', 'webhook'])
        FROM unnest(ARRAY[80, 100]) AS t(percent)
        WHERE o_settled_before * 100 < t.percent * p_budget
          AND t.percent * p_budget <= v.tokens_settled * 100;
    END IF;
    o_settled_after := v.tokens_settled;
    o_reserved_after := v.tokens_reserved;
    o_own_after := v.own_key_tokens;
END $$;
"""
"""``tk_settle`` as this revision created it (0019 draws leased calls first)."""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {ADMIT_SIGNATURE}")
        op.execute(ADMIT_0013)
        op.execute(f"DROP FUNCTION {SETTLE_SIGNATURE_0007}")
        op.execute(SETTLE_0013)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {ADMIT_SIGNATURE}")
        op.execute(ADMIT_0007)
        op.execute(f"DROP FUNCTION {SETTLE_SIGNATURE}")
        op.execute(SETTLE_0007)
