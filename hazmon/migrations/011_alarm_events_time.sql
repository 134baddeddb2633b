-- The alarm performance report reads activations by event time.
CREATE INDEX alarm_events_time ON alarm_events ((coalesce(reading_ts, at)), action);
