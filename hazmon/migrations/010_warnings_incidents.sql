-- Risk warnings (red/orange/yellow/blue) with their closed loop, incidents with their timeline
-- and dispatches, and the response rules (warning matrix, deadlines, correlation rules).

-- Validated rule documents by name ('warnings', 'incidents'); absent = the built-in defaults.
CREATE TABLE response_config (
    name        text PRIMARY KEY,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL
);

-- How far the response service has read the alarm event log.
CREATE TABLE response_cursor (
    name           text PRIMARY KEY,
    last_event_id  bigint NOT NULL
);

-- One warning per hazard source (hazard_source_id NULL: alarms of the enterprise that belong to
-- no hazard source) and loop: issued → acknowledged → feedback → cleared.
CREATE TABLE warnings (
    id                bigserial PRIMARY KEY,
    enterprise_id     integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    hazard_source_id  integer REFERENCES hazard_sources(id) ON DELETE CASCADE,
    level             smallint,
    color             text NOT NULL CHECK (color IN ('red', 'orange', 'yellow', 'blue')),
    live_color        text CHECK (live_color IN ('red', 'orange', 'yellow', 'blue')),
    state             text NOT NULL CHECK (state IN ('issued', 'acknowledged', 'feedback', 'cleared')),
    reason            text NOT NULL,
    covered           jsonb NOT NULL DEFAULT '{}',   -- {"<alarm id>": activations} it answers for
    issued_at         timestamptz NOT NULL,
    acked_at          timestamptz,
    acked_by          text,
    ack_comment       text,
    feedback_at       timestamptz,
    feedback_by       text,
    cause             text,
    action            text,
    cleared_at        timestamptz,
    cleared_by        text,
    clear_comment     text,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX warnings_open_source ON warnings (hazard_source_id)
    WHERE state <> 'cleared' AND hazard_source_id IS NOT NULL;
CREATE UNIQUE INDEX warnings_open_enterprise ON warnings (enterprise_id)
    WHERE state <> 'cleared' AND hazard_source_id IS NULL;
CREATE INDEX warnings_enterprise ON warnings (enterprise_id, issued_at DESC);
CREATE INDEX warnings_not_cleared ON warnings (state) WHERE state <> 'cleared';

CREATE TABLE warning_events (
    id             bigserial PRIMARY KEY,
    warning_id     bigint NOT NULL REFERENCES warnings(id) ON DELETE CASCADE,
    enterprise_id  integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    at             timestamptz NOT NULL,
    actor          text NOT NULL,
    action         text NOT NULL,
    from_state     text,
    to_state       text NOT NULL,
    color          text NOT NULL,
    comment        text
);
CREATE INDEX warning_events_warning ON warning_events (warning_id, id);
CREATE TRIGGER warning_events_append_only BEFORE UPDATE OR DELETE ON warning_events
    FOR EACH ROW EXECUTE FUNCTION hazmon_append_only();

-- A step of a warning that missed its deadline (once per warning and step).
CREATE TABLE warning_overdue (
    warning_id     bigint NOT NULL REFERENCES warnings(id) ON DELETE CASCADE,
    enterprise_id  integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    step           text NOT NULL CHECK (step IN ('acknowledge', 'feedback', 'clear')),
    due_at         timestamptz NOT NULL,
    noted_at       timestamptz NOT NULL,
    announced      boolean NOT NULL,
    PRIMARY KEY (warning_id, step)
);

CREATE TABLE warning_attachments (
    id             bigserial PRIMARY KEY,
    warning_id     bigint NOT NULL REFERENCES warnings(id) ON DELETE CASCADE,
    enterprise_id  integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    name           text NOT NULL,
    content_type   text NOT NULL,
    size           integer NOT NULL,
    sha256         text NOT NULL,
    data           bytea NOT NULL,
    uploaded_at    timestamptz NOT NULL,
    uploaded_by    text NOT NULL
);
CREATE INDEX warning_attachments_warning ON warning_attachments (warning_id, id);

CREATE TABLE incidents (
    id                 bigserial PRIMARY KEY,
    enterprise_id      integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    hazard_source_id   integer REFERENCES hazard_sources(id) ON DELETE SET NULL,
    title              text NOT NULL,
    status             text NOT NULL CHECK (status IN ('open', 'responding', 'closed')),
    rule               text,                      -- the correlation rule that opened it, if any
    opened_at          timestamptz NOT NULL,
    opened_by          text NOT NULL,
    occurred_at        timestamptz NOT NULL,
    report_due_at      timestamptz NOT NULL,
    reported_at        timestamptz,
    reported_by        text,
    report_to          text,
    report_note        text,
    report_overdue_at  timestamptz,               -- when the missed reporting clock was escalated
    closed_at          timestamptz,
    closed_by          text,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_enterprise ON incidents (enterprise_id, opened_at DESC);
CREATE INDEX incidents_open_source ON incidents (hazard_source_id) WHERE status <> 'closed';
CREATE INDEX incidents_report_due ON incidents (report_due_at)
    WHERE reported_at IS NULL AND report_overdue_at IS NULL;

-- The alarm activations an incident answers for (one activation joins one incident).
CREATE TABLE incident_alarms (
    incident_id          bigint NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    alarm_id             bigint NOT NULL REFERENCES alarms(id) ON DELETE CASCADE,
    activation_event_id  bigint,
    linked_at            timestamptz NOT NULL,
    linked_by            text NOT NULL,
    PRIMARY KEY (incident_id, alarm_id)
);
CREATE UNIQUE INDEX incident_alarms_activation ON incident_alarms (activation_event_id)
    WHERE activation_event_id IS NOT NULL;
CREATE INDEX incident_alarms_alarm ON incident_alarms (alarm_id);

CREATE TABLE incident_events (
    id             bigserial PRIMARY KEY,
    incident_id    bigint NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    enterprise_id  integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    at             timestamptz NOT NULL,
    actor          text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('opened', 'alarm', 'note', 'notification',
                                                 'dispatch', 'status', 'report', 'report_overdue')),
    text           text NOT NULL,
    data           jsonb
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, at, id);
CREATE TRIGGER incident_events_append_only BEFORE UPDATE OR DELETE ON incident_events
    FOR EACH ROW EXECUTE FUNCTION hazmon_append_only();

CREATE TABLE dispatches (
    id             bigserial PRIMARY KEY,
    incident_id    bigint NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    enterprise_id  integer NOT NULL REFERENCES enterprises(id) ON DELETE CASCADE,
    resource_id    bigint REFERENCES rescue_resources(id) ON DELETE SET NULL,
    resource_name  text NOT NULL,
    what           text NOT NULL,
    quantity       double precision,
    distance_km    double precision,
    status         text NOT NULL CHECK (status IN ('requested', 'en_route', 'on_scene',
                                                   'returned', 'cancelled')),
    dispatched_at  timestamptz NOT NULL,
    dispatched_by  text NOT NULL,
    status_at      timestamptz NOT NULL,
    note           text
);
CREATE INDEX dispatches_incident ON dispatches (incident_id, id);
