-- Users, roles and scopes; bearer tokens stored hashed; an append-only audit log.

ALTER TABLE enterprises ADD COLUMN region text;

CREATE TABLE users (
    id            serial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    display_name  text,
    role          text NOT NULL CHECK (role IN ('admin', 'duty_officer', 'enterprise', 'dispatcher', 'viewer')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL
);

-- A user's scope: enterprises and/or regions. An enterprise user has exactly one enterprise;
-- a duty officer, dispatcher or viewer without any scope row sees everything.
CREATE TABLE user_scopes (
    user_id        integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    enterprise_id  integer REFERENCES enterprises(id) ON DELETE CASCADE,
    region         text,
    CHECK ((enterprise_id IS NULL) <> (region IS NULL))
);
CREATE INDEX user_scopes_user ON user_scopes (user_id);

CREATE TABLE api_tokens (
    id            serial PRIMARY KEY,
    user_id       integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_sha256  text NOT NULL UNIQUE,   -- tokens are 256-bit random: a plain hash is enough
    prefix        text NOT NULL,          -- first characters, to recognise a token in lists
    name          text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    role        text NOT NULL,
    action      text NOT NULL,
    target      text,
    status      integer,
    before      jsonb,
    after       jsonb,
    source_ip   text,
    user_agent  text
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor, at DESC);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION hazmon_append_only();
