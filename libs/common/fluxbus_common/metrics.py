"""Prometheus metrics of a service: reconcile duration histogram and result
counter per kind, work-queue depth. One registry per service process (tests
create several services in one process, so nothing uses the global registry)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class OutboxStats(Protocol):
    """What the metrics read from the bus's event outbox."""

    @property
    def pending(self) -> int: ...

    dropped: int


class _OutboxCollector(Collector):
    def __init__(self, outbox: OutboxStats) -> None:
        self._outbox = outbox

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "fluxbus_events_outbox_pending",
            "Events waiting in the outbox for NATS to take them.",
            value=self._outbox.pending,
        )
        yield CounterMetricFamily(
            "fluxbus_events_outbox_dropped",
            "Events dropped because the outbox was full (the oldest go first).",
            value=self._outbox.dropped,
        )


class Metrics:
    """The metrics one service exposes on /metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconcile_duration = Histogram(
            "fluxbus_reconcile_duration_seconds",
            "Time one reconcile took, per kind.",
            ["kind"],
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
        )
        self.reconcile_total = Counter(
            "fluxbus_reconcile",
            "Finished reconciles per kind and result.",
            ["kind", "result"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "fluxbus_workqueue_depth",
            "Keys waiting in the work queue, per kind.",
            ["kind"],
            registry=self.registry,
        )

    def track_outbox(self, outbox: OutboxStats) -> None:
        """Expose the event outbox's depth and drop counter."""
        self.registry.register(_OutboxCollector(outbox))
