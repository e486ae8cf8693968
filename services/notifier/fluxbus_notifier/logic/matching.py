"""Which Alerts an event matches, and the metadata a matched event is sent with.

Pure: no I/O.

Both follow notification-controller's event server (`internal/server`):

- `alert_matches`: a suspended Alert matches nothing; one of `spec.eventSources`
  must name the event's kind and namespace (the Alert's own namespace when the
  source leaves it out) and its name or `*`; `matchLabels` are checked against the
  involved object's labels, and an object the caller could not read (labels
  `None`) does not match, as Flux's failed `Get`. `eventSeverity: error` takes
  only errors, `info` takes every event. The message must match one of
  `inclusionList` (when given) and none of `exclusionList` (exclusion wins). A
  pattern that does not compile is skipped, as Flux does (`invalid_patterns` lists
  them so the caller can warn on the Alert, reason `InvalidConfig`).
- `enrich`: Flux's metadata pipeline. First the clean-up: keep keys prefixed with
  `event.toolkit.fluxcd.io/` or with the involved object's API group, drop the
  controller's `checksum`, `digest` and `token` keys. Then the merge, lowest to
  highest precedence (Flux RFC 0008): event-group keys (object annotations) with
  the prefix stripped, `spec.eventMetadata`, `spec.summary` as `summary`, the
  controller's own keys with the group prefix stripped. `metadata_conflicts` names
  the keys set by more than one source (Flux warns, reason `MetadataAppendFailed`).

fluxbus's controllers write their own metadata keys without a group prefix
(`revision`, not `kustomize.toolkit.fluxcd.io/revision`): an unprefixed key is
taken as the controller's, exactly where Flux takes `<object group>/<key>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from fluxbus_common.api.meta import CrossNamespaceObjectReference
from fluxbus_common.api.notification import Alert
from fluxbus_common.events import Event
from fluxbus_notifier.logic.provider_config import COMMIT_STATUS_TYPES

__all__ = [
    "EVENT_GROUP",
    "alert_matches",
    "enrich",
    "invalid_patterns",
    "metadata_conflicts",
    "object_group",
    "provider_accepts",
]

EVENT_GROUP = "event.toolkit.fluxcd.io"
"""Flux's Event API group: object annotations with this prefix travel as event metadata."""

_CASE_INSENSITIVE_DROPS = frozenset({"checksum", "digest"})
"""Controller keys Flux drops on arrival (compared case-insensitively, as Flux's inList)."""
_TOKEN_KEY = "token"
"""The controller's rate-limiting token: internal, dropped (compared exactly, as Flux)."""

# Source names in Flux's conflict report.
SOURCE_EVENT_GROUP = "involved object annotations"
SOURCE_ALERT_EVENT_METADATA = "Alert object .spec.eventMetadata"
SOURCE_ALERT_SUMMARY = "Alert object .spec.summary"
SOURCE_OBJECT_GROUP = "involved object controller metadata"

SUMMARY_KEY = "summary"

COMMIT_STATUS_KEY = "commit_status"
COMMIT_STATUS_UPDATE = "update"
"""A controller marks commit-status-only events with `commit_status: update`."""

_GENERIC_PROVIDERS = frozenset({"generic", "generic-hmac"})


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def invalid_patterns(alert: Alert) -> list[str]:
    """The `inclusionList`/`exclusionList` patterns that do not compile (skipped by matching)."""
    patterns = [*(alert.spec.inclusion_list or ()), *(alert.spec.exclusion_list or ())]
    return [p for p in patterns if _compiled(p) is None]


def _any_match(patterns: list[str], message: str) -> bool:
    for pattern in patterns:
        rx = _compiled(pattern)
        if rx is not None and rx.search(message):
            return True
    return False


def _source_matches(
    alert: Alert,
    source: CrossNamespaceObjectReference,
    event: Event,
    object_labels: Mapping[str, str] | None,
) -> bool:
    obj = event.involved_object
    namespace = source.namespace or alert.metadata.namespace
    if obj.namespace != namespace or obj.kind != source.kind:
        return False
    severity = alert.spec.effective_event_severity
    if event.severity != severity and severity != "info":
        return False
    if source.name != "*" and source.name != obj.name:
        return False
    if source.match_labels is None:
        return True
    if object_labels is None:
        return False
    return all(object_labels.get(k) == v for k, v in source.match_labels.items())


def alert_matches(alert: Alert, event: Event, object_labels: Mapping[str, str] | None) -> bool:
    """Whether `event` is for `alert` (see the module docstring for Flux's rules).

    `object_labels`: the involved object's labels, or None when it could not be
    read; only consulted by sources with `matchLabels`.
    """
    if alert.spec.suspend:
        return False
    if not any(_source_matches(alert, s, event, object_labels) for s in alert.spec.event_sources):
        return False
    inclusion = alert.spec.inclusion_list or []
    if inclusion and not _any_match(inclusion, event.message):
        return False
    return not _any_match(alert.spec.exclusion_list or [], event.message)


def object_group(event: Event) -> str:
    """The involved object's API group (`kustomize.toolkit.fluxcd.io`; "" for the core group)."""
    api_version = event.involved_object.api_version or ""
    group, slash, _ = api_version.partition("/")
    return group if slash else ""


def _controller_key(key: str, group_prefix: str | None) -> str | None:
    """The key without its controller prefix, or None when it is not the controller's."""
    if group_prefix is not None and key.startswith(group_prefix):
        return key[len(group_prefix) :]
    if "/" not in key:
        return key
    return None


def _sourced_metadata(alert: Alert, event: Event) -> tuple[dict[str, str], dict[str, list[str]]]:
    group = object_group(event)
    group_prefix = f"{group}/" if group else None
    event_prefix = f"{EVENT_GROUP}/"
    annotations: dict[str, str] = {}
    controller: dict[str, str] = {}
    for key, value in event.metadata.items():
        if key.startswith(event_prefix):
            annotations[key[len(event_prefix) :]] = value
            continue
        short = _controller_key(key, group_prefix)
        if short is None or short == _TOKEN_KEY or short.lower() in _CASE_INSENSITIVE_DROPS:
            continue
        controller[short] = value

    metadata: dict[str, str] = {}
    sources: dict[str, list[str]] = {}

    def put(items: Mapping[str, str], source: str) -> None:
        for k, v in items.items():
            metadata[k] = v
            sources.setdefault(k, []).append(source)

    put(annotations, SOURCE_EVENT_GROUP)
    put(alert.spec.event_metadata or {}, SOURCE_ALERT_EVENT_METADATA)
    if alert.spec.summary:
        put({SUMMARY_KEY: alert.spec.summary}, SOURCE_ALERT_SUMMARY)
    put(controller, SOURCE_OBJECT_GROUP)
    return metadata, sources


def enrich(alert: Alert, event: Event) -> Event:
    """A copy of `event` whose metadata is Flux's merge of the event's, the Alert's
    `eventMetadata` and `summary` (see the module docstring); keys with a prefix
    for another API group, and `token`, `checksum`, `digest`, are dropped."""
    metadata, _ = _sourced_metadata(alert, event)
    return event.model_copy(update={"metadata": metadata})


def metadata_conflicts(alert: Alert, event: Event) -> dict[str, list[str]]:
    """Keys `enrich` took from more than one source, each with its sources lowest
    precedence first (the highest won); empty when there is no conflict."""
    _, sources = _sourced_metadata(alert, event)
    return {k: v for k, v in sorted(sources.items()) if len(v) > 1}


def provider_accepts(provider_type: str, event: Event) -> bool:
    """Whether a Provider of `provider_type` gets `event` at all (before `enrich`).

    As Flux: an event a controller marked as a commit-status update
    (`<group>/commit_status: update`, or fluxbus's unprefixed key) goes only to Git
    commit-status providers and the generic webhooks. Commit-status providers
    themselves skip events without a revision when sending.
    """
    if provider_type in COMMIT_STATUS_TYPES or provider_type in _GENERIC_PROVIDERS:
        return True
    group = object_group(event)
    keys = [COMMIT_STATUS_KEY] + ([f"{group}/{COMMIT_STATUS_KEY}"] if group else [])
    return not any(event.metadata.get(k) == COMMIT_STATUS_UPDATE for k in keys)
