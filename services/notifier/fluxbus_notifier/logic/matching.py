"""STAND-IN (branch notif-service): the minimal alert matching the dispatcher
needs to run; the notif-providers branch delivers the real module (exactly as
Flux). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from fluxbus_common.api.notification import Alert
from fluxbus_common.events import Event


def alert_matches(alert: Alert, event: Event, object_labels: Mapping[str, str] | None) -> bool:
    """Whether `alert` selects `event` (sources, severity, inclusion/exclusion, suspend)."""
    spec = alert.spec
    if spec.suspend:
        return False
    if spec.effective_event_severity == "error" and event.severity != "error":
        return False
    o = event.involved_object
    ok = False
    for src in spec.event_sources:
        ns = src.namespace or alert.metadata.namespace
        if src.kind != o.kind or (ns != "*" and ns != o.namespace):
            continue
        if src.name != "*" and src.name != o.name:
            continue
        labels = object_labels or {}
        if src.match_labels and any(labels.get(k) != v for k, v in src.match_labels.items()):
            continue
        ok = True
    if not ok:
        return False
    if spec.inclusion_list and not any(re.search(p, event.message) for p in spec.inclusion_list):
        return False
    return not any(re.search(p, event.message) for p in spec.exclusion_list or [])


def enrich(alert: Alert, event: Event) -> Event:
    """`event` with the Alert's eventMetadata and summary merged into its metadata."""
    meta = {**(alert.spec.event_metadata or {}), **event.metadata}
    if alert.spec.summary:
        meta["summary"] = alert.spec.summary
    for key in ("token", "checksum", "digest"):
        meta.pop(key, None)
    return event.model_copy(update={"metadata": meta})
