CREATE FUNCTION tk_lock_period(p_tenant text, p_period date, p_now timestamptz)
RETURNS usage_periods LANGUAGE plpgsql AS $$
-- Lock (creating if needed) the period row, lapse its expired reservations, return it.
-- This lock serialises one tenant's admissions and settlements within a period.
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
