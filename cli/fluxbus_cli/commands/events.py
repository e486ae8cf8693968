"""`fluxbus events`: Flux-schema events from the events stream, as a table,
filtered by namespace or by one object; `--watch` follows new ones."""

from __future__ import annotations

from collections.abc import Callable

from fluxbus_cli import render
from fluxbus_cli.render import Output
from fluxbus_common import subjects
from fluxbus_common.api import KindInfo
from fluxbus_common.bus import Bus
from fluxbus_common.events import Event

FOLLOW_WIDTHS = (len("2006-01-02T15:04:05Z"), len("Warning"), 24, 32, 0)
"""Column widths of `events --watch` (rows print as they come, so they cannot be measured):
a timestamp, the longer TYPE, and room for the usual reasons and `Kind/name`s."""
FOLLOW_NAMESPACE_WIDTH = 16


def event_filter(
    namespace: str | None, target: tuple[KindInfo, str] | None
) -> tuple[str, Callable[[Event], bool]]:
    """Return the stream subject filter and the exact match for the events wanted.

    Names may contain dots (several subject tokens), so the subject narrows and
    the predicate decides.
    """
    if target is not None:
        info, name = target
        ns = namespace or "*"
        subject = (
            subjects.event_subject(info.kind, ns, name)
            if namespace is not None
            else f"{subjects.EVENTS_PREFIX}.{info.kind.lower()}.*.>"
        )

        def match_object(e: Event) -> bool:
            o = e.involved_object
            return (
                o.kind == info.kind
                and o.name == name
                and (namespace is None or o.namespace == namespace)
            )

        return subject, match_object
    if namespace is not None:
        return f"{subjects.EVENTS_PREFIX}.*.{namespace}.>", (
            lambda e: e.involved_object.namespace == namespace
        )
    return subjects.EVENTS_SUBJECTS, lambda e: True


def _row(event: Event, all_namespaces: bool) -> list[str]:
    row = render.event_row(event.model_dump(by_alias=True, mode="json"))
    if all_namespaces:
        row.insert(0, event.involved_object.namespace)
    return row


def _headers(all_namespaces: bool) -> list[str]:
    headers = list(render.EVENT_HEADERS)
    return ["NAMESPACE", *headers] if all_namespaces else headers


async def events(
    bus: Bus,
    out: Output,
    namespace: str | None,
    target: tuple[KindInfo, str] | None = None,
) -> int:
    """Print the stored events (oldest first) that match."""
    subject, match = event_filter(namespace, target)
    found = [e for e in await bus.recent_events(subject) if match(e)]
    if not found:
        where = "any namespace" if namespace is None else f"{namespace} namespace"
        out.warning(f"no events found in {where}")
        return 0
    all_ns = namespace is None
    out.data(render.format_table(_headers(all_ns), [_row(e, all_ns) for e in found]))
    return 0


async def follow(
    bus: Bus,
    out: Output,
    namespace: str | None,
    target: tuple[KindInfo, str] | None = None,
    *,
    emit: Callable[[str], None] | None = None,
) -> int:
    """Print every stored event that matches, then new ones as they arrive, until cancelled."""
    print_ = emit or out.data
    subject, match = event_filter(namespace, target)
    all_ns = namespace is None
    headers = _headers(all_ns)
    widths = list(FOLLOW_WIDTHS)
    if all_ns:
        widths.insert(0, FOLLOW_NAMESPACE_WIDTH)
    print_(render.format_row(headers, widths))
    async for delivery in bus.events(filter_subject=subject, deliver_all=True):
        await delivery.ack()
        if match(delivery.event):
            print_(render.format_row(_row(delivery.event, all_ns), widths))
    return 0
