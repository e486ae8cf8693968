"""What the CLI decides about Helm objects without touching the bus: the source
a `reconcile --with-source` reconciles first, the rows of `fluxbus history
helmrelease`, and which release revision `fluxbus rollback helmrelease` goes
back to.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HISTORY_HEADERS = ("REVISION", "CHART", "APP VERSION", "CONFIG DIGEST", "STATUS", "DEPLOYED")
DIGEST_CHARS = 12
"""Hex digits of the config digest shown in the history table."""


@dataclass(frozen=True)
class SourceRef:
    """A source to reconcile before the object that uses it."""

    kind: str
    namespace: str
    name: str


class NoSource(ValueError):
    """The object names no source to reconcile first."""


class RollbackTargetError(ValueError):
    """No release revision matches what `rollback` was asked for."""


def generated_chart_name(namespace: str, name: str) -> str:
    """The HelmChart a HelmRelease's `spec.chart` generates: `<namespace>-<name>`."""
    return f"{namespace}-{name}"


def source_of(kind: str, doc: Mapping[str, Any]) -> SourceRef:
    """The source of an object, as `flux reconcile --with-source` reconciles it first.

    A HelmRelease's is its HelmChart (the generated one of `spec.chart`, or
    `spec.chartRef`); a HelmChart's and a Kustomization's is `spec.sourceRef`
    (a HelmChart's always in its own namespace). Raises NoSource."""
    meta = doc.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    spec = doc.get("spec") or {}
    if kind == "HelmRelease":
        ref = spec.get("chartRef")
        if isinstance(ref, Mapping) and ref.get("name"):
            return SourceRef(
                str(ref.get("kind", "")), str(ref.get("namespace") or namespace), str(ref["name"])
            )
        chart_ref = ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef")
        if not isinstance(chart_ref, Mapping) or not chart_ref.get("name"):
            raise NoSource("HelmRelease has neither spec.chart nor spec.chartRef")
        chart_ns = str(chart_ref.get("namespace") or namespace)
        return SourceRef("HelmChart", chart_ns, generated_chart_name(namespace, name))
    ref = spec.get("sourceRef")
    if not isinstance(ref, Mapping) or not ref.get("name"):
        raise NoSource(f"{kind} has no spec.sourceRef to reconcile first")
    ref_ns = namespace if kind == "HelmChart" else str(ref.get("namespace") or namespace)
    return SourceRef(str(ref.get("kind", "")), ref_ns, str(ref["name"]))


def newest_first(history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The release snapshots, newest (highest Helm revision) first."""
    return sorted(history, key=lambda s: int(s.get("version") or 0), reverse=True)


def _short(digest: str) -> str:
    algo, _, hexdigest = digest.partition(":")
    return f"{algo}:{hexdigest[:DIGEST_CHARS]}" if hexdigest else digest or "-"


def history_row(snapshot: Mapping[str, Any]) -> list[str]:
    """REVISION CHART APP VERSION CONFIG DIGEST STATUS DEPLOYED of one release."""
    chart = f"{snapshot.get('chartName', '')}-{snapshot.get('chartVersion', '')}"
    return [
        str(snapshot.get("version", "")),
        chart,
        str(snapshot.get("appVersion") or "-"),
        _short(str(snapshot.get("configDigest") or "")),
        str(snapshot.get("status") or "-"),
        str(snapshot.get("lastDeployed") or snapshot.get("firstDeployed") or "-"),
    ]


def rollback_target(
    history: Sequence[Mapping[str, Any]], *, to_revision: int | None, steps: int | None
) -> Mapping[str, Any]:
    """The snapshot to roll back to: Helm revision `to_revision`, else the one
    `steps` releases back (1 when neither is given). Raises RollbackTargetError."""
    entries = newest_first(history)
    if not entries:
        raise RollbackTargetError("it has no release history yet")
    current = int(entries[0].get("version") or 0)
    kept = ", ".join(str(e.get("version")) for e in entries)
    if to_revision is not None:
        if to_revision == current:
            raise RollbackTargetError(f"revision {to_revision} is the current release")
        for entry in entries:
            if int(entry.get("version") or 0) == to_revision:
                return entry
        raise RollbackTargetError(f"revision {to_revision} is not in its history (kept: {kept})")
    back = 1 if steps is None else steps
    if back < 1:
        raise RollbackTargetError(f"--steps must be at least 1, got {back}")
    if back >= len(entries):
        earlier = len(entries) - 1
        raise RollbackTargetError(
            f"cannot go {back} releases back: its history keeps {earlier} earlier "
            f"release{'s' if earlier != 1 else ''} (kept: {kept})"
        )
    return entries[back]


def rolled_back(status: Mapping[str, Any], target: Mapping[str, Any], previous: int) -> bool:
    """Whether the status records a new release (newer than revision `previous`)
    with the chart version and values of `target`: what a Helm rollback makes."""
    entries = newest_first(status.get("history") or [])
    if not entries:
        return False
    top = entries[0]
    return (
        int(top.get("version") or 0) > previous
        and top.get("chartVersion") == target.get("chartVersion")
        and top.get("configDigest") == target.get("configDigest")
    )
