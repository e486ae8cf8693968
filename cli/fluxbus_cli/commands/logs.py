"""`fluxbus logs`: the structured log records every service instance publishes
to the logs stream, read from one place (Flux's `flux logs`): filtered by
service, by object (`--kind`/`--name`, `-n`), by level (`--level error` shows
errors and worse), the last `--tail` records, and `-f` to follow new ones."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_common import subjects
from fluxbus_common.bus import Bus

LEVELS = ("debug", "info", "warning", "error", "critical")
"""Log levels, least severe first (`--level` shows that one and worse)."""
SHOWN_FIRST = ("timestamp", "level", "service", "instance", "event", "kind", "namespace", "name")
"""Fields printed in their own columns, not as `key=value`."""


def check_level(level: str | None) -> str | None:
    """Return the level lower-cased; raise CliError naming the valid ones."""
    if level is None:
        return None
    value = level.lower()
    if value == "warn":
        value = "warning"
    if value not in LEVELS:
        raise CliError(f'--level must be one of {", ".join(LEVELS)}, got "{level}"')
    return value


@dataclass(frozen=True)
class LogQuery:
    """Which records `fluxbus logs` shows."""

    service: str | None = None
    kind: str | None = None
    """As Flux spells it (Kustomization); matched case-insensitively."""
    name: str | None = None
    namespace: str | None = None
    level: str | None = None

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether one record passes every filter."""
        if self.service and record.get("service") != self.service:
            return False
        if self.level and _rank(record.get("level")) < LEVELS.index(self.level):
            return False
        kind, namespace, name = _object_of(record)
        if self.kind and (kind or "").lower() != self.kind.lower():
            return False
        if self.name and name != self.name:
            return False
        return not (self.namespace and namespace != self.namespace)


def _rank(level: Any) -> int:
    text = str(level or "info").lower()
    text = "warning" if text == "warn" else text
    return LEVELS.index(text) if text in LEVELS else LEVELS.index("info")


def _object_of(record: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(kind, namespace, name) a record is about: its fields, else its object `key`."""
    kind, namespace, name = record.get("kind"), record.get("namespace"), record.get("name")
    key = record.get("key")
    if not (kind and name) and isinstance(key, str):
        try:
            kind, namespace, name = subjects.split_object_key(key)
        except ValueError:
            pass
    return (
        None if kind is None else str(kind),
        None if namespace is None else str(namespace),
        None if name is None else str(name),
    )


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (not text or any(c in text for c in ' "=\n\t')) else text


def format_record(record: Mapping[str, Any]) -> str:
    """`<time> <level> <service>/<instance> <Kind/ns/name> <event> key=value…` on one line."""
    kind, namespace, name = _object_of(record)
    obj = f"{kind}/{namespace}/{name}" if kind and name else "-"
    extras = " ".join(
        f"{k}={_value(v)}"
        for k, v in record.items()
        if k not in SHOWN_FIRST and k != "key" and v is not None
    )
    head = (
        f"{record.get('timestamp', '-')} {record.get('level', 'info')!s:<7} "
        f"{record.get('service', '?')}/{record.get('instance', '?')} {obj} "
        f"{record.get('event', '')}"
    )
    return f"{head} {extras}".rstrip()


async def logs(
    bus: Bus,
    out: Output,
    query: LogQuery,
    *,
    follow: bool = False,
    tail: int | None = None,
    as_json: bool = False,
    emit: Callable[[str], None] | None = None,
) -> int:
    """Print the matching stored records (the last `tail` of them), then with
    `follow` every new one until cancelled. Returns 0."""
    print_ = emit or out.data
    show = json.dumps if as_json else format_record
    filter_subject = subjects.log_filter(query.service)
    kept: deque[dict[str, Any]] = deque(maxlen=tail if tail is not None and tail >= 0 else None)
    last = 0
    async for seq, record in bus.read_logs(filter_subject):
        last = seq
        if query.matches(record):
            kept.append(record)
    for record in kept:
        print_(show(record))
    if not follow:
        if not kept:
            out.warning("no log records found")
        return 0
    async for _, record in bus.read_logs(filter_subject, follow=True, start_seq=last + 1):
        if query.matches(record):
            print_(show(record))
    return 0
