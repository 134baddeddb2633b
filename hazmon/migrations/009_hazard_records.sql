-- Hazard records (重大危险源档案): coordinates, identification date, responsible people,
-- emergency equipment, plans and procedures with their drills and documents, the grading
-- history, and the rescue resources nearby. Every row carries its enterprise so queries can
-- be scoped by tenant.

CREATE TABLE hazard_records (
    hazard_source_id   integer PRIMARY KEY REFERENCES hazard_sources(id) ON DELETE CASCADE,
    enterprise_id      integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    lat                double precision CHECK (lat BETWEEN -90 AND 90),
    lon                double precision CHECK (lon BETWEEN -180 AND 180),
    last_identified_on date,
    -- [{"name", "kind"?, "quantity"?, "unit"?, "location"?, "checked_on"?}]
    equipment          jsonb NOT NULL DEFAULT '[]',
    updated_at         timestamptz NOT NULL DEFAULT now(),
    updated_by         text NOT NULL
);
CREATE INDEX hazard_records_enterprise ON hazard_records (enterprise_id);

-- The three responsible people (包保责任人) of a hazard source.
CREATE TABLE hazard_responsibles (
    hazard_source_id  integer NOT NULL REFERENCES hazard_sources(id) ON DELETE CASCADE,
    enterprise_id     integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    role              text NOT NULL CHECK (role IN ('principal', 'technical', 'operations')),
    name              text NOT NULL,
    phone             text NOT NULL,
    position          text,
    PRIMARY KEY (hazard_source_id, role)
);

-- 专项应急预案 (drilled yearly) and 现场处置方案 (drilled every 6 months).
CREATE TABLE hazard_plans (
    id                bigserial PRIMARY KEY,
    hazard_source_id  integer NOT NULL REFERENCES hazard_sources(id) ON DELETE CASCADE,
    enterprise_id     integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    kind              text NOT NULL CHECK (kind IN ('emergency_plan', 'onsite_procedure')),
    title             text NOT NULL,
    version           text,
    link              text,
    last_drill_on     date,
    doc               bytea,
    doc_name          text,
    doc_type          text,
    doc_size          integer,
    doc_sha256        text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    updated_by        text NOT NULL
);
CREATE INDEX hazard_plans_source ON hazard_plans (hazard_source_id, kind, id);

-- S, R, α and level after every change of the inventory or the residents: the history.
CREATE TABLE hazard_grading_history (
    id                bigserial PRIMARY KEY,
    hazard_source_id  integer NOT NULL REFERENCES hazard_sources(id) ON DELETE CASCADE,
    enterprise_id     integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    at                timestamptz NOT NULL DEFAULT now(),
    actor             text NOT NULL,
    reason            text,
    residents_500m    integer,
    chemicals         jsonb NOT NULL,
    s                 double precision NOT NULL,
    r                 double precision NOT NULL,
    alpha             double precision NOT NULL,
    level             smallint
);
CREATE INDEX hazard_grading_history_source ON hazard_grading_history (hazard_source_id, id);
CREATE TRIGGER hazard_grading_history_append_only BEFORE UPDATE OR DELETE ON hazard_grading_history
    FOR EACH ROW EXECUTE FUNCTION hazmon_append_only();

-- Rescue resources: teams, equipment, stocks. enterprise_id NULL = a public resource
-- (fire brigade, county stockpile) that every caller may see and dispatch.
CREATE TABLE rescue_resources (
    id             bigserial PRIMARY KEY,
    enterprise_id  integer REFERENCES enterprises(id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('team', 'equipment', 'stock')),
    name           text NOT NULL,
    description    text,
    quantity       double precision,
    unit           text,
    lat            double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon            double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    contact_name   text,
    contact_phone  text,
    available      boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     text NOT NULL
);
CREATE INDEX rescue_resources_enterprise ON rescue_resources (enterprise_id);
