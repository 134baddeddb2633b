"""The notifier's metrics, registered on the registry it is given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class NotifyMetrics:
    """Delivery attempts by channel kind and outcome; whether this process is the active notifier."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.attempts = Counter("hazmon_notify_attempts", "Notification delivery attempts",
                                ["kind", "status"], registry=registry)
        self.active = Gauge("hazmon_notify_active",
                            "1 while this process holds the notifier lock, else 0", registry=registry)
        self.groups = Gauge("hazmon_notify_groups", "Alarm groups the notifier tracks",
                            registry=registry)
        self.retrying = Gauge("hazmon_notify_retrying", "Deliveries waiting for a retry",
                              registry=registry)
