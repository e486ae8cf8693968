"""Output: tables like `flux get`/`kubectl get`, JSON and YAML documents, and the
`Output` sink every command writes to (data on stdout, progress on stderr).

The formatting functions are pure; `Output` is the only place that prints.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape

from fluxbus_common import keys
from fluxbus_common.revisions import revision_of as revision_of  # commands use render.revision_of

REDACTED = "<redacted>"
"""What `get secrets -o json|yaml` shows instead of a value."""

COLUMN_GAP = 3
"""Spaces between table columns, as kubectl's tabwriter pads them."""


# -- documents -------------------------------------------------------------------------


def list_document(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Wrap documents into the `kind: List` kubectl prints for several objects."""
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


def to_json(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)


class _Dumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings as block literals (patches stay readable)."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(doc: Any) -> str:
    """Return one YAML document (keys in the document's order)."""
    return yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )


def to_yaml_stream(docs: Sequence[Any]) -> str:
    """Return a multi-document YAML stream, each document opened by `---`."""
    return "".join(f"---\n{to_yaml(d)}" for d in docs)


def redact_secret(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return a Secret document whose `data`/`stringData` values are replaced by REDACTED."""
    out = dict(doc)
    for field in ("data", "stringData"):
        values = out.get(field)
        if isinstance(values, Mapping):
            out[field] = dict.fromkeys(values, REDACTED)
    return out


# -- tables ----------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a left-aligned table with kubectl's spacing (no borders, no wrapping)."""
    widths = column_widths(headers, rows)
    return "\n".join(format_row(r, widths) for r in [headers, *rows])


def format_row(row: Sequence[str], widths: Sequence[int]) -> str:
    """Return one table line with the given column widths (the last column unpadded)."""
    cells = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)]
    return (" " * COLUMN_GAP).join([*cells, row[-1]]).rstrip()


def column_widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """Return the width of each column: its longest cell."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    return widths


def parse_time(value: str | None) -> datetime | None:
    """Parse an RFC 3339 timestamp (`Z` or offset, optional fraction of any length)."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Python takes at most 6 fractional digits; Go writes up to 9
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """Return kubectl's short age (`45s`, `12m`, `5h`, `3d`) of a timestamp, `-` if unknown."""
    then = parse_time(timestamp)
    if then is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def ready_condition(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the Ready condition of a document's status, or None."""
    for cond in (doc.get("status") or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return dict(cond)
    return None


TOOLKIT_HEADERS = ("NAME", "READY", "STATUS", "REVISION", "SUSPENDED", "AGE")
SECRET_HEADERS = ("NAME", "TYPE", "DATA", "AGE")
CONFIGMAP_HEADERS = ("NAME", "DATA", "AGE")
EVENT_HEADERS = ("TIME", "TYPE", "REASON", "OBJECT", "MESSAGE")


def toolkit_row(doc: Mapping[str, Any], now: datetime | None = None) -> list[str]:
    """NAME READY STATUS REVISION SUSPENDED AGE of a toolkit object (status merged in)."""
    meta = doc.get("metadata") or {}
    status = doc.get("status") or {}
    ready = ready_condition(doc)
    if meta.get("deletionTimestamp"):
        ready_text, message = "False", "terminating"
    elif ready is None:
        ready_text, message = "Unknown", "waiting to be reconciled"
    else:
        ready_text, message = str(ready.get("status", "Unknown")), str(ready.get("message", ""))
    suspended = bool((doc.get("spec") or {}).get("suspend"))
    reason = (meta.get("annotations") or {}).get(keys.SUSPENDED_REASON_ANNOTATION)
    if suspended and reason:
        message = f"suspended: {reason}"
    return [
        str(meta.get("name", "")),
        ready_text,
        " ".join(message.split()),  # one line per object
        revision_of(status),
        "True" if suspended else "False",
        age(meta.get("creationTimestamp"), now),
    ]


NOTIFICATION_HEADERS: dict[str, tuple[str, ...]] = {
    "Receiver": ("NAME", "SUSPENDED", "READY", "MESSAGE", "AGE"),
    "Alert": ("NAME", "SUSPENDED", "READY", "MESSAGE", "AGE"),
    "Provider": ("NAME", "READY", "MESSAGE", "AGE"),
}
"""`flux get receivers|alerts|alert-providers` columns (plus AGE, as every fluxbus table)."""
NOTIFICATION_READY_DEFAULTS = {"Alert": "Alert is Ready", "Provider": "Provider is Ready"}
"""What `flux get` says of v1beta3 Alerts and Providers, which have no status in Flux;
fluxbus shows their Ready condition once the notifier wrote one."""


def notification_row(doc: Mapping[str, Any], now: datetime | None = None) -> list[str]:
    """A row under NOTIFICATION_HEADERS[kind]; a Receiver's message carries its webhook path
    ("Receiver initialized for path: /hook/…"), as in `flux get receivers`."""
    kind = str(doc.get("kind", ""))
    meta = doc.get("metadata") or {}
    ready = ready_condition(doc)
    if meta.get("deletionTimestamp"):
        ready_text, message = "False", "terminating"
    elif ready is not None:
        ready_text, message = str(ready.get("status", "Unknown")), str(ready.get("message", ""))
    elif kind in NOTIFICATION_READY_DEFAULTS:
        ready_text, message = "True", NOTIFICATION_READY_DEFAULTS[kind]
    else:
        ready_text, message = "Unknown", "waiting to be reconciled"
    suspended = "True" if (doc.get("spec") or {}).get("suspend") else "False"
    cells = {
        "NAME": str(meta.get("name", "")),
        "SUSPENDED": suspended,
        "READY": ready_text,
        "MESSAGE": " ".join(message.split()),
        "AGE": age(meta.get("creationTimestamp"), now),
    }
    return [cells[h] for h in NOTIFICATION_HEADERS.get(kind, ())]


HELM_HEADERS: dict[str, tuple[str, ...]] = {
    kind: ("NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE", "AGE")
    for kind in ("HelmRelease", "HelmRepository", "HelmChart")
}
"""`flux get helmreleases` / `sources helm` / `sources chart` columns (plus AGE)."""
OCI_HELM_REPOSITORY_READY = "Helm repository is Ready"
"""What `flux get sources helm` says of an OCI HelmRepository that has no Ready condition."""
_LONG_HEX = re.compile(r"\b[a-f0-9]{40,128}\b")


def truncate_hex(text: str) -> str:
    """Shorten every 40-128 hex digit run (a digest, a commit) to 8 digits, as `flux get`."""
    return _LONG_HEX.sub(lambda m: m.group(0)[:8], text)


def helm_release_revision(status: Mapping[str, Any]) -> str:
    """The chart version of the newest release in `status.history`, else the last
    attempted revision (what `flux get helmreleases` shows)."""
    history = status.get("history") or []
    if history and isinstance(history[0], Mapping) and history[0].get("chartVersion"):
        return str(history[0]["chartVersion"])
    return str(status.get("lastAttemptedRevision") or "")


def helm_row(kind: str, doc: Mapping[str, Any], now: datetime | None = None) -> list[str]:
    """A row under HELM_HEADERS[kind]: a HelmRelease shows its chart version, a
    HelmRepository its index digest (hex shortened), a HelmChart its chart version."""
    name, ready, message, revision, suspended, created = toolkit_row(doc, now)
    status = doc.get("status") or {}
    spec = doc.get("spec") or {}
    if kind == "HelmRelease":
        revision = helm_release_revision(status)
    elif kind == "HelmRepository":
        revision = truncate_hex(revision)
        message = truncate_hex(message)
        if spec.get("type") == "oci" and ready_condition(doc) is None:
            ready, message = "True", OCI_HELM_REPOSITORY_READY
    else:
        message = truncate_hex(message)  # the revision is a SemVer: kept whole
    return [name, revision, suspended, ready, message, created]


def _helm_source(doc: Mapping[str, Any]) -> str:
    """`Kind/namespace/name` of a HelmRelease's chart source (`flux get hr --show-source`)."""
    spec = doc.get("spec") or {}
    own_ns = str((doc.get("metadata") or {}).get("namespace", ""))
    ref = spec.get("chartRef") or _field(spec, "chart", "spec", "sourceRef")
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return "-"
    return f"{ref.get('kind', '')}/{ref.get('namespace') or own_ns}/{ref['name']}"


def _data_count(doc: Mapping[str, Any], *fields: str) -> int:
    keys: set[str] = set()
    for field in fields:
        keys.update((doc.get(field) or {}).keys())
    return len(keys)


IMAGE_HEADERS: dict[str, tuple[str, ...]] = {
    "ImageRepository": ("NAME", "LAST SCAN", "TAGS", "SUSPENDED", "READY", "MESSAGE", "AGE"),
    "ImagePolicy": ("NAME", "LATEST IMAGE", "READY", "MESSAGE", "AGE"),
    "ImageUpdateAutomation": (
        "NAME",
        "LAST RUN",
        "LAST PUSH",
        "SUSPENDED",
        "READY",
        "MESSAGE",
        "AGE",
    ),
}
"""`flux get images repository|policy|update`'s columns (plus the tag count, the last
pushed commit and AGE)."""


def image_row(kind: str, doc: Mapping[str, Any], now: datetime | None = None) -> list[str]:
    """The row of an image kind under `IMAGE_HEADERS[kind]`."""
    name, ready, message, _revision, suspended, created = toolkit_row(doc, now)
    status = doc.get("status") or {}
    if kind == "ImageRepository":
        scan = status.get("lastScanResult") or {}
        tags = str(scan["tagCount"]) if "tagCount" in scan else "-"
        return [name, str(scan.get("scanTime") or "-"), tags, suspended, ready, message, created]
    if kind == "ImagePolicy":
        latest = status.get("latestRef") or {}
        image = "-"
        if latest.get("name"):
            image = f"{latest['name']}:{latest.get('tag', '')}"
            if latest.get("digest"):
                image += f"@{latest['digest']}"
        return [name, image, ready, message, created]
    push = str(status.get("lastPushCommit") or "")[:7] or "-"
    last_run = str(status.get("lastAutomationRunTime") or "-")
    return [name, last_run, push, suspended, ready, message, created]


def _source_ref(ref: Any) -> str:
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return "-"
    where = f"{ref['namespace']}/" if ref.get("namespace") else ""
    return f"{ref.get('kind', '')}/{where}{ref['name']}"


def _git_ref(ref: Any) -> str:
    if not isinstance(ref, Mapping):
        return "-"
    parts = [f"{k} {ref[k]}" for k in ("branch", "tag", "semver", "name", "commit") if ref.get(k)]
    return ", ".join(parts) or "-"


def _field(doc: Mapping[str, Any], *path: str) -> Any:
    value: Any = doc
    for step in path:
        value = value.get(step) if isinstance(value, Mapping) else None
    return value


WIDE_COLUMNS: dict[str, tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...]] = {
    "GitRepository": (
        ("URL", lambda d: str(_field(d, "spec", "url") or "-")),
        ("REF", lambda d: _git_ref(_field(d, "spec", "ref"))),
        ("INTERVAL", lambda d: str(_field(d, "spec", "interval") or "-")),
    ),
    "Kustomization": (
        ("SOURCE", lambda d: _source_ref(_field(d, "spec", "sourceRef"))),
        ("PATH", lambda d: str(_field(d, "spec", "path") or "./")),
        ("PRUNE", lambda d: str(bool(_field(d, "spec", "prune")))),
        ("TARGET NAMESPACE", lambda d: str(_field(d, "spec", "targetNamespace") or "-")),
        ("INTERVAL", lambda d: str(_field(d, "spec", "interval") or "-")),
    ),
    "ImageRepository": (
        ("IMAGE", lambda d: str(_field(d, "spec", "image") or "-")),
        ("INTERVAL", lambda d: str(_field(d, "spec", "interval") or "-")),
    ),
    "ImagePolicy": (
        ("IMAGE REPOSITORY", lambda d: str(_field(d, "spec", "imageRepositoryRef", "name") or "-")),
    ),
    "ImageUpdateAutomation": (
        ("SOURCE", lambda d: _source_ref(_field(d, "spec", "sourceRef"))),
        ("INTERVAL", lambda d: str(_field(d, "spec", "interval") or "-")),
    ),
    "HelmRelease": (
        ("SOURCE", _helm_source),
        ("CHART", lambda d: str(_field(d, "spec", "chart", "spec", "chart") or "-")),
        ("TARGET NAMESPACE", lambda d: str(_field(d, "spec", "targetNamespace") or "-")),
        ("INTERVAL", lambda d: str(_field(d, "spec", "interval") or "-")),
    ),
    "HelmRepository": (
        ("URL", lambda d: str(_field(d, "spec", "url") or "-")),
        ("INTERVAL", lambda d: str(_field(d, "spec", "interval") or "-")),
    ),
    "HelmChart": (
        ("CHART", lambda d: str(_field(d, "spec", "chart") or "-")),
        ("VERSION", lambda d: str(_field(d, "spec", "version") or "*")),
        ("SOURCE", lambda d: _source_ref(_field(d, "spec", "sourceRef"))),
        ("INTERVAL", lambda d: str(_field(d, "spec", "interval") or "-")),
    ),
    "Provider": (("TYPE", lambda d: str(_field(d, "spec", "type") or "-")),),
    "Alert": (("PROVIDER", lambda d: str(_field(d, "spec", "providerRef", "name") or "-")),),
    "Receiver": (("TYPE", lambda d: str(_field(d, "spec", "type") or "-")),),
}
"""`get -o wide`: the spec fields that say where an object comes from, appended
to its kind's columns (kubectl's wide output adds columns, never removes one)."""


def wide_headers(kind: str) -> list[str]:
    return [header for header, _ in WIDE_COLUMNS.get(kind, ())]


def wide_cells(kind: str, doc: Mapping[str, Any]) -> list[str]:
    return [cell(doc) for _, cell in WIDE_COLUMNS.get(kind, ())]


def secret_row(doc: Mapping[str, Any], now: datetime | None = None) -> list[str]:
    """NAME TYPE DATA AGE of a Secret; never a value."""
    meta = doc.get("metadata") or {}
    return [
        str(meta.get("name", "")),
        str(doc.get("type") or "Opaque"),
        str(_data_count(doc, "data", "stringData")),
        age(meta.get("creationTimestamp"), now),
    ]


def configmap_row(doc: Mapping[str, Any], now: datetime | None = None) -> list[str]:
    meta = doc.get("metadata") or {}
    return [
        str(meta.get("name", "")),
        str(_data_count(doc, "data", "binaryData")),
        age(meta.get("creationTimestamp"), now),
    ]


def event_row(event: Mapping[str, Any]) -> list[str]:
    """TIME TYPE REASON OBJECT MESSAGE of a Flux-schema event (dumped by alias)."""
    obj = event.get("involvedObject") or {}
    return [
        str(event.get("timestamp", "")),
        "Warning" if event.get("severity") == "error" else "Normal",
        str(event.get("reason", "")),
        f"{obj.get('kind', '')}/{obj.get('name', '')}",
        " ".join(str(event.get("message", "")).split()),
    ]


# -- the sink --------------------------------------------------------------------------


class Output:
    """Where commands write: `data` to stdout (pipeable), progress and outcomes to stderr.

    Consoles are created per command so test runners that swap sys.stdout see the output.
    """

    def __init__(self) -> None:
        self._out = Console(soft_wrap=True, highlight=False, markup=False, emoji=False)
        self._err = Console(stderr=True, soft_wrap=True, highlight=False, emoji=False)

    def data(self, text: str) -> None:
        """Print a result (table, JSON, YAML, `kind/ns/name created`) on stdout."""
        self._out.print(text.rstrip("\n"), markup=False)

    def step(self, message: str) -> None:
        self._err.print(f"[blue]►[/] {_escape(message)}")

    def waiting(self, message: str) -> None:
        self._err.print(f"[yellow]◎[/] {_escape(message)}")

    def success(self, message: str) -> None:
        self._err.print(f"[green]✔[/] {_escape(message)}")

    def failure(self, message: str) -> None:
        self._err.print(f"[red]✗[/] {_escape(message)}")

    def warning(self, message: str) -> None:
        self._err.print(f"[yellow]⚠[/] {_escape(message)}")

    @property
    def interactive(self) -> bool:
        """Whether progress goes to a terminal (a spinner) rather than a log (lines)."""
        return bool(self._err.is_terminal)

    @contextlib.contextmanager
    def spinner(self, message: str) -> Iterator[Callable[[str], None]]:
        """Show a spinner while waiting on a terminal; print one line otherwise.

        Yields `update(text)`: a new spinner text, or one more line."""
        if self._err.is_terminal:
            with self._err.status(_escape(message)) as status:
                yield lambda text: status.update(_escape(text))
        else:
            self.waiting(message)
            yield self.waiting


def _escape(text: str) -> str:
    """Print user text literally (a message may contain `[brackets]`)."""
    return escape(text)
