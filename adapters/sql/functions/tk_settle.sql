CREATE FUNCTION tk_settle(
    p_tenant text, p_message text, p_day date, p_period date, p_model text,
    p_credential text, p_input bigint, p_output bigint, p_cache bigint,
    p_reported_weight numeric, p_unadmitted_weight numeric, p_at timestamptz,
    p_revision bigint, p_budget bigint, p_drawn_from text, p_drawn bigint,
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
-- this transaction, once per (tenant, kind, period, percent). A call served from the budget
-- lease p_drawn_from takes its reservation (p_drawn tokens) out of it first (tk_draw_lease).
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
    IF p_drawn_from IS NOT NULL THEN
        PERFORM tk_draw_lease(p_tenant, p_drawn_from, p_message, p_drawn, p_at);
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
