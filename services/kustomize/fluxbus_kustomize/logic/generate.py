"""Flux's generated-kustomization rule and its spec overrides.

When `spec.path` holds no kustomization file, Flux generates one listing every
`*.yaml`/`*.yml` below it (recursively, in lexical walk order), referencing a
sub-directory that has its own kustomization file instead of descending into
it, and failing on a YAML file that is not Kubernetes YAML. Then, generated or
not, Flux edits that root kustomization in place with the Kustomization's
overrides: `targetNamespace` → `namespace`, `namePrefix`, `nameSuffix`,
`patches` (appended), `images` (an entry of the same name is replaced) and
`components` (appended). `commonMetadata` is not a kustomize field in Flux: it
is stamped on every rendered object afterwards (`apply_common_metadata`).

The directory walk and file reads are the adapter's; this module decides.

Pure: no I/O.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from fluxbus_kustomize.logic.manifests import load_all

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
"""kustomize's recognised kustomization file names, in its lookup order."""
KUSTOMIZE_API_VERSION = "kustomize.config.k8s.io/v1beta1"
YAML_SUFFIXES = (".yaml", ".yml")


class GenerateError(ValueError):
    """The path cannot become a kustomization; the message names the file."""


@dataclass(frozen=True)
class Overrides:
    """The Kustomization spec fields Flux writes into the root kustomization."""

    target_namespace: str | None = None
    name_prefix: str | None = None
    name_suffix: str | None = None
    patches: tuple[Mapping[str, Any], ...] = ()
    images: tuple[Mapping[str, Any], ...] = ()
    components: tuple[str, ...] = ()
    common_labels: Mapping[str, str] = field(default_factory=dict)
    common_annotations: Mapping[str, str] = field(default_factory=dict)

    def touches_kustomization(self) -> bool:
        """Return whether any override must be written into the kustomization file."""
        return bool(
            self.target_namespace
            or self.name_prefix
            or self.name_suffix
            or self.patches
            or self.images
            or self.components
        )


def kustomization_file(names: Iterable[str]) -> str | None:
    """Return the kustomization file name among a directory's file names, or None."""
    present = set(names)
    for candidate in KUSTOMIZATION_FILES:
        if candidate in present:
            return candidate
    return None


def _walk_key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


def plan_generated(files: Iterable[str]) -> tuple[list[str], list[str]]:
    """Decide the generated kustomization's resources from a recursive file listing.

    `files` are POSIX paths relative to the kustomization directory (regular
    files only). Returns `(resources, yaml_files)`: the resources in Flux's walk
    order (`./a.yaml`, `./sub` for a sub-directory with its own kustomization
    file), and the YAML files the adapter must read and pass to
    `check_kubernetes_yaml`.
    """
    all_files = sorted(set(files), key=_walk_key)
    dirs_with_kustomization: set[str] = set()
    for f in all_files:
        head, name = posixpath.split(f)
        if head and name in KUSTOMIZATION_FILES:
            dirs_with_kustomization.add(head)

    def owning_dir(path: str) -> str | None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            candidate = "/".join(parts[:i])
            if candidate in dirs_with_kustomization:
                return candidate
        return None

    entries: list[str] = []
    yaml_files: list[str] = []
    seen_dirs: set[str] = set()
    for f in all_files:
        owner = owning_dir(f)
        if owner is not None:
            if owner not in seen_dirs:
                seen_dirs.add(owner)
                entries.append(owner)
            continue
        if posixpath.splitext(f)[1] in YAML_SUFFIXES:
            entries.append(f)
            yaml_files.append(f)
    entries.sort(key=_walk_key)
    return [f"./{e}" for e in entries], yaml_files


def check_kubernetes_yaml(name: str, text: str) -> None:
    """Raise GenerateError naming the file unless every document is a Kubernetes object.

    Empty documents are allowed; a document needs `apiVersion` and `kind`.
    """
    try:
        docs = load_all(text)
    except yaml.YAMLError as e:
        raise GenerateError(f"failed to decode Kubernetes YAML from {name}: {e}") from None
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise GenerateError(
                f"failed to decode Kubernetes YAML from {name}: document {index} is not an object"
            )
        missing = [k for k in ("apiVersion", "kind") if not doc.get(k)]
        if missing:
            raise GenerateError(
                f"failed to decode Kubernetes YAML from {name}: document {index} "
                f"has no {' and no '.join(missing)}"
            )


def generated_kustomization(resources: Sequence[str]) -> dict[str, Any]:
    """Return the kustomization Flux generates for a path without one."""
    return {
        "apiVersion": KUSTOMIZE_API_VERSION,
        "kind": "Kustomization",
        "resources": list(resources),
    }


def apply_overrides(kustomization: Mapping[str, Any], overrides: Overrides) -> dict[str, Any]:
    """Return a copy of the root kustomization with the spec overrides written in, as Flux does."""
    kus = copy.deepcopy(dict(kustomization))
    kus.setdefault("apiVersion", KUSTOMIZE_API_VERSION)
    kus.setdefault("kind", "Kustomization")
    if overrides.target_namespace:
        kus["namespace"] = overrides.target_namespace
    if overrides.name_prefix:
        kus["namePrefix"] = overrides.name_prefix
    if overrides.name_suffix:
        kus["nameSuffix"] = overrides.name_suffix
    if overrides.patches:
        patches = list(kus.get("patches") or [])
        for p in overrides.patches:
            entry: dict[str, Any] = {"patch": p["patch"]}
            if p.get("target"):
                entry["target"] = dict(p["target"])
            patches.append(entry)
        kus["patches"] = patches
    if overrides.images:
        images = [dict(i) for i in kus.get("images") or []]
        for image in overrides.images:
            new = {k: v for k, v in image.items() if v not in (None, "")}
            for index, existing in enumerate(images):
                if existing.get("name") == new.get("name"):
                    images[index] = new
                    break
            else:
                images.append(new)
        kus["images"] = images
    if overrides.components:
        kus["components"] = list(kus.get("components") or []) + list(overrides.components)
    return kus


def apply_common_metadata(
    objects: Sequence[dict[str, Any]],
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Return the objects with `commonMetadata` labels and annotations set (overriding)."""
    if not labels and not annotations:
        return list(objects)
    out = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if labels:
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
        if annotations:
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        out.append(obj)
    return out
