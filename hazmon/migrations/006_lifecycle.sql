-- ISA-18.2 lifecycle beyond the first cut: shelving, suppression by design (modes),
-- out of service, latching and per-point priority overrides.

ALTER TABLE alarms
    ADD COLUMN latched        boolean NOT NULL DEFAULT false,
    ADD COLUMN shelved_until  timestamptz,
    ADD COLUMN shelved_by     text,
    ADD COLUMN shelve_reason  text;
CREATE INDEX alarms_shelved ON alarms (shelved_until) WHERE state = 'SHELVED';

ALTER TABLE points
    ADD COLUMN latching    boolean NOT NULL DEFAULT false,
    ADD COLUMN priorities  jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN oos_reason  text,
    ADD COLUMN oos_by      text,
    ADD COLUMN oos_since   timestamptz,
    ADD COLUMN oos_until   timestamptz;

-- normal | maintenance | shutdown: anything but normal suppresses the alarms below it.
ALTER TABLE enterprises
    ADD COLUMN mode text NOT NULL DEFAULT 'normal' CHECK (mode IN ('normal', 'maintenance', 'shutdown')),
    ADD COLUMN mode_reason text, ADD COLUMN mode_by text, ADD COLUMN mode_since timestamptz,
    ADD COLUMN mode_until timestamptz;
ALTER TABLE hazard_sources
    ADD COLUMN mode text NOT NULL DEFAULT 'normal' CHECK (mode IN ('normal', 'maintenance', 'shutdown')),
    ADD COLUMN mode_reason text, ADD COLUMN mode_by text, ADD COLUMN mode_since timestamptz,
    ADD COLUMN mode_until timestamptz;
ALTER TABLE points
    ADD COLUMN mode text NOT NULL DEFAULT 'normal' CHECK (mode IN ('normal', 'maintenance', 'shutdown')),
    ADD COLUMN mode_reason text, ADD COLUMN mode_by text, ADD COLUMN mode_since timestamptz,
    ADD COLUMN mode_until timestamptz;

-- The state an alarm of a point must take when its point is masked: out of service wins over
-- suppression; NULL when the point is neither.
CREATE FUNCTION hazmon_point_mask(p_point integer) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT p.in_service THEN 'OUT_OF_SERVICE'
                WHEN p.mode <> 'normal' OR e.mode <> 'normal' OR coalesce(h.mode, 'normal') <> 'normal'
                THEN 'SUPPRESSED' END
    FROM points p JOIN enterprises e ON e.id = p.enterprise_id
    LEFT JOIN hazard_sources h ON h.id = p.hazard_source_id
    WHERE p.id = p_point
$$;

CREATE FUNCTION hazmon_gateway_mask(p_enterprise integer) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN mode <> 'normal' THEN 'SUPPRESSED' END FROM enterprises WHERE id = p_enterprise
$$;
