"""What `fluxbus timeline` draws: the events of the events stream, the stored
revisions of the objects' status and the notifier's sent notifications turned
into, per object, bands of sync state over time and labelled marks.

The states:
- synced: Ready=True (or a success event);
- reconciling: Reconciling=True or Ready=Unknown (a reconcile is under way);
- out of sync: the object's source has a revision it has not applied yet (a
  Kustomization after its GitRepository stored a new artifact), or it waits on
  a dependency (Ready=False, DependencyNotReady);
- failed: Ready=False for any other reason, Stalled=True, or an error event.

Each observation holds from its time until the next one of the same object.
Event timestamps have whole seconds (Flux's format) and are rounded down, so an
event never sorts after the status its reconcile wrote.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from fluxbus_common.events import Event, Severity
from fluxbus_common.liveness import parse_rfc3339

KIND_ORDER = (
    "GitRepository",
    "Kustomization",
    "ImageRepository",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "Receiver",
    "Provider",
    "Alert",
)
"""Lanes follow the pipeline: sources, what applies them, image automation, notification."""
SUCCESS_REASONS = frozenset(
    {"Succeeded", "ReconciliationSucceeded", "NewArtifact", "ArtifactUpToDate"}
)
"""Info events that say the object is in its wanted state (Flux's reasons)."""
RECONCILE_REQUESTED = "ReconcileRequested"
"""The reason of a Receiver's event when a webhook asked for reconciles."""
DEPENDENCY_NOT_READY = "DependencyNotReady"
GARBAGE_COLLECTED = "GarbageCollectionSucceeded"
LABEL_WIDTH = 60
"""Longest label drawn beside a mark; the table of events keeps the whole message."""


class SyncState(StrEnum):
    SYNCED = "synced"
    OUT_OF_SYNC = "out of sync"
    RECONCILING = "reconciling"
    FAILED = "failed"


class MarkKind(StrEnum):
    DRIFT = "drift detected"
    NEW_REVISION = "new revision"
    PRUNED = "pruned"
    IMAGE_BUMPED = "image bumped"
    NOTIFIED = "notification sent"
    WEBHOOK = "webhook received"
    FAILED = "failed"
    EVENT = "event"


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One object of the store, as `Kind/namespace/name`."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Wanted:
    """Which objects to draw (a `--for KIND/NAME`, a namespace); None matches any."""

    kind: str | None = None
    name: str | None = None
    namespace: str | None = None

    def matches(self, obj: ObjectRef) -> bool:
        return (
            (self.kind is None or obj.kind == self.kind)
            and (self.name is None or obj.name == self.name)
            and (self.namespace is None or obj.namespace == self.namespace)
        )


@dataclass(frozen=True)
class StatusRevision:
    """One stored revision of an object's status; `status` None: the key was deleted."""

    obj: ObjectRef
    at: datetime
    status: Mapping[str, Any] | None


@dataclass(frozen=True)
class Notification:
    """A notification the notifier sent about an object (its `notify.sent` log record)."""

    obj: ObjectRef
    at: datetime
    provider: str
    alert: str = ""


@dataclass(frozen=True)
class Band:
    """`obj` was in `state` from `start` to `end`."""

    obj: ObjectRef
    start: datetime
    end: datetime
    state: SyncState


@dataclass(frozen=True)
class Mark:
    """Something that happened to `obj` at `at`: a short `label`, the whole `detail`."""

    obj: ObjectRef
    at: datetime
    kind: MarkKind
    label: str
    detail: str = ""


@dataclass(frozen=True)
class Timeline:
    """Everything drawn: the time window, the lanes, their bands and marks (by time)."""

    start: datetime
    end: datetime
    objects: tuple[ObjectRef, ...]
    bands: tuple[Band, ...]
    marks: tuple[Mark, ...]

    def bands_of(self, obj: ObjectRef) -> list[Band]:
        return [b for b in self.bands if b.obj == obj]

    def marks_of(self, obj: ObjectRef) -> list[Mark]:
        return [m for m in self.marks if m.obj == obj]


@dataclass
class _Tracker:
    """What the walk over time remembers: each Kustomization's applied revision."""

    applied: dict[ObjectRef, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Observation:
    obj: ObjectRef
    at: datetime
    state: SyncState


# -- reading one status ----------------------------------------------------------------


def _condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for c in status.get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == type_:
            return c
    return None


def state_of_status(status: Mapping[str, Any]) -> SyncState | None:
    """Return the sync state a status shows, or None when it has no Ready condition yet."""
    ready = _condition(status, "Ready")
    stalled = _condition(status, "Stalled")
    reconciling = _condition(status, "Reconciling")
    if ready is not None and ready.get("status") == "False":
        if ready.get("reason") == DEPENDENCY_NOT_READY:
            return SyncState.OUT_OF_SYNC
        return SyncState.FAILED
    if stalled is not None and stalled.get("status") == "True":
        return SyncState.FAILED
    if reconciling is not None and reconciling.get("status") == "True":
        return SyncState.RECONCILING
    if ready is None:
        return None
    return SyncState.SYNCED if ready.get("status") == "True" else SyncState.RECONCILING


# -- reading one event -----------------------------------------------------------------


def event_ref(event: Event) -> ObjectRef:
    o = event.involved_object
    return ObjectRef(o.kind, o.namespace, o.name)


def event_time(event: Event) -> datetime | None:
    return parse_rfc3339(event.timestamp)


def event_revision(event: Event) -> str | None:
    """The revision an event names (`revision`, or a `<group>/revision` metadata key)."""
    for key, value in event.metadata.items():
        if key == "revision" or key.endswith("/revision"):
            return value
    return None


def short_revision(revision: str) -> str:
    """`main@sha1:0123456789ab…` → `main@sha1:0123456`: Flux's revision, readable."""
    ref, sep, digest = revision.rpartition(":")
    return f"{ref}{sep}{digest[:7]}" if sep and len(digest) > 7 else revision


def _clip(text: str, width: int = LABEL_WIDTH) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _changes(message: str, actions: Sequence[str]) -> list[str]:
    """Lines `Kind/ns/name <action>` of a kustomize event whose action is one of `actions`."""
    return [
        line.strip() for line in message.splitlines() if line.strip().rpartition(" ")[2] in actions
    ]


def _deleted(message: str) -> list[str]:
    """The objects a kustomize event says were deleted (`Kind/ns/name`)."""
    return [line.rpartition(" ")[0] for line in _changes(message, ("deleted",))]


def _summary(lines: list[str]) -> str:
    head = lines[0]
    return head if len(lines) == 1 else f"{head} (+{len(lines) - 1})"


def classify(event: Event, applied_before: str | None) -> list[tuple[MarkKind, str]]:
    """Return the marks (kind, label) one event makes.

    `applied_before` is the revision the event's Kustomization had applied before it:
    objects created or configured again at that same revision were drifted.
    """
    kind, reason, message = event.involved_object.kind, event.reason, event.message
    if event.severity == Severity.ERROR:
        return [(MarkKind.FAILED, _clip(f"{reason}: {message}"))]
    revision = event_revision(event)
    if kind == "Kustomization" and reason == "ReconciliationSucceeded":
        marks: list[tuple[MarkKind, str]] = []
        changed = _changes(message, ("created", "configured"))
        if changed and revision is not None and revision == applied_before:
            marks.append((MarkKind.DRIFT, _clip(f"drift corrected: {_summary(changed)}")))
        elif changed:
            applied = short_revision(revision) if revision else _summary(changed)
            marks.append((MarkKind.NEW_REVISION, _clip(f"applied {applied}")))
        pruned = _deleted(message)
        if pruned:
            marks.append((MarkKind.PRUNED, _clip(f"pruned {_summary(pruned)}")))
        return marks or [(MarkKind.EVENT, _clip(reason))]
    if reason == GARBAGE_COLLECTED:
        return [(MarkKind.PRUNED, _clip(f"pruned {_summary(_deleted(message) or [message])}"))]
    if kind == "GitRepository" and reason == "NewArtifact":
        label = f"new revision {short_revision(revision)}" if revision else message
        return [(MarkKind.NEW_REVISION, _clip(label))]
    if kind == "ImagePolicy" and reason == "Succeeded":
        latest = message.partition(" resolved to ")[2].split(" ")[0]
        if "(previously " in message:
            return [(MarkKind.IMAGE_BUMPED, _clip(f"image bumped to {latest}"))]
        return [(MarkKind.EVENT, _clip(f"image {latest} selected" if latest else message))]
    if kind == "ImageUpdateAutomation" and reason == "Succeeded":
        return [(MarkKind.IMAGE_BUMPED, _clip(f"committed: {message}"))]
    if kind == "Receiver" and reason == RECONCILE_REQUESTED:
        return [(MarkKind.WEBHOOK, _clip(message))]
    return [(MarkKind.EVENT, _clip(reason))]


def state_of_event(event: Event) -> SyncState | None:
    """The state an event shows of its object (None: it says nothing about it)."""
    if event.severity == Severity.ERROR:
        return SyncState.FAILED
    if event.severity == Severity.INFO and event.reason in SUCCESS_REASONS:
        return SyncState.SYNCED
    return None


# -- object links ----------------------------------------------------------------------


def source_links(objects: Iterable[Mapping[str, Any]]) -> dict[ObjectRef, ObjectRef]:
    """Map each Kustomization (stored document) to the source it applies."""
    links: dict[ObjectRef, ObjectRef] = {}
    for doc in objects:
        if doc.get("kind") != "Kustomization":
            continue
        meta = doc.get("metadata") or {}
        ref = (doc.get("spec") or {}).get("sourceRef") or {}
        ns, name = meta.get("namespace"), meta.get("name")
        if not (ns and name and ref.get("kind") and ref.get("name")):
            continue
        links[ObjectRef("Kustomization", ns, name)] = ObjectRef(
            ref["kind"], ref.get("namespace") or ns, ref["name"]
        )
    return links


# -- the timeline ----------------------------------------------------------------------


def _lane_order(obj: ObjectRef) -> tuple[int, str, str, str]:
    rank = KIND_ORDER.index(obj.kind) if obj.kind in KIND_ORDER else len(KIND_ORDER)
    return rank, obj.kind, obj.namespace, obj.name


def build_timeline(
    events: Iterable[Event],
    statuses: Iterable[StatusRevision],
    notifications: Iterable[Notification] = (),
    *,
    until: datetime,
    since: datetime | None = None,
    wanted: Sequence[Wanted] = (),
    sources: Mapping[ObjectRef, ObjectRef] | None = None,
) -> Timeline:
    """Return the timeline of the objects `wanted` (all when empty) from `since`
    (the first thing known when None) to `until`.

    Observations before `since` still give the state a lane starts in.
    """
    links = dict(sources or {})
    consumers: dict[ObjectRef, list[ObjectRef]] = {}
    for consumer, source in links.items():
        consumers.setdefault(source, []).append(consumer)

    # One walk over time: order 0 statuses, 1 events, 2 notifications at equal times.
    items: list[tuple[datetime, int, int, object]] = []
    for i, s in enumerate(statuses):
        items.append((s.at, 0, i, s))
    for i, e in enumerate(events):
        at = event_time(e)
        if at is not None:
            items.append((at, 1, i, e))
    for i, n in enumerate(notifications):
        items.append((n.at, 2, i, n))
    items.sort(key=lambda item: (item[0], item[1], item[2]))

    tracker = _Tracker()
    observations: list[_Observation] = []
    marks: list[Mark] = []
    for at, _, _, item in items:
        if isinstance(item, StatusRevision):
            _walk_status(item, tracker, observations)
        elif isinstance(item, Event):
            _walk_event(item, at, tracker, observations, marks, consumers)
        elif isinstance(item, Notification):
            label = _clip(f"sent to {item.provider}")
            marks.append(Mark(item.obj, at, MarkKind.NOTIFIED, label, f"alert {item.alert}"))

    def keep(obj: ObjectRef) -> bool:
        return not wanted or any(w.matches(obj) for w in wanted)

    times = [o.at for o in observations] + [m.at for m in marks]
    start = since if since is not None else min(times, default=until)
    objects = sorted(
        {o.obj for o in observations if keep(o.obj)} | {m.obj for m in marks if keep(m.obj)},
        key=_lane_order,
    )
    bands: list[Band] = []
    for obj in objects:
        bands.extend(_bands([o for o in observations if o.obj == obj], start, until))
    shown = [m for m in marks if keep(m.obj) and start <= m.at <= until]
    lanes = [o for o in objects if any(b.obj == o for b in bands) or any(m.obj == o for m in shown)]
    return Timeline(start, until, tuple(lanes), tuple(bands), tuple(shown))


def _walk_status(item: StatusRevision, tracker: _Tracker, out: list[_Observation]) -> None:
    if item.status is None:
        return
    applied = item.status.get("lastAppliedRevision")
    if item.obj.kind == "Kustomization" and isinstance(applied, str) and applied:
        tracker.applied[item.obj] = applied
    state = state_of_status(item.status)
    if state is not None:
        out.append(_Observation(item.obj, item.at, state))


def _walk_event(
    event: Event,
    at: datetime,
    tracker: _Tracker,
    observations: list[_Observation],
    marks: list[Mark],
    consumers: Mapping[ObjectRef, list[ObjectRef]],
) -> None:
    obj = event_ref(event)
    revision = event_revision(event)
    detail = f"{event.reason}: {event.message}"
    for kind, label in classify(event, tracker.applied.get(obj)):
        marks.append(Mark(obj, at, kind, label, detail))
    state = state_of_event(event)
    if state is not None:
        observations.append(_Observation(obj, at, state))
    if obj.kind == "Kustomization" and event.reason == "ReconciliationSucceeded" and revision:
        tracker.applied[obj] = revision
    if event.reason == "NewArtifact" and revision:
        for consumer in consumers.get(obj, []):
            if tracker.applied.get(consumer) != revision:
                observations.append(_Observation(consumer, at, SyncState.OUT_OF_SYNC))


def _bands(observations: list[_Observation], start: datetime, end: datetime) -> list[Band]:
    """The bands of one lane: each observation holds until the next (clipped to the window)."""
    out: list[Band] = []
    for i, o in enumerate(observations):
        until = observations[i + 1].at if i + 1 < len(observations) else end
        lo, hi = max(o.at, start), min(until, end)
        if hi <= lo:
            continue
        if out and out[-1].state == o.state and out[-1].end == lo:
            out[-1] = Band(o.obj, out[-1].start, hi, o.state)
        else:
            out.append(Band(o.obj, lo, hi, o.state))
    return out
