"""Flux kinds fluxbus does not serve yet, found in a Kustomization's output.

A HelmRelease, HelmRepository, OCIRepository, Bucket or ArtifactGenerator in
the rendered manifests, or a Kustomization whose `sourceRef` names a source
kind fluxbus does not serve (ExternalArtifact, OCIRepository, Bucket), would
otherwise read like a missing CRD ("no matches for kind …") or, where the
CRDs exist, be stored with nothing to act on while `wait` burns its timeout.
`find_not_served` lists them; `locate` names the repository file each comes
from, so the message can say plainly what and where.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fluxbus_common.api.compat import SERVED_SOURCE_KINDS, not_served, not_served_message
from fluxbus_common.api.kustomize import KUSTOMIZE_GROUP

SOURCE_GROUP_VERSION = "source.toolkit.fluxcd.io/v1"
"""The apiVersion a `sourceRef` kind is reported under when it names none."""


@dataclass(frozen=True)
class NotServed:
    """One object of the output fluxbus cannot act on, and why."""

    kind: str
    namespace: str
    name: str
    reason: str

    @property
    def subject(self) -> str:
        """`Kind/namespace/name` (or `Kind/name`), as Flux prints objects."""
        return "/".join(p for p in (self.kind, self.namespace, self.name) if p)


def find_not_served(objects: Sequence[Mapping[str, Any]]) -> list[NotServed]:
    """Return the objects of kinds fluxbus does not serve yet, and the Kustomizations
    whose `sourceRef` names such a kind, in output order."""
    out: list[NotServed] = []
    for obj in objects:
        api_version = str(obj.get("apiVersion") or "")
        kind = str(obj.get("kind") or "")
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if not_served(api_version, kind):
            out.append(NotServed(kind, ns, name, not_served_message(kind, api_version)))
            continue
        if kind == "Kustomization" and api_version.startswith(f"{KUSTOMIZE_GROUP}/"):
            ref = (obj.get("spec") or {}).get("sourceRef") or {}
            source = str(ref.get("kind") or "")
            if source and source not in SERVED_SOURCE_KINDS:
                version = str(ref.get("apiVersion") or SOURCE_GROUP_VERSION)
                reason = f"its sourceRef kind {not_served_message(source, version)}"
                out.append(NotServed(kind, ns, name, reason))
    return out


def _mentions(text: str, key: str, value: str) -> bool:
    pattern = rf"^\s*-?\s*{key}:\s*[\"']?{re.escape(value)}[\"']?\s*(#.*)?$"
    return re.search(pattern, text, re.MULTILINE) is not None


def locate(item: NotServed, files: Mapping[str, str]) -> str | None:
    """Return the file (path in the artifact) that declares the object: one naming
    both its kind and its name, else the first naming its kind, else None (it came
    from a generator or a remote base)."""
    with_kind = [p for p in sorted(files) if _mentions(files[p], "kind", item.kind)]
    for path in with_kind:
        if _mentions(files[path], "name", item.name):
            return path
    return with_kind[0] if with_kind else None


def describe(items: Sequence[NotServed], files: Mapping[str, str]) -> str:
    """Return one line per item: the object, its file and the plain reason."""
    lines = []
    for item in items:
        path = locate(item, files)
        where = f" in {path}" if path else ""
        lines.append(f"{item.subject}{where}: {item.reason}")
    return "\n".join(lines)
