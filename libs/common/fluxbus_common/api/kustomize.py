"""`kustomize.toolkit.fluxcd.io/v1` Kustomization, field for field as in Flux.

Defaults follow Flux's own getters (kustomize-controller api/v1):
- timeout: `GetTimeout()` uses `spec.timeout`, else interval − 30 s, and never
  less than 30 s. (The CRD field description says "Defaults to 'Interval'
  duration", but the controller's code is what runs, so fluxbus follows it.)
- retryInterval: defaults to `spec.interval`.
- deletionPolicy: defaults to `MirrorPrune`.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fluxbus_common.api.meta import (
    CrossNamespaceSourceReference,
    Duration,
    KubeConfigReference,
    LocalObjectReference,
    LooseModel,
    NamespacedObjectKindReference,
    ObjectStatus,
    SpecModel,
    ToolkitObject,
    seconds,
)

__all__ = [
    "KUSTOMIZE_GROUP",
    "MIN_KUSTOMIZATION_TIMEOUT",
    "CommonMetadata",
    "CustomHealthCheck",
    "Decryption",
    "DependencyReference",
    "DriftIgnoreRule",
    "Image",
    "Kustomization",
    "KustomizationSpec",
    "KustomizationStatus",
    "Patch",
    "PostBuild",
    "ResourceInventory",
    "ResourceRef",
    "Selector",
    "Snapshot",
    "SubstituteReference",
]

KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
MIN_KUSTOMIZATION_TIMEOUT = 30.0
"""Flux's GetTimeout(): interval minus this margin, and never below it (seconds)."""


class CommonMetadata(SpecModel):
    """Labels and annotations added to every applied object."""

    annotations: dict[str, str] | None = None
    labels: dict[str, str] | None = None


class DependencyReference(SpecModel):
    """A Kustomization that must be ready first (optionally judged by a CEL readyExpr)."""

    name: str
    namespace: str | None = None
    ready_expr: str | None = None


class Decryption(SpecModel):
    provider: Literal["sops"]
    service_account_name: str | None = None
    secret_ref: LocalObjectReference | None = None


class SubstituteReference(SpecModel):
    """A ConfigMap or Secret whose data keys are post-build variables."""

    kind: Literal["Secret", "ConfigMap"]
    name: str = Field(min_length=1, max_length=253)
    optional: bool = False


class PostBuild(SpecModel):
    """Variable substitution applied to the rendered manifests.

    `substituteStrategy` (kustomize-controller v1.9): `WithVariables` (the
    default) substitutes only when at least one variable is defined, `Always`
    substitutes even when none is (so `${var:=default}` takes its default).
    """

    substitute: dict[str, str] | None = None
    substitute_from: list[SubstituteReference] | None = None
    substitute_strategy: Literal["WithVariables", "Always"] | None = None

    @property
    def always(self) -> bool:
        """Whether substitution runs even when no variable is defined (`Always`)."""
        return self.substitute_strategy == "Always"


class Selector(SpecModel):
    """Selects objects by group/version/kind/namespace/name and label/annotation selectors."""

    group: str | None = None
    version: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    annotation_selector: str | None = None
    label_selector: str | None = None


class Patch(SpecModel):
    """An inline strategic-merge or JSON6902 patch and its target."""

    patch: str
    target: Selector | None = None


class Image(SpecModel):
    """An image override (kustomize `images:`)."""

    name: str
    new_name: str | None = None
    new_tag: str | None = None
    digest: str | None = None


class CustomHealthCheck(SpecModel):
    """CEL expressions that decide the health of a custom resource kind."""

    api_version: str
    kind: str
    current: str
    in_progress: str | None = None
    failed: str | None = None


class DriftIgnoreRule(SpecModel):
    """JSON pointers whose drift is ignored, optionally only for some objects
    (Flux's `IgnoreRule`, the items of `spec.ignore`)."""

    paths: list[str]
    target: Selector | None = None


class KustomizationSpec(SpecModel):
    """Desired state of a Kustomization (kustomize-controller api/v1).

    `prune` is required, as in Flux's CRD. `ignore` (Flux's drift ignore
    rules) and fluxbus's older `driftIgnoreRules` are the same rules with one
    behaviour; both lists apply (`ignore_rules`).
    """

    common_metadata: CommonMetadata | None = None
    depends_on: list[DependencyReference] = Field(default_factory=list)
    decryption: Decryption | None = None
    interval: Duration
    retry_interval: Duration | None = None
    kube_config: KubeConfigReference | None = None
    path: str | None = None
    post_build: PostBuild | None = None
    prune: bool
    deletion_policy: Literal["MirrorPrune", "Delete", "WaitForTermination", "Orphan"] | None = None
    health_checks: list[NamespacedObjectKindReference] = Field(default_factory=list)
    name_prefix: str | None = Field(default=None, min_length=1, max_length=200)
    name_suffix: str | None = Field(default=None, min_length=1, max_length=200)
    patches: list[Patch] = Field(default_factory=list)
    images: list[Image] = Field(default_factory=list)
    service_account_name: str | None = None
    source_ref: CrossNamespaceSourceReference
    suspend: bool = False
    target_namespace: str | None = Field(default=None, min_length=1, max_length=63)
    timeout: Duration | None = None
    force: bool = False
    wait: bool = False
    components: list[str] = Field(default_factory=list)
    ignore_missing_components: bool = False
    health_check_exprs: list[CustomHealthCheck] = Field(default_factory=list)
    ignore: list[DriftIgnoreRule] = Field(default_factory=list)
    drift_ignore_rules: list[DriftIgnoreRule] = Field(default_factory=list)

    @property
    def ignore_rules(self) -> list[DriftIgnoreRule]:
        """`spec.ignore` and `spec.driftIgnoreRules` together (one behaviour for both)."""
        return [*self.ignore, *self.drift_ignore_rules]

    @property
    def interval_seconds(self) -> float:
        return seconds(self.interval, 0.0)

    @property
    def timeout_seconds(self) -> float:
        """Flux's GetTimeout(): `spec.timeout`, else interval − 30 s; at least 30 s either way."""
        value = seconds(self.timeout, self.interval_seconds - MIN_KUSTOMIZATION_TIMEOUT)
        return max(value, MIN_KUSTOMIZATION_TIMEOUT)

    @property
    def retry_interval_seconds(self) -> float:
        """`spec.retryInterval` in seconds, defaulting to `spec.interval` (as Flux does)."""
        return seconds(self.retry_interval, self.interval_seconds)

    @property
    def effective_deletion_policy(self) -> str:
        return self.deletion_policy or "MirrorPrune"


class ResourceRef(LooseModel):
    """One inventory entry: `<namespace>_<name>_<group>_<Kind>` and the API version."""

    id: str
    v: str


class ResourceInventory(LooseModel):
    entries: list[ResourceRef] = Field(default_factory=list)


class Snapshot(LooseModel):
    """One entry of `status.history`: a reconciliation outcome for one digest."""

    digest: str
    first_reconciled: str
    last_reconciled: str
    last_reconciled_duration: str
    last_reconciled_status: str
    total_reconciliations: int
    metadata: dict[str, str] | None = None


class KustomizationStatus(ObjectStatus):
    """Observed state of a Kustomization."""

    last_applied_revision: str | None = None
    last_applied_origin_revision: str | None = None
    last_attempted_revision: str | None = None
    inventory: ResourceInventory | None = None
    history: list[Snapshot] = Field(default_factory=list)


class Kustomization(ToolkitObject[KustomizationSpec, KustomizationStatus]):
    """A kustomize overlay (or plain manifests) from a source, applied to a cluster."""

    api_version: Literal["kustomize.toolkit.fluxcd.io/v1"] = "kustomize.toolkit.fluxcd.io/v1"
    kind: Literal["Kustomization"] = "Kustomization"
    spec: KustomizationSpec
    status: KustomizationStatus = Field(default_factory=KustomizationStatus)
