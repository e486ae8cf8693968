"""`fluxbus timeline`: per object, its sync state over time with what happened to
it marked, read from the events stream, the stored revisions of the status
bucket and the notifier's `notify.sent` log records. Without `-o`, a text
timeline and a table of the events on stdout; with `-o FILE.png|FILE.svg`, a
picture (`fluxbus_cli.plot`, the optional `fluxbus[plot]` extra).

What is drawn is decided by `fluxbus_cli.logic.timeline`; this module reads the
bus and lays out the text.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fluxbus_cli import render
from fluxbus_cli.errors import CliError
from fluxbus_cli.logic.timeline import (
    MarkKind,
    Notification,
    ObjectRef,
    StatusRevision,
    SyncState,
    Timeline,
    Wanted,
    build_timeline,
    source_links,
)
from fluxbus_cli.render import Output
from fluxbus_common import subjects
from fluxbus_common.api import UnknownKind, resolve_kind
from fluxbus_common.bus import Bus
from fluxbus_common.duration import format_duration
from fluxbus_common.liveness import parse_rfc3339

NOTIFIER_SERVICE = "notifier"
"""The service whose `notify.sent` log records mark the notifications sent."""
SENT_RECORD = "notify.sent"
PLOT_FORMATS = (".png", ".svg")
TEXT_WIDTH = 64
"""Columns of a text lane: fits an 80-column terminal beside short object names."""
STATE_CHARS = {
    SyncState.SYNCED: "=",
    SyncState.OUT_OF_SYNC: "!",
    SyncState.RECONCILING: "~",
    SyncState.FAILED: "X",
}
MARK_CHARS = {
    MarkKind.DRIFT: "D",
    MarkKind.NEW_REVISION: "R",
    MarkKind.PRUNED: "P",
    MarkKind.IMAGE_BUMPED: "I",
    MarkKind.NOTIFIED: "N",
    MarkKind.WEBHOOK: "W",
    MarkKind.FAILED: "F",
    MarkKind.EVENT: ".",
}
MARK_NUDGE = 2
"""Columns a mark may move right to stay readable beside a mark in the same column."""
TABLE_HEADERS = ("TIME", "OBJECT", "WHAT", "DETAIL")


@dataclass(frozen=True)
class TimelineRequest:
    """What the user asked for: which objects, how far back, where to draw."""

    wanted: tuple[Wanted, ...]
    since: float | None = None
    """Seconds back from now; None: everything stored."""
    output: Path | None = None


def check_output(path: Path | None) -> Path | None:
    """Return `path` when it names a PNG or SVG file; raise CliError otherwise."""
    if path is not None and path.suffix.lower() not in PLOT_FORMATS:
        raise CliError(f'-o must name a .png or .svg file, got "{path}"')
    return path


def _ref_of_key(key: str) -> ObjectRef | None:
    """The object a status key names, with its Kind spelled as Flux does."""
    try:
        kind, namespace, name = subjects.split_object_key(key)
        return ObjectRef(resolve_kind(kind).kind, namespace, name)
    except (ValueError, UnknownKind):
        return None


async def _statuses(bus: Bus) -> list[StatusRevision]:
    out: list[StatusRevision] = []
    for rev in await bus.status_history():
        ref = _ref_of_key(rev.key)
        if ref is not None:
            out.append(StatusRevision(ref, rev.created, rev.value))
    return out


def notification_of(record: dict[str, Any]) -> Notification | None:
    """The notification a notifier log record tells was sent, or None for another record."""
    if record.get("event") != SENT_RECORD:
        return None
    at = parse_rfc3339(str(record.get("timestamp") or ""))
    kind, ns, name = record.get("kind"), record.get("namespace"), record.get("name")
    if at is None or not (kind and ns and name):
        return None
    return Notification(
        ObjectRef(str(kind), str(ns), str(name)),
        at,
        str(record.get("provider") or "?"),
        str(record.get("alert") or ""),
    )


async def _notifications(bus: Bus) -> list[Notification]:
    out: list[Notification] = []
    async for _, record in bus.read_logs(subjects.log_subject(NOTIFIER_SERVICE, "info")):
        sent = notification_of(record)
        if sent is not None:
            out.append(sent)
    return out


async def read_timeline(bus: Bus, request: TimelineRequest, now: datetime) -> Timeline:
    """Read the bus and return the timeline the request asks for."""
    events = await bus.recent_events()
    statuses = await _statuses(bus)
    notifications = await _notifications(bus)
    links = source_links(e.value for e in await bus.list_objects("kustomization"))
    since = None if request.since is None else now - timedelta(seconds=request.since)
    return build_timeline(
        events,
        statuses,
        notifications,
        until=now,
        since=since,
        wanted=request.wanted,
        sources=links,
    )


async def timeline(
    bus: Bus, out: Output, request: TimelineRequest, now: datetime | None = None
) -> int:
    """Print the text timeline, or write the picture `request.output` names."""
    tl = await read_timeline(bus, request, now or datetime.now(UTC))
    if not tl.objects:
        out.warning("nothing to draw: no events or status found for the objects asked for")
    if request.output is None:
        out.data(render_text(tl))
        return 0
    try:
        plot = importlib.import_module("fluxbus_cli.plot")
    except ModuleNotFoundError as e:
        if e.name is None or not e.name.startswith("matplotlib"):
            raise
        raise CliError("drawing a picture needs matplotlib: pip install 'fluxbus[plot]'") from None
    path = request.output
    try:
        await asyncio.to_thread(plot.write_timeline, tl, path)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}") from None
    out.success(f"timeline of {len(tl.objects)} objects written to {path.resolve()}")
    return 0


# -- text ------------------------------------------------------------------------------


def _clock(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _column(at: datetime, tl: Timeline, width: int) -> int:
    span = (tl.end - tl.start).total_seconds()
    if span <= 0:
        return 0
    offset = (at - tl.start).total_seconds() / span
    return min(width - 1, max(0, int(offset * width)))


def lane_text(tl: Timeline, obj: ObjectRef, width: int = TEXT_WIDTH) -> tuple[str, str]:
    """The two text rows of one lane: its states, and its marks under them."""
    states = [" "] * width
    for band in tl.bands_of(obj):
        lo = _column(band.start, tl, width)
        hi = width if band.end >= tl.end else _column(band.end, tl, width)
        for col in range(lo, max(hi, lo + 1)):
            states[col] = STATE_CHARS[band.state]
    marks = [" "] * width
    plain = MARK_CHARS[MarkKind.EVENT]
    for mark in tl.marks_of(obj):
        col = _column(mark.at, tl, width)
        char = MARK_CHARS[mark.kind]
        if char == plain and marks[col] != " ":
            continue  # a plain event never hides a labelled mark
        # A mark close to another moves right by up to MARK_NUDGE columns, then shares one.
        free = [c for c in range(col, min(width, col + MARK_NUDGE + 1)) if marks[c] in (" ", plain)]
        if free:
            marks[free[0]] = char
        elif marks[col] != char:
            marks[col] = "*"
    return "".join(states).rstrip(), "".join(marks).rstrip()


def render_text(tl: Timeline, width: int = TEXT_WIDTH) -> str:
    """The whole text timeline: a header, the legend, one lane per object, the table."""
    span = tl.end - tl.start
    lines = [
        f"timeline {_clock(tl.start)} → {_clock(tl.end)} ({format_duration(round(span.total_seconds()))})",
        "states: " + "  ".join(f"{c} {s}" for s, c in STATE_CHARS.items()),
        "marks:  " + "  ".join(f"{c} {k}" for k, c in MARK_CHARS.items()) + "  * several",
        "",
    ]
    names = [str(o) for o in tl.objects]
    pad = max((len(n) for n in names), default=0)
    for obj, name in zip(tl.objects, names, strict=True):
        states, marks = lane_text(tl, obj, width)
        lines.append(f"{name.ljust(pad)} |{states.ljust(width)}|")
        if marks:
            lines.append(f"{''.ljust(pad)}  {marks}")
    rows = [[_clock(m.at), str(m.obj), str(m.kind), m.label] for m in tl.marks]
    if rows:
        lines += ["", render.format_table(TABLE_HEADERS, rows)]
    return "\n".join(lines)
