-- The alarm engine's state, saved now and then; after a restart it is loaded and the readings
-- stored since are judged again, so pending delays and active conditions resume exactly.
CREATE TABLE engine_checkpoints (
    name       text PRIMARY KEY,
    taken_at   timestamptz NOT NULL,
    state      bytea NOT NULL
);
