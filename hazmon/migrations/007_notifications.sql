-- Notifications: channels, routing rules, what was notified (per group and channel) and every
-- delivery attempt. Rules and channels are managed through /api/v1/notifications.

-- Where messages go. ``settings`` holds what may be shown (URL, SMTP host, recipients);
-- ``secret`` the HMAC key, SMTP password or DingTalk sign secret, which is never shown.
CREATE TABLE notify_channels (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('webhook', 'email', 'wecom', 'dingtalk')),
    enabled     boolean NOT NULL DEFAULT true,
    settings    jsonb NOT NULL DEFAULT '{}',
    secret      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Which alarms go where: matchers (empty = any), grouping, timers and escalation tiers
-- (``[{"after_s": 0, "channels": ["name", ...]}, ...]``, after_s strictly increasing).
CREATE TABLE notify_rules (
    id                 serial PRIMARY KEY,
    name               text NOT NULL UNIQUE,
    enabled            boolean NOT NULL DEFAULT true,
    enterprises        text[] NOT NULL DEFAULT '{}',
    hazard_sources     text[] NOT NULL DEFAULT '{}',
    hazard_levels      smallint[] NOT NULL DEFAULT '{}',
    priorities         text[] NOT NULL DEFAULT '{}',
    conditions         text[] NOT NULL DEFAULT '{}',
    group_by           text[] NOT NULL DEFAULT '{enterprise}',
    group_wait_s       double precision NOT NULL DEFAULT 30 CHECK (group_wait_s >= 0),
    group_interval_s   double precision NOT NULL DEFAULT 300 CHECK (group_interval_s > 0),
    repeat_interval_s  double precision NOT NULL DEFAULT 3600 CHECK (repeat_interval_s > 0),
    send_resolved      boolean NOT NULL DEFAULT false,
    tiers              jsonb NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The notification log (Alertmanager's nflog): the last message a channel got about a group and
-- the unacknowledged alarms it listed. Deduplication reads it, so a restart or a takeover by a
-- standby notifier does not send again what was sent.
CREATE TABLE notify_log (
    rule_id    integer NOT NULL REFERENCES notify_rules(id) ON DELETE CASCADE,
    group_key  text NOT NULL,
    channel    text NOT NULL,
    sent_at    timestamptz NOT NULL,
    firing     bigint[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (rule_id, group_key, channel)
);

-- Every delivery attempt; the attempts of one message share ``delivery``.
CREATE TABLE notify_deliveries (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL,
    delivery      text NOT NULL,
    attempt       integer NOT NULL,
    channel       text NOT NULL,
    channel_kind  text NOT NULL,
    rule          text,
    group_key     text,
    reason        text NOT NULL,
    tier          integer,
    alarm_ids     bigint[] NOT NULL DEFAULT '{}',
    warning_id    bigint,
    status        text NOT NULL CHECK (status IN ('ok', 'retry', 'failed')),
    http_status   integer,
    error         text,
    duration_ms   integer
);
CREATE INDEX notify_deliveries_at ON notify_deliveries (at, id);
CREATE INDEX notify_deliveries_alarms ON notify_deliveries USING gin (alarm_ids);

-- Warning escalation events already handled: each (warning, step) is sent once.
CREATE TABLE notify_warnings_seen (
    warning_id  bigint NOT NULL,
    step        text NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warning_id, step)
);
