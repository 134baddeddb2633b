"""Ingest metrics, owned: built on the registry the caller passes (tests pass a fresh one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    """Counters and histograms of the ingest pipeline."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter("hazmon_ingest_messages_total",
                                "MQTT messages received, by topic kind", ["kind"], registry=registry)
        self.readings = Counter("hazmon_ingest_readings_total",
                                "Readings accepted and committed", registry=registry)
        self.duplicates = Counter("hazmon_ingest_duplicate_readings_total",
                                  "Readings already stored (redelivery), collapsed", registry=registry)
        self.rejected = Counter("hazmon_ingest_rejected_total",
                                "Messages or readings rejected, by reason code", ["reason"],
                                registry=registry)
        self.not_judged = Counter("hazmon_engine_readings_not_judged_total",
                                  "Readings stored but not judged: older than (or as old as) the "
                                  "newest judged reading of their point", registry=registry)
        self.batch_size = Histogram("hazmon_ingest_batch_readings", "Readings per committed batch",
                                    buckets=(1, 10, 100, 1000, 10_000, 100_000), registry=registry)
        self.write_seconds = Histogram("hazmon_db_write_seconds", "Time to write and commit a batch",
                                       buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5),
                                       registry=registry)
        self.engine_seconds = Histogram("hazmon_engine_batch_seconds", "Engine time per batch",
                                        buckets=(.0001, .0005, .001, .005, .01, .05, .1),
                                        registry=registry)
        self.lag = Histogram("hazmon_ingest_lag_seconds", "Commit time minus reading time",
                             buckets=(.01, .05, .1, .25, .5, 1, 2, 5, 10, 60, 600),
                             registry=registry)
        self.queue_depth = Gauge("hazmon_ingest_queue_depth", "Messages waiting for the worker",
                                 registry=registry)
        self.db_errors = Counter("hazmon_ingest_db_errors_total",
                                 "Failed batch writes (retried)", registry=registry)
        self.subscribed_enterprises = Gauge(
            "hazmon_ingest_subscribed_enterprises",
            "Enterprises whose topics this shard subscribes to", registry=registry)
        self.broker_connected = Gauge("hazmon_broker_connected", "1 when connected to the broker",
                                      registry=registry)
        self.rollup_refresh_seconds = Histogram(
            "hazmon_rollup_refresh_seconds", "Time of one refresh pass of the 1-minute rollup",
            buckets=(.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60), registry=registry)
        self.rollup_minutes = Counter("hazmon_rollup_minutes_written_total",
                                      "Point-minutes written (new or changed) into the rollup",
                                      registry=registry)
        self.rollup_errors = Counter("hazmon_rollup_refresh_errors_total",
                                     "Failed rollup refresh passes (retried)", registry=registry)
        self.alarm_changes = Counter("hazmon_alarm_transitions_total",
                                     "Alarm condition transitions, by condition, priority and direction",
                                     ["condition", "priority", "direction"], registry=registry)
