"""Prometheus metrics of a service: reconcile duration histogram and result
counter per kind, work-queue depth, process metrics, and the per-object
metrics under Flux's names, so Flux's Grafana dashboards and alerts work:

- `gotk_reconcile_duration_seconds{kind,name,namespace}` (histogram);
- `gotk_reconcile_condition{kind,name,namespace,type,status}`: 1 for the
  condition's current status, 0 for the others among True/False/Unknown/Deleted
  (Deleted=1 once the object is gone), as fluxcd/pkg/runtime records it;
- `gotk_resource_info{customresource_group,customresource_kind,
  customresource_version,name,namespace,ready,suspended,revision}` = 1: what
  Flux's kube-state-metrics configuration exports (Prometheus renames
  `namespace` to `exported_namespace` when the scrape target has its own,
  exactly as it does for kube-state-metrics).

One registry per service process (tests create several services in one
process, so nothing uses the global registry)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from fluxbus_common.revisions import revision_of

CONDITION_STATUSES = ("True", "False", "Unknown", "Deleted")
"""The `status` label values of gotk_reconcile_condition (fluxcd/pkg/runtime's)."""
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300)
"""From a cached no-op reconcile (~1 ms) to a slow health check (minutes)."""


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
            buckets=DURATION_BUCKETS,
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

        self.gotk_duration = Histogram(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a GitOps Toolkit resource reconciliation.",
            ["kind", "name", "namespace"],
            registry=self.registry,
            buckets=DURATION_BUCKETS,
        )
        self.gotk_condition = Gauge(
            "gotk_reconcile_condition",
            "The current condition status of a GitOps Toolkit resource reconciliation.",
            ["kind", "name", "namespace", "type", "status"],
            registry=self.registry,
        )
        self.gotk_info = Gauge(
            "gotk_resource_info",
            "The current state of a GitOps Toolkit resource.",
            [
                "customresource_group",
                "customresource_kind",
                "customresource_version",
                "name",
                "namespace",
                "ready",
                "suspended",
                "revision",
            ],
            registry=self.registry,
        )
        self._info_labels: dict[tuple[str, str, str], tuple[str, ...]] = {}
        """The gotk_resource_info series of each object (kind, namespace, name)."""
        self._condition_types: dict[tuple[str, str, str], set[str]] = {}
        ProcessCollector(registry=self.registry)

    def observe_reconcile(self, kind: str, namespace: str, name: str, duration: float) -> None:
        """Record one reconcile's duration (`kind` as Flux spells it, e.g. Kustomization)."""
        self.reconcile_duration.labels(kind.lower()).observe(duration)
        self.gotk_duration.labels(kind, name, namespace).observe(duration)

    def record_object(self, doc: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """Set an object's gotk_reconcile_condition and gotk_resource_info series from
        its stored document and status (Ready is always recorded, Unknown if unset)."""
        kind = str(doc.get("kind") or "")
        meta = doc.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        ident = (kind, namespace, name)
        current: dict[str, str] = {"Ready": "Unknown"}
        for cond in status.get("conditions") or []:
            if isinstance(cond, Mapping) and cond.get("type"):
                current[str(cond["type"])] = str(cond.get("status") or "Unknown")
        for gone in self._condition_types.get(ident, set()) - current.keys():
            for st in CONDITION_STATUSES:
                self.gotk_condition.remove(kind, name, namespace, gone, st)
        self._condition_types[ident] = set(current)
        for ctype, value in current.items():
            for st in CONDITION_STATUSES:
                self.gotk_condition.labels(kind, name, namespace, ctype, st).set(
                    1 if st == value else 0
                )
        group, _, version = str(doc.get("apiVersion") or "").rpartition("/")
        spec = doc.get("spec") or {}
        suspended = bool(spec.get("suspend")) if isinstance(spec, Mapping) else False
        labels = (
            group,
            kind,
            version,
            name,
            namespace,
            current["Ready"],
            "true" if suspended else "false",
            revision_of(status),
        )
        previous = self._info_labels.get(ident)
        if previous is not None and previous != labels:
            self.gotk_info.remove(*previous)
        self._info_labels[ident] = labels
        self.gotk_info.labels(*labels).set(1)

    def forget_object(self, kind: str, namespace: str, name: str) -> None:
        """The object is gone: its conditions read Deleted, its info series goes."""
        ident = (kind, namespace, name)
        for ctype in self._condition_types.pop(ident, {"Ready"}):
            for st in CONDITION_STATUSES:
                self.gotk_condition.labels(kind, name, namespace, ctype, st).set(
                    1 if st == "Deleted" else 0
                )
        labels = self._info_labels.pop(ident, None)
        if labels is not None:
            self.gotk_info.remove(*labels)

    def track_outbox(self, outbox: OutboxStats) -> None:
        """Expose the event outbox's depth and drop counter."""
        self.registry.register(_OutboxCollector(outbox))
