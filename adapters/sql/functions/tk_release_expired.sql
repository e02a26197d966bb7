CREATE FUNCTION tk_release_expired(p_now timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
-- Sweep every reservation past its expiry (tierkeeper usage sweep, serve's timer); period
-- rows are locked in key order, so this never deadlocks with admissions.
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
