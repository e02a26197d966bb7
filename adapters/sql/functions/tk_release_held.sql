CREATE FUNCTION tk_release_held(p_tenant text, p_message text, p_now timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
-- What a held reservation still holds goes back to its period, nothing settled (a budget
-- lease whose calls have all settled): state 'released', once. Returns the tokens given
-- back; 0 when it was not held (settled, lapsed, swept, released or unknown).
DECLARE
    v_period date;
    v_tokens bigint;
BEGIN
    SELECT r.period_key INTO v_period FROM reservations r
    WHERE r.tenant_id = p_tenant AND r.message_id = p_message AND r.state = 'held';
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    PERFORM tk_lock_period(p_tenant, v_period, p_now);
    UPDATE reservations r SET state = 'released'
    WHERE r.tenant_id = p_tenant AND r.message_id = p_message AND r.state = 'held'
    RETURNING r.tokens INTO v_tokens;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    UPDATE usage_periods p SET tokens_reserved = p.tokens_reserved - v_tokens
    WHERE p.tenant_id = p_tenant AND p.period_key = v_period;
    RETURN v_tokens;
END $$;
