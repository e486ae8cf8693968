"""Server-side printing: the `meta.k8s.io/v1 Table` kubectl asks `get` for.

Columns follow kubectl's familiar ones for common kinds, a CRD's
additionalPrinterColumns for custom resources, and Name/Age otherwise.

Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fluxbus_common.selectors import selector_string

from .resources import ResourceType

Row = Callable[[dict[str, Any]], list[Any]]


def human_duration(seconds: float) -> str:
    """kubectl's short age form: 5s, 2m3s, 10m, 3h4m, 2d, 1y."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    return f"{h // (24 * 365)}y"


def age(obj: dict[str, Any]) -> str:
    ts = obj["metadata"].get("creationTimestamp")
    if not ts:
        return "<unknown>"
    created = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return human_duration((dt.datetime.now(dt.UTC) - created).total_seconds())


def _st(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status") or {}


def _sp(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("spec") or {}


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return ((_sp(obj).get("template") or {}).get("spec") or {}).get("containers") or []


def _ports(svc: dict[str, Any]) -> str:
    out = []
    for p in _sp(svc).get("ports") or []:
        s = f"{p.get('port')}"
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        out.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


_ACCESS = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def _pod_phase(o: dict[str, Any]) -> str:
    for c in _st(o).get("containerStatuses") or []:
        state = c.get("state") or {}
        for st in (state.get("waiting"), state.get("terminated")):
            if st and st.get("reason"):
                return str(st["reason"])
    return str(_st(o).get("phase", "Pending"))


def _col(name: str, typ: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": typ, "format": fmt, "description": name, "priority": priority}


NAME = _col("Name", fmt="name")
AGE = _col("Age", "date")

BUILTIN: dict[str, tuple[list[dict[str, Any]], Row]] = {
    "Namespace": ([NAME, _col("Status"), AGE], lambda o: [_st(o).get("phase", "Active")]),
    "ConfigMap": (
        [NAME, _col("Data", "integer"), AGE],
        lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {})],
    ),
    "Secret": (
        [NAME, _col("Type"), _col("Data", "integer"), AGE],
        lambda o: [o.get("type", "Opaque"), len(o.get("data") or {})],
    ),
    "Deployment": (
        [
            NAME,
            _col("Ready"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            AGE,
            _col("Containers", priority=1),
            _col("Images", priority=1),
            _col("Selector", priority=1),
        ],
        lambda o: [
            f"{_st(o).get('readyReplicas', 0)}/{_sp(o).get('replicas', 1)}",
            _st(o).get("updatedReplicas", 0),
            _st(o).get("availableReplicas", 0),
        ],
    ),
    "StatefulSet": (
        [NAME, _col("Ready"), AGE, _col("Containers", priority=1), _col("Images", priority=1)],
        lambda o: [f"{_st(o).get('readyReplicas', 0)}/{_sp(o).get('replicas', 1)}"],
    ),
    "ReplicaSet": (
        [
            NAME,
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            AGE,
        ],
        lambda o: [
            _sp(o).get("replicas", 1),
            _st(o).get("replicas", 0),
            _st(o).get("readyReplicas", 0),
        ],
    ),
    "DaemonSet": (
        [
            NAME,
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            AGE,
        ],
        lambda o: [
            _st(o).get("desiredNumberScheduled", 0),
            _st(o).get("currentNumberScheduled", 0),
            _st(o).get("numberReady", 0),
            _st(o).get("updatedNumberScheduled", 0),
            _st(o).get("numberAvailable", 0),
        ],
    ),
    "Service": (
        [NAME, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), AGE],
        lambda o: [
            _sp(o).get("type", "ClusterIP"),
            _sp(o).get("clusterIP") or "<none>",
            ",".join(_sp(o).get("externalIPs") or []) or "<none>",
            _ports(o),
        ],
    ),
    "Pod": (
        [NAME, _col("Ready"), _col("Status"), _col("Restarts", "string"), AGE],
        lambda o: [
            f"{sum(1 for c in _st(o).get('containerStatuses') or [] if c.get('ready'))}"
            f"/{len(_sp(o).get('containers') or [])}",
            _pod_phase(o),
            str(sum(c.get("restartCount", 0) for c in _st(o).get("containerStatuses") or [])),
        ],
    ),
    "Job": (
        [NAME, _col("Status"), _col("Completions"), AGE],
        lambda o: [
            "Complete" if _st(o).get("succeeded") else "Running",
            f"{_st(o).get('succeeded', 0)}/{_sp(o).get('completions', 1)}",
        ],
    ),
    "CronJob": (
        [NAME, _col("Schedule"), _col("Suspend"), _col("Active", "integer"), AGE],
        lambda o: [
            _sp(o).get("schedule", ""),
            "True" if _sp(o).get("suspend") else "False",
            len(_st(o).get("active") or []),
        ],
    ),
    "PersistentVolumeClaim": (
        [NAME, _col("Status"), _col("Capacity"), _col("Access Modes"), AGE],
        lambda o: [
            _st(o).get("phase", "Pending"),
            (_st(o).get("capacity") or {}).get("storage", ""),
            ",".join(_ACCESS.get(m, m) for m in _st(o).get("accessModes") or []),
        ],
    ),
    "Ingress": (
        [NAME, _col("Class"), _col("Hosts"), _col("Address"), _col("Ports"), AGE],
        lambda o: [
            _sp(o).get("ingressClassName") or "<none>",
            ",".join(r.get("host", "*") for r in _sp(o).get("rules") or []) or "*",
            ",".join(
                i.get("ip") or i.get("hostname", "")
                for i in (_st(o).get("loadBalancer") or {}).get("ingress") or []
            ),
            "80, 443" if _sp(o).get("tls") else "80",
        ],
    ),
    "HorizontalPodAutoscaler": (
        [
            NAME,
            _col("Reference"),
            _col("MinPods", "integer"),
            _col("MaxPods", "integer"),
            _col("Replicas", "integer"),
            AGE,
        ],
        lambda o: [
            f"{(_sp(o).get('scaleTargetRef') or {}).get('kind', '')}/{(_sp(o).get('scaleTargetRef') or {}).get('name', '')}",
            _sp(o).get("minReplicas", 1),
            _sp(o).get("maxReplicas", 0),
            _st(o).get("currentReplicas", 0),
        ],
    ),
    "CustomResourceDefinition": (
        [NAME, _col("Created At", "date")],
        lambda o: [o["metadata"].get("creationTimestamp", "")],
    ),
}


def _wide(obj: dict[str, Any]) -> list[Any]:
    cs = _containers(obj)
    out = [",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)]
    if obj.get("kind") == "Deployment":
        out.append(selector_string(_sp(obj).get("selector")) or "<none>")
    return out


def _jsonpath(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.strip().lstrip(".").split("."):
        if not part:
            continue
        if isinstance(cur, dict):
            cur = cur.get(part)
        else:
            return None
    return cur


def to_table(
    kind: str,
    objs: list[dict[str, Any]],
    resource_version: str,
    include: str = "Metadata",
    extra_columns: list[dict[str, Any]] | None = None,
    headers: bool = True,
) -> dict[str, Any]:
    """A Table of objs; include is None, Metadata (default) or Object."""
    if kind in BUILTIN and not extra_columns:
        cols, row_fn = BUILTIN[kind]
        age_at = cols.index(AGE) if AGE in cols else None
    else:
        cols = [NAME]
        for c in extra_columns or []:
            cols.append(_col(c.get("name", ""), c.get("type", "string"), int(c.get("priority", 0))))
        has_age = any(
            c.get("jsonPath") == ".metadata.creationTimestamp" for c in extra_columns or []
        )
        if not has_age:
            cols.append(AGE)
        age_at = None if has_age else len(cols) - 1

        def row_fn(o: dict[str, Any]) -> list[Any]:
            out = []
            for c in extra_columns or []:
                v = _jsonpath(o, c.get("jsonPath", ""))
                if c.get("jsonPath") == ".metadata.creationTimestamp":
                    v = age(o)
                out.append("<none>" if v is None else v)
            return out

    rows = []
    for o in objs:
        cells: list[Any] = [o["metadata"]["name"], *row_fn(o)]
        if age_at is not None:
            cells.insert(age_at, age(o))
        if kind in ("Deployment", "StatefulSet") and not extra_columns:
            cells.extend(_wide(o))
        row: dict[str, Any] = {"cells": cells}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {k: v for k, v in o["metadata"].items() if k != "managedFields"},
            }
        rows.append(row)
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": cols if headers else [],
        "rows": rows,
    }
    return table


def table_of(rt: ResourceType, objs: list[dict[str, Any]], rv: str, include: str) -> dict[str, Any]:
    """objs (of type rt, served through its version) as a Table."""
    return to_table(rt.kind, [rt.present(o) for o in objs], rv, include, rt.printer_columns)
