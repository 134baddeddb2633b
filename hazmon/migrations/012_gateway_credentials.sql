-- MQTT identity (issue 7): per-gateway broker credentials, and the enterprises closed to
-- anonymous publishers. See hazmon/mqtt_auth.py for the rules these rows become.

-- A gateway row may exist without credentials: ingest records the status of any gateway that
-- reports one. It is *registered* when it has credentials (all three columns set together).
ALTER TABLE gateways ADD COLUMN username text UNIQUE;           -- '{enterprise}/{gateway}'
ALTER TABLE gateways ADD COLUMN password_hash text;             -- mosquitto PBKDF2-SHA512 '$7$'
ALTER TABLE gateways ADD COLUMN credential_set_at timestamptz;  -- registered or last rotated
ALTER TABLE gateways ADD COLUMN registered_at timestamptz;      -- first registered
ALTER TABLE gateways ADD CONSTRAINT gateways_credentials_whole
    CHECK ((username IS NULL) = (password_hash IS NULL)
           AND (password_hash IS NULL) = (credential_set_at IS NULL));

-- Once an enterprise registers a gateway it is closed to anonymous publishers (HAZMON_MQTT_AUTH
-- auto), and it stays closed when its gateways are deleted: deleting a gateway revokes it, it
-- must never reopen the enterprise to anyone.
CREATE TABLE mqtt_closed_enterprises (
    enterprise_id  integer PRIMARY KEY REFERENCES enterprises(id) ON DELETE CASCADE,
    closed_at      timestamptz NOT NULL DEFAULT now()
);

-- Bumped (and NOTIFY hazmon_gateways) whenever credentials change, for processes that follow.
INSERT INTO config_versions VALUES ('gateways', 1) ON CONFLICT DO NOTHING;
