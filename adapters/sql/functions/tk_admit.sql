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
--    before * 100 < percent * cap <= after * 100, in bigint: a cap above 21,474,836 would
--    overflow integer) go to the notifications outbox in this transaction, once per
--    (tenant, kind, window, percent): committed with the count.
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
                WHERE (o_messages - 1)::bigint * 100 < t.percent::bigint * p_cap
                  AND t.percent::bigint * p_cap <= o_messages::bigint * 100;
            END IF;
        END IF;
    END IF;
    o_settled := v.tokens_settled;
    o_reserved := v.tokens_reserved;
    o_own := v.own_key_tokens;
END $$;
