CREATE FUNCTION tk_release_period(p_tenant text, p_period date, p_now timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
-- The caller holds the usage_periods row lock of (p_tenant, p_period): held reservations
-- past their expiry lapse (leave the counter); tk_release_expired later sweeps them.
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
