CREATE FUNCTION tk_draw_lease(
    p_tenant text, p_lease text, p_call text, p_tokens bigint, p_now timestamptz
) RETURNS void LANGUAGE plpgsql AS $$
-- A call served from a budget lease (domain/use_cases/budget_leases.py) takes its
-- reservation out of the lease as it settles (tk_settle calls this first), unless it has
-- one already: p_tokens move from the lease's hold to a reservation of p_call on the
-- lease's day, period, route, admission time and expiry, so the period's total does not
-- change. A lease no longer held (lapsed, swept or released) lends its route, no tokens.
DECLARE
    v_period date;
    v_tokens bigint;
BEGIN
    SELECT r.period_key INTO v_period FROM reservations r
    WHERE r.tenant_id = p_tenant AND r.message_id = p_lease;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM tk_lock_period(p_tenant, v_period, p_now);
    IF EXISTS (SELECT 1 FROM reservations r
               WHERE r.tenant_id = p_tenant AND r.message_id = p_call) THEN
        RETURN;
    END IF;
    SELECT least(p_tokens, r.tokens) INTO v_tokens FROM reservations r
    WHERE r.tenant_id = p_tenant AND r.message_id = p_lease AND r.state = 'held';
    UPDATE reservations r SET tokens = r.tokens - v_tokens
    WHERE r.tenant_id = p_tenant AND r.message_id = p_lease AND r.state = 'held';
    INSERT INTO reservations
        (tenant_id, message_id, day_key, period_key, tokens, admitted_at, expires_at, state,
         offered_models, tenant_key_model, max_weight)
    SELECT r.tenant_id, p_call, r.day_key, r.period_key, coalesce(v_tokens, 0),
           r.admitted_at, r.expires_at, CASE WHEN v_tokens IS NULL THEN 'lapsed' ELSE 'held' END,
           r.offered_models, r.tenant_key_model, r.max_weight
    FROM reservations r WHERE r.tenant_id = p_tenant AND r.message_id = p_lease;
END $$;
