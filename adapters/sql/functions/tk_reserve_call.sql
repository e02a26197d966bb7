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
-- 3. p_named is a message whose reservation is still held and no other call has claimed:
--    the call claims it (claimed_by, under the reservation's row lock) and uses it
--    ('replayed', o_message = p_named, nothing new held). One claimed by another call, or
--    no longer held, leaves the call to hold its own below: each call settles exactly its
--    own usage. A known p_call answers as first ('replayed').
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
    UPDATE reservations r SET claimed_by = p_call
    WHERE r.tenant_id = p_tenant AND r.message_id = p_named AND r.state = 'held'
      AND r.expires_at > p_now AND (r.claimed_by IS NULL OR r.claimed_by = p_call)
    RETURNING r.message_id, r.tokens INTO o_message, o_held;
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
