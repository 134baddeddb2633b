-- Core tables: who is monitored, what is measured, what was raised and what was refused.

CREATE TABLE enterprises (
    id          serial PRIMARY KEY,
    code        text NOT NULL UNIQUE,
    name        text NOT NULL,
    lat         double precision,
    lon         double precision,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hazard_sources (
    id              serial PRIMARY KEY,
    enterprise_id   integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    code            text NOT NULL,
    name            text NOT NULL,
    unit_type       text NOT NULL CHECK (unit_type IN ('storage', 'production')),
    residents_500m  integer,
    chemicals       jsonb NOT NULL DEFAULT '[]',
    s               double precision NOT NULL,
    r               double precision NOT NULL,
    alpha           double precision NOT NULL,
    level           smallint CHECK (level BETWEEN 1 AND 4),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (enterprise_id, code)
);

CREATE TABLE points (
    id               serial PRIMARY KEY,
    enterprise_id    integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    tag              text NOT NULL,
    name             text,
    hazard_source_id integer REFERENCES hazard_sources(id) ON DELETE SET NULL,
    kind             text NOT NULL,
    unit             text,
    range_low        double precision,
    range_high       double precision,
    lolo             double precision,
    lo               double precision,
    hi               double precision,
    hihi             double precision,
    deadband         double precision NOT NULL DEFAULT 0,
    on_delay_s       double precision NOT NULL DEFAULT 0,
    off_delay_s      double precision NOT NULL DEFAULT 0,
    roc_per_min      double precision,
    stale_s          double precision,
    in_service       boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (enterprise_id, tag)
);

CREATE TABLE gateways (
    id             serial PRIMARY KEY,
    enterprise_id  integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    code           text NOT NULL,
    status         text NOT NULL DEFAULT 'unknown',
    status_at      timestamptz,
    UNIQUE (enterprise_id, code)
);

-- The newest reading per point, kept on every write so "latest" is a key lookup.
CREATE TABLE point_latest (
    point_id     integer PRIMARY KEY REFERENCES points(id) ON DELETE CASCADE,
    ts           timestamptz NOT NULL,
    value        double precision NOT NULL,
    quality      smallint NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alarms (
    id            bigserial PRIMARY KEY,
    enterprise_id integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    point_id      integer REFERENCES points(id) ON DELETE CASCADE,
    gateway       text,
    condition     text NOT NULL,
    priority      text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    state         text NOT NULL CHECK (state IN ('UNACK_ACTIVE', 'ACK_ACTIVE', 'RTN_UNACK', 'CLOSED',
                                                 'SHELVED', 'SUPPRESSED', 'OUT_OF_SERVICE')),
    active        boolean NOT NULL,
    value         double precision,
    limit_value   double precision,
    activated_at  timestamptz NOT NULL,
    cleared_at    timestamptz,
    acked_at      timestamptz,
    acked_by      text,
    activations   integer NOT NULL DEFAULT 1,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- One open alarm per point and condition (and per gateway for COMM): re-activation reuses it.
CREATE UNIQUE INDEX alarms_open_point ON alarms (point_id, condition)
    WHERE state <> 'CLOSED' AND point_id IS NOT NULL;
CREATE UNIQUE INDEX alarms_open_gateway ON alarms (enterprise_id, gateway, condition)
    WHERE state <> 'CLOSED' AND point_id IS NULL;
CREATE INDEX alarms_newest ON alarms (activated_at DESC, id DESC);
CREATE INDEX alarms_not_closed ON alarms (state) WHERE state <> 'CLOSED';
CREATE INDEX alarms_point ON alarms (point_id, activated_at DESC);

-- Append-only log of every alarm change: who, what, when.
CREATE TABLE alarm_events (
    id          bigserial PRIMARY KEY,
    alarm_id    bigint NOT NULL REFERENCES alarms(id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    from_state  text,
    to_state    text NOT NULL,
    value       double precision,
    reading_ts  timestamptz,
    comment     text
);
CREATE INDEX alarm_events_alarm ON alarm_events (alarm_id, id);

CREATE FUNCTION hazmon_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER alarm_events_append_only BEFORE UPDATE OR DELETE ON alarm_events
    FOR EACH ROW EXECUTE FUNCTION hazmon_append_only();

-- What ingest refused and why, so an enterprise can fix its gateway.
CREATE TABLE rejections (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    enterprise  text,
    gateway     text,
    topic       text NOT NULL,
    tag         text,
    code        text NOT NULL,
    reason      text NOT NULL,
    excerpt     text NOT NULL DEFAULT ''
);
CREATE INDEX rejections_newest ON rejections (at DESC, id DESC);
CREATE INDEX rejections_enterprise ON rejections (enterprise, at DESC);

-- Bumped whenever points change, so every ingest process reloads its registry.
CREATE TABLE config_versions (
    name     text PRIMARY KEY,
    version  bigint NOT NULL
);
INSERT INTO config_versions VALUES ('points', 1);
