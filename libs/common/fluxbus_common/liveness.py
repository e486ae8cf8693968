"""Knowing the system is alive: the heartbeat every service instance publishes,
which service owns which kind, and who is live at a given moment.

A running service writes its `Heartbeat` to the heartbeats bucket
(`subjects.HEARTBEATS_BUCKET`, a KV bucket with a TTL) every `interval`
seconds and removes it on a clean stop; a crashed one stops renewing it. A
heartbeat counts as live while `now - last_seen <= ttl`; the bucket's own TTL
only garbage-collects what nobody renews.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

SERVICES: tuple[str, ...] = ("source", "kustomize", "image-reflector", "notifier", "helm")
"""Every fluxbus service, in the order `fluxbus up` starts them and `check` lists them."""

SERVICE_OF_KIND: Mapping[str, str] = {
    "gitrepository": "source",
    "kustomization": "kustomize",
    "imagerepository": "image-reflector",
    "imagepolicy": "image-reflector",
    "imageupdateautomation": "image-reflector",
    "provider": "notifier",
    "alert": "notifier",
    "receiver": "notifier",
    "helmrepository": "source",
    "helmchart": "source",
    "helmrelease": "helm",
}
"""The service whose runtime reconciles each toolkit kind (kind lower-case)."""

HEARTBEAT_INTERVAL = 5.0
"""Seconds between two heartbeats of an instance (FLUXBUS_HEARTBEAT_INTERVAL)."""
MISSED_BEATS = 3
"""Heartbeats an instance may miss before it counts as gone: one lost write, or a
loop stalled by a long blocking call, must not make a healthy service look dead."""
HEARTBEATS_BUCKET_TTL = 120.0
"""Age at which NATS removes a heartbeat nobody renews (garbage collection only:
liveness is judged by each heartbeat's own `ttl`, so the interval may change
without recreating the bucket)."""


class Heartbeat(BaseModel):
    """What one running service instance says about itself (camelCase on the wire)."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
    )

    service: str
    instance: str
    version: str = "unknown"
    kinds: tuple[str, ...] = ()
    """The kinds its runtimes reconcile (lower-case)."""
    shards: dict[str, tuple[int, ...]] = {}
    """Per kind, the shards whose leases this instance holds now."""
    shard_count: int = 1
    started: str = ""
    """RFC 3339 time the process started."""
    last_seen: str = ""
    """RFC 3339 time of this heartbeat."""
    ttl: float = HEARTBEAT_INTERVAL * MISSED_BEATS
    """Seconds after `last_seen` the instance still counts as live."""
    ready: bool = False
    """Connected to NATS and every runtime has read its objects (what /readyz says)."""
    http_port: int = 0


def rfc3339(moment: datetime) -> str:
    """Return a UTC timestamp with milliseconds, `Z`-suffixed."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_rfc3339(value: str) -> datetime | None:
    """Return the aware datetime of an RFC 3339 timestamp, or None when malformed."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_live(beat: Heartbeat, now: datetime) -> bool:
    """Whether `beat` was renewed within its ttl at `now`."""
    seen = parse_rfc3339(beat.last_seen)
    return seen is not None and (now - seen).total_seconds() <= beat.ttl


def live(beats: Iterable[Heartbeat], now: datetime) -> list[Heartbeat]:
    """Return the live heartbeats, sorted by service then instance."""
    return sorted((b for b in beats if is_live(b, now)), key=lambda b: (b.service, b.instance))


def by_service(
    beats: Iterable[Heartbeat], expected: Sequence[str] = SERVICES
) -> dict[str, list[Heartbeat]]:
    """Group heartbeats by service: every expected service first (perhaps with no
    instance), then any other service that reported, sorted by instance."""
    out: dict[str, list[Heartbeat]] = {s: [] for s in expected}
    for beat in sorted(beats, key=lambda b: (b.service, b.instance)):
        out.setdefault(beat.service, []).append(beat)
    return out


def missing(
    beats: Iterable[Heartbeat], now: datetime, expected: Sequence[str] = SERVICES
) -> list[str]:
    """Return the expected services with no live instance, in `expected` order."""
    alive = {b.service for b in live(beats, now)}
    return [s for s in expected if s not in alive]


def controller_of(kind: str) -> str | None:
    """Return the service that reconciles `kind` (any case), or None if none does."""
    return SERVICE_OF_KIND.get(kind.lower())


def serving(beats: Iterable[Heartbeat], kind: str, now: datetime) -> list[Heartbeat]:
    """Return the live instances whose runtimes reconcile `kind` (any case)."""
    k = kind.lower()
    return [b for b in live(beats, now) if k in b.kinds]
