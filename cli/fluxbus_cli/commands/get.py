"""`fluxbus get` (tables, JSON, YAML, watch) and `fluxbus export` (clean, re-appliable YAML)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fluxbus_cli import render, store
from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_cli.runner import Format
from fluxbus_common import subjects
from fluxbus_common.api import KindInfo
from fluxbus_common.bus import Bus

EXPORTED_METADATA = ("name", "namespace", "labels", "annotations")
"""What `export` keeps of metadata: what a user writes, nothing the store adds."""
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def _headers(info: KindInfo, all_namespaces: bool, wide: bool = False) -> list[str]:
    if info.kind == "Secret":
        headers = list(render.SECRET_HEADERS)
    elif info.kind == "ConfigMap":
        headers = list(render.CONFIGMAP_HEADERS)
    elif info.kind in render.IMAGE_HEADERS:
        headers = list(render.IMAGE_HEADERS[info.kind])
    elif info.kind in render.NOTIFICATION_HEADERS:
        headers = list(render.NOTIFICATION_HEADERS[info.kind])
    elif info.kind in render.HELM_HEADERS:
        headers = list(render.HELM_HEADERS[info.kind])
    else:
        headers = list(render.TOOLKIT_HEADERS)
    if wide:
        headers += render.wide_headers(info.kind)
    return ["NAMESPACE", *headers] if all_namespaces else headers


def _row(
    info: KindInfo, doc: dict[str, Any], all_namespaces: bool, prefix: str, wide: bool = False
) -> list[str]:
    if info.kind == "Secret":
        row = render.secret_row(doc)
    elif info.kind == "ConfigMap":
        row = render.configmap_row(doc)
    elif info.kind in render.IMAGE_HEADERS:
        row = render.image_row(info.kind, doc)
    elif info.kind in render.NOTIFICATION_HEADERS:
        row = render.notification_row(doc)
    elif info.kind in render.HELM_HEADERS:
        row = render.helm_row(info.kind, doc)
    else:
        row = render.toolkit_row(doc)
    if wide:
        row += render.wide_cells(info.kind, doc)
    row[0] = f"{prefix}{row[0]}"
    if all_namespaces:
        row.insert(0, str((doc.get("metadata") or {}).get("namespace", "")))
    return row


def shown(info: KindInfo, doc: dict[str, Any]) -> dict[str, Any]:
    """The document as `get -o json|yaml` shows it: Secrets redacted."""
    return render.redact_secret(doc) if info.kind == "Secret" else doc


async def _collect(
    bus: Bus, infos: Sequence[KindInfo], namespace: str | None, name: str | None
) -> list[tuple[KindInfo, list[dict[str, Any]]]]:
    found: list[tuple[KindInfo, list[dict[str, Any]]]] = []
    for info in infos:
        if name is not None:
            assert namespace is not None
            doc = await store.get_doc(bus, info, namespace, name)
            if doc is None:
                raise store.not_found(info, namespace, name)
            found.append((info, [doc]))
        else:
            found.append((info, await store.list_docs(bus, info, namespace)))
    return found


def _where(namespace: str | None) -> str:
    return "any namespace" if namespace is None else f"{namespace} namespace"


async def get(
    bus: Bus,
    out: Output,
    infos: Sequence[KindInfo],
    namespace: str | None,
    name: str | None = None,
    fmt: Format = "table",
) -> int:
    """Print objects of one or more kinds (`namespace=None`: every namespace)."""
    found = await _collect(bus, infos, namespace, name)
    all_namespaces = namespace is None
    if fmt in ("json", "yaml"):
        docs = [shown(info, d) for info, ds in found for d in ds]
        doc: Any = docs[0] if name is not None else render.list_document(docs)
        out.data(render.to_json(doc) if fmt == "json" else render.to_yaml(doc))
        return 0
    several = len(infos) > 1
    tables = []
    for info, docs in found:
        if not docs:
            continue
        prefix = f"{info.singular}/" if several else ""
        wide = fmt == "wide"
        rows = [_row(info, d, all_namespaces, prefix, wide) for d in docs]
        tables.append(render.format_table(_headers(info, all_namespaces, wide), rows))
    if not tables:
        kinds = "objects" if several else f"{infos[0].kind} objects"
        out.warning(f"no {kinds} found in {_where(namespace)}")
        return 0
    out.data("\n\n".join(tables))
    return 0


async def _merged_changes(
    bus: Bus, info: KindInfo
) -> AsyncIterator[tuple[str, str, dict[str, Any] | None]]:
    """Yield ("objects"|"status", key, value) from both watches of a kind, as they come."""
    queue: asyncio.Queue[tuple[str, str, dict[str, Any] | None]] = asyncio.Queue()

    async def pump(which: str) -> None:
        source = bus.watch_objects(info.kind) if which == "objects" else bus.watch_status(info.kind)
        async for change in source:
            queue.put_nowait((which, change.key, change.value))

    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(pump(which), name=f"watch-{info.kind}-{which}")
            for which in ("objects", "status")
        ]
        try:
            while True:
                yield await queue.get()
        finally:
            for task in tasks:
                task.cancel()


async def watch(
    bus: Bus,
    out: Output,
    info: KindInfo,
    namespace: str | None,
    name: str | None = None,
    fmt: Format = "table",
    *,
    emit: Callable[[str], None] | None = None,
) -> int:
    """Print the current objects, then every change, until cancelled (Ctrl-C).

    The watches replay what was listed first; the listed objects and statuses
    seed what is known, so the replay prints nothing, and an object that has a
    status never shows a transient "Unknown" row."""
    if info.store == "secrets":
        raise CliError(f"--watch is not supported for {info.plural}")
    print_ = emit or out.data
    all_namespaces = namespace is None
    table, wide = fmt in ("table", "wide"), fmt == "wide"
    headers = _headers(info, all_namespaces, wide)
    current = (await _collect(bus, [info], namespace, name))[0][1]
    objects: dict[str, dict[str, Any]] = {}
    statuses: dict[str, dict[str, Any]] = {}
    last: dict[str, Any] = {}
    widths: list[int] = []

    def view(doc: dict[str, Any]) -> Any:
        return _row(info, doc, all_namespaces, "", wide) if table else doc

    def show(doc: dict[str, Any]) -> None:
        if table:
            print_(render.format_row(view(doc), widths))
        else:
            print_(render.to_json(doc) if fmt == "json" else f"---\n{render.to_yaml(doc)}")

    for doc in current:
        meta = doc.get("metadata") or {}
        key = subjects.object_key(info.kind, meta.get("namespace", ""), meta.get("name", ""))
        objects[key] = {k: v for k, v in doc.items() if k != "status"}
        if doc.get("status"):
            statuses[key] = doc["status"]
        last[key] = view(doc)
    if table:
        widths = render.column_widths(headers, list(last.values()))
        print_(render.format_row(headers, widths))
    for doc in current:
        show(doc)

    async for which, key, value in _merged_changes(bus, info):
        _, ns, obj_name = subjects.split_object_key(key)
        if (namespace is not None and ns != namespace) or (name is not None and obj_name != name):
            continue
        target = objects if which == "objects" else statuses
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
        if key not in objects:
            gone = last.pop(key, None) if which == "objects" else None
            if gone is not None and table:
                row = list(gone)
                row[headers.index("STATUS" if "STATUS" in headers else "MESSAGE")] = "deleted"
                print_(render.format_row(row, widths))
            continue
        doc = {**objects[key]}
        if key in statuses:
            doc["status"] = statuses[key]
        if last.get(key) == view(doc):
            continue
        last[key] = view(doc)
        show(doc)
    return 0


def clean(doc: dict[str, Any]) -> dict[str, Any]:
    """Return a document as a user would write it: no status and no store-managed metadata."""
    meta = doc.get("metadata") or {}
    clean_meta: dict[str, Any] = {}
    for field in EXPORTED_METADATA:
        value = meta.get(field)
        if field == "annotations" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in DROPPED_ANNOTATIONS}
        if value:
            clean_meta[field] = value
    out: dict[str, Any] = {"apiVersion": doc.get("apiVersion"), "kind": doc.get("kind")}
    out["metadata"] = clean_meta
    for field, value in doc.items():
        if field not in ("apiVersion", "kind", "metadata", "status"):
            out[field] = value
    return out


async def export(
    bus: Bus, out: Output, infos: Sequence[KindInfo], namespace: str | None, name: str | None
) -> int:
    """Print the objects as multi-document YAML that `fluxbus apply -f -` takes back."""
    if any(info.kind == "Secret" for info in infos):
        raise CliError(
            "Secrets are not exported: their values are never printed "
            "(create them again with `fluxbus create secret ... --export`)"
        )
    found = await _collect(bus, infos, namespace, name)
    docs = [clean(d) for _, ds in found for d in ds]
    if not docs:
        out.warning(f"no objects found in {_where(namespace)}")
        return 0
    out.data(render.to_yaml_stream(docs))
    return 0
