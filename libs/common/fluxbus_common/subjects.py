"""Every NATS bucket, object store, stream and subject name in one place.

Pure: no I/O. No other module spells one of these names.
"""

from __future__ import annotations

OBJECTS_BUCKET = "fluxbus-objects"
"""KV bucket of desired objects, keyed by `object_key()`."""
STATUS_BUCKET = "fluxbus-status"
"""KV bucket of object status, same keys; written only by the owning service."""
SECRETS_BUCKET = "fluxbus-secrets"
"""KV bucket of Secrets and ConfigMaps, keyed by `secret_key()`."""
LEASES_BUCKET = "fluxbus-leases"
"""KV bucket with a TTL, keyed by `lease_key()` and `members_key()`."""
NOTIFIER_BUCKET = "fluxbus-notifier"
"""KV bucket of the notifier's shared delivery state: per-Provider delivery
health (`object_key()` of the Provider) and per-Alert on-change memory
(`onchange.<hash>`); created by the notifier."""
NOTIFIER_DEDUP_BUCKET = "fluxbus-notifier-dedup"
"""KV bucket whose entries live for the notifier's dedup window, keyed
`dedup.<hash of object, reason, message, revision>`; created by the notifier."""
HEARTBEATS_BUCKET = "fluxbus-heartbeats"
"""KV bucket with a TTL where every running service instance publishes its
heartbeat (`fluxbus_common.liveness.Heartbeat`), keyed by `heartbeat_key()`;
an instance that stops renewing it disappears when the TTL passes."""
ARTIFACTS_STORE = "fluxbus-artifacts"
"""Object store of source artifacts, named by `artifact_name()`, and of scanned image
tag lists, named by `image_tags_name()` (a list of 10 000 tags is larger than one
NATS message may be; the object store chunks it)."""

EVENTS_STREAM = "FLUXBUS_EVENTS"
EVENTS_PREFIX = "fluxbus.events"
EVENTS_SUBJECTS = f"{EVENTS_PREFIX}.>"

LOGS_STREAM = "FLUXBUS_LOGS"
"""Bounded stream of every service's structured log records (`fluxbus logs`)."""
LOGS_PREFIX = "fluxbus.logs"
LOGS_SUBJECTS = f"{LOGS_PREFIX}.>"

MEMBERS_PREFIX = "members"
"""Prefix of the heartbeat-group keys in the leases bucket."""

# Configmaps share the secrets bucket under a distinct kind prefix so that one
# watch serves substituteFrom; Secrets use the bare `<ns>.<name>` key DESIGN.md names.
CONFIGMAP_PREFIX = "configmap"


def object_key(kind: str, namespace: str, name: str) -> str:
    """Return the KV key of an object: `<kind lower-case>.<namespace>.<name>`."""
    return f"{kind.lower()}.{namespace}.{name}"


def split_object_key(key: str) -> tuple[str, str, str]:
    """Return (kind, namespace, name) of an object key; raise ValueError if malformed."""
    kind, sep, rest = key.partition(".")
    namespace, sep2, name = rest.partition(".")
    if not (sep and sep2 and kind and namespace and name):
        raise ValueError(f"malformed object key {key!r}")
    return kind, namespace, name


def kind_filter(kind: str) -> str:
    """Return the KV watch filter matching every object of a kind."""
    return f"{kind.lower()}.>"


def secret_key(namespace: str, name: str) -> str:
    """Return the KV key of a Secret: `<namespace>.<name>`."""
    return f"{namespace}.{name}"


def configmap_key(namespace: str, name: str) -> str:
    """Return the KV key of a ConfigMap in the secrets bucket."""
    return f"{CONFIGMAP_PREFIX}.{namespace}.{name}"


def artifact_name(kind: str, namespace: str, name: str, sha256_hex: str) -> str:
    """Return the object-store name of an artifact."""
    return f"{artifact_prefix(kind, namespace, name)}{sha256_hex}.tar.gz"


def artifact_prefix(kind: str, namespace: str, name: str) -> str:
    """Return the object-store name prefix shared by all artifacts of one source."""
    return f"{kind.lower()}/{namespace}/{name}/"


def history_output_name(namespace: str, name: str, digest: str) -> str:
    """Return the object-store name of the rendered output a Kustomization applied
    for one history entry (`digest`: `sha256:<hex>`), gzip-compressed JSON."""
    return f"kustomization/{namespace}/{name}/history/{digest.split(':')[-1]}.json.gz"


def event_subject(kind: str, namespace: str, name: str) -> str:
    """Return the subject an event about an object is published on."""
    return f"{EVENTS_PREFIX}.{kind.lower()}.{namespace}.{name}"


def image_tags_name(namespace: str, name: str) -> str:
    """Return the object-store name of an ImageRepository's scanned tag list."""
    return f"imagerepository/{namespace}/{name}/tags.json"


def lease_key(service: str, kind: str, shard: int) -> str:
    """Return the key of the lease on one shard of a service's kind (kind lower-case)."""
    return f"{service}.{kind}.{shard}"


def members_key(service: str, kind: str) -> str:
    """Return the key of the heartbeat group of the replicas running a service's kind."""
    return f"{MEMBERS_PREFIX}.{service}.{kind}"


def _token(text: str) -> str:
    """One subject/key token: NATS separators and wildcards become `_`."""
    return "".join("_" if c in ".*> \t" else c for c in text) or "_"


def heartbeat_key(service: str, instance: str) -> str:
    """Return the heartbeats-bucket key of one service instance: `<service>.<instance>`."""
    return f"{_token(service)}.{_token(instance)}"


def log_subject(service: str, level: str) -> str:
    """Return the subject a service's log record of `level` is published on."""
    return f"{LOGS_PREFIX}.{_token(service)}.{_token(level.lower())}"


def log_filter(service: str | None = None) -> str:
    """Return the logs-stream subject filter of one service (None: every service)."""
    return f"{LOGS_PREFIX}.{_token(service)}.*" if service else LOGS_SUBJECTS
