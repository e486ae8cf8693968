"""The Kustomization spec fields that shape a build, and how they key a cache.

Pure: no I/O.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fluxbus_kustomize.logic.generate import Overrides

if TYPE_CHECKING:
    from fluxbus_common.api.kustomize import KustomizationSpec


def normalise_path(path: str) -> str:
    """Return `spec.path` relative to the artifact root (`.` for the root)."""
    return posixpath.normpath(path.strip().lstrip("/") or ".") if path else "."


@dataclass(frozen=True)
class BuildSpec:
    """The Kustomization spec fields that shape a build (see `from_kustomization`)."""

    path: str = ""
    target_namespace: str | None = None
    name_prefix: str | None = None
    name_suffix: str | None = None
    patches: tuple[Mapping[str, Any], ...] = ()
    """`{"patch": str, "target": {...}}` items, as in `spec.patches`."""
    images: tuple[Mapping[str, Any], ...] = ()
    """`{"name", "newName", "newTag", "digest"}` items, as in `spec.images`."""
    components: tuple[str, ...] = ()
    ignore_missing_components: bool = False
    common_labels: Mapping[str, str] = field(default_factory=dict)
    common_annotations: Mapping[str, str] = field(default_factory=dict)
    post_build: bool = False
    """Whether `spec.postBuild` is present; without it nothing is substituted."""
    substitute: Mapping[str, str] = field(default_factory=dict)
    """`spec.postBuild.substitute`: wins over the `variables` passed to `build`."""
    substitute_always: bool = False
    """`spec.postBuild.substituteStrategy: Always`: substitute even without variables."""

    @classmethod
    def from_kustomization(cls, spec: KustomizationSpec) -> BuildSpec:
        """Return the build-relevant fields of a Kustomization spec (camelCase for kustomize)."""
        meta = spec.common_metadata
        post_build = spec.post_build
        return cls(
            path=spec.path or "",
            target_namespace=spec.target_namespace,
            name_prefix=spec.name_prefix,
            name_suffix=spec.name_suffix,
            patches=tuple(p.model_dump(by_alias=True, exclude_none=True) for p in spec.patches),
            images=tuple(i.model_dump(by_alias=True, exclude_none=True) for i in spec.images),
            components=tuple(spec.components),
            ignore_missing_components=spec.ignore_missing_components,
            common_labels=dict(meta.labels or {}) if meta else {},
            common_annotations=dict(meta.annotations or {}) if meta else {},
            post_build=post_build is not None,
            substitute=dict(post_build.substitute or {}) if post_build else {},
            substitute_always=post_build.always if post_build else False,
        )

    def overrides(self) -> Overrides:
        """Return the overrides Flux writes into the root kustomization."""
        return Overrides(
            target_namespace=self.target_namespace,
            name_prefix=self.name_prefix,
            name_suffix=self.name_suffix,
            patches=tuple(self.patches),
            images=tuple(self.images),
            components=tuple(self.components),
        )

    def cache_fields(self) -> str:
        """Return the fields that change the render, as canonical JSON."""
        return json.dumps(
            {
                "path": normalise_path(self.path),
                "targetNamespace": self.target_namespace,
                "namePrefix": self.name_prefix,
                "nameSuffix": self.name_suffix,
                "patches": list(self.patches),
                "images": list(self.images),
                "components": list(self.components),
                "ignoreMissingComponents": self.ignore_missing_components,
                "commonLabels": dict(self.common_labels),
                "commonAnnotations": dict(self.common_annotations),
                "postBuild": self.post_build,
                "substituteAlways": self.substitute_always,
            },
            sort_keys=True,
            default=str,
        )
