"""Flux's Helm kinds, field for field: `HelmRepository` and `HelmChart`
(`source.toolkit.fluxcd.io/v1`, source-controller) and `HelmRelease`
(`helm.toolkit.fluxcd.io/v2`, helm-controller).

Defaults follow Flux's getters:
- HelmRepository `timeout` 60 s; `type` `default` (HTTP/S index) or `oci`.
- HelmChart `reconcileStrategy` `ChartVersion`; `version` `*`.
- HelmRelease `timeout` 5 m; `releaseName` `[<targetNamespace>-]<name>` (shortened
  with a digest past 53 characters); `storageNamespace` the object's namespace;
  the generated HelmChart is `<namespace>-<name>` in the source's namespace.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import Field

from fluxbus_common.api.kustomize import (
    CustomHealthCheck,
    DependencyReference,
    Image,
    Patch,
    ResourceInventory,
    Selector,
)
from fluxbus_common.api.meta import (
    AccessFrom,
    Artifact,
    Duration,
    KubeConfigReference,
    LocalObjectReference,
    LooseModel,
    ObjectStatus,
    SpecModel,
    ToolkitObject,
    seconds,
)

__all__ = [
    "DEFAULT_HELM_REPOSITORY_TIMEOUT",
    "DEFAULT_HELM_TIMEOUT",
    "HELM_GROUP",
    "CrossNamespaceHelmObjectReference",
    "DriftDetection",
    "DriftIgnoreRuleHelm",
    "HelmChart",
    "HelmChartSpec",
    "HelmChartStatus",
    "HelmChartTemplate",
    "HelmChartTemplateSpec",
    "HelmChartVerification",
    "HelmRelease",
    "HelmReleaseSpec",
    "HelmReleaseStatus",
    "HelmRepository",
    "HelmRepositorySpec",
    "HelmRepositoryStatus",
    "HelmSnapshot",
    "Install",
    "LocalHelmChartSourceReference",
    "PostRenderer",
    "Rollback",
    "Test",
    "Uninstall",
    "Upgrade",
    "ValuesReference",
    "release_name",
]

HELM_GROUP = "helm.toolkit.fluxcd.io"
DEFAULT_HELM_REPOSITORY_TIMEOUT = 60.0
"""Flux's default HelmRepository `spec.timeout` (index download), seconds."""
DEFAULT_HELM_TIMEOUT = 300.0
"""Flux's default HelmRelease `spec.timeout` (every Helm action), seconds."""
MAX_RELEASE_NAME = 53
"""Helm refuses release names longer than this."""


# -- HelmRepository -----------------------------------------------------------------------------


class HelmRepositorySpec(SpecModel):
    """Desired state of a HelmRepository (source-controller api/v1)."""

    url: str
    secret_ref: LocalObjectReference | None = None
    cert_secret_ref: LocalObjectReference | None = None
    pass_credentials: bool = False
    interval: Duration | None = None
    insecure: bool = False
    timeout: Duration | None = None
    suspend: bool = False
    access_from: AccessFrom | None = None
    type: Literal["default", "oci"] | None = None
    provider: Literal["generic", "aws", "azure", "gcp"] | None = None

    @property
    def is_oci(self) -> bool:
        return self.type == "oci"

    @property
    def interval_seconds(self) -> float:
        """`spec.interval` in seconds (Flux's CRD default is 10m when unset)."""
        return seconds(self.interval, 600.0)

    @property
    def timeout_seconds(self) -> float:
        return seconds(self.timeout, DEFAULT_HELM_REPOSITORY_TIMEOUT)


class HelmRepositoryStatus(ObjectStatus):
    url: str | None = None
    artifact: Artifact | None = None


class HelmRepository(ToolkitObject[HelmRepositorySpec, HelmRepositoryStatus]):
    """A Helm chart repository: an HTTP/S `index.yaml`, or an OCI registry (`type: oci`)."""

    api_version: Literal["source.toolkit.fluxcd.io/v1"] = "source.toolkit.fluxcd.io/v1"
    kind: Literal["HelmRepository"] = "HelmRepository"
    spec: HelmRepositorySpec
    status: HelmRepositoryStatus = Field(default_factory=HelmRepositoryStatus)


# -- HelmChart ----------------------------------------------------------------------------------


class LocalHelmChartSourceReference(SpecModel):
    """Where a HelmChart's chart comes from, in the HelmChart's namespace."""

    api_version: str | None = None
    kind: Literal["HelmRepository", "GitRepository", "Bucket"]
    name: str


class OIDCIdentityMatch(SpecModel):
    issuer: str
    subject: str


class HelmChartVerification(SpecModel):
    """OCI chart signature verification (cosign / notation)."""

    provider: Literal["cosign", "notation"] = "cosign"
    secret_ref: LocalObjectReference | None = None
    match_oidc_identity: list[OIDCIdentityMatch] | None = None


class HelmChartSpec(SpecModel):
    """Desired state of a HelmChart (source-controller api/v1)."""

    chart: str
    version: str | None = None
    source_ref: LocalHelmChartSourceReference
    interval: Duration
    reconcile_strategy: Literal["ChartVersion", "Revision"] | None = None
    values_files: list[str] = Field(default_factory=list)
    ignore_missing_values_files: bool = False
    suspend: bool = False
    verify: HelmChartVerification | None = None

    @property
    def interval_seconds(self) -> float:
        return seconds(self.interval, 0.0)

    @property
    def effective_version(self) -> str:
        """`spec.version`, `*` (the latest) when unset or empty."""
        return self.version or "*"

    @property
    def effective_reconcile_strategy(self) -> str:
        return self.reconcile_strategy or "ChartVersion"


class HelmChartStatus(ObjectStatus):
    observed_source_artifact_revision: str | None = None
    observed_chart_name: str | None = None
    observed_values_files: list[str] = Field(default_factory=list)
    url: str | None = None
    artifact: Artifact | None = None


class HelmChart(ToolkitObject[HelmChartSpec, HelmChartStatus]):
    """One chart (name + version range) packaged from a HelmRepository or a Git path."""

    api_version: Literal["source.toolkit.fluxcd.io/v1"] = "source.toolkit.fluxcd.io/v1"
    kind: Literal["HelmChart"] = "HelmChart"
    spec: HelmChartSpec
    status: HelmChartStatus = Field(default_factory=HelmChartStatus)


# -- HelmRelease --------------------------------------------------------------------------------


class CrossNamespaceHelmObjectReference(SpecModel):
    """`chart.spec.sourceRef`: a HelmRepository/GitRepository/Bucket, maybe in another namespace."""

    api_version: str | None = None
    kind: Literal["HelmRepository", "GitRepository", "Bucket"]
    name: str
    namespace: str | None = None


class ChartRefReference(SpecModel):
    """`spec.chartRef`: an existing HelmChart or OCIRepository (maybe in another namespace)."""

    api_version: str | None = None
    kind: Literal["HelmChart", "OCIRepository", "ExternalArtifact"]
    name: str
    namespace: str | None = None


class HelmChartTemplateObjectMeta(SpecModel):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class HelmChartTemplateVerification(SpecModel):
    provider: Literal["cosign", "notation"] = "cosign"
    secret_ref: LocalObjectReference | None = None


class HelmChartTemplateSpec(SpecModel):
    chart: str
    version: str | None = None
    source_ref: CrossNamespaceHelmObjectReference
    interval: Duration | None = None
    reconcile_strategy: Literal["ChartVersion", "Revision"] | None = None
    values_files: list[str] = Field(default_factory=list)
    ignore_missing_values_files: bool = False
    verify: HelmChartTemplateVerification | None = None


class HelmChartTemplate(SpecModel):
    """`spec.chart`: the HelmChart the helm service generates for this release."""

    metadata: HelmChartTemplateObjectMeta | None = None
    spec: HelmChartTemplateSpec


class ValuesReference(SpecModel):
    """A ConfigMap/Secret key merged into the values (at `targetPath` when set)."""

    kind: Literal["ConfigMap", "Secret"]
    name: str = Field(min_length=1, max_length=253)
    values_key: str | None = None
    target_path: str | None = None
    optional: bool = False

    @property
    def effective_values_key(self) -> str:
        return self.values_key or "values.yaml"


class DriftIgnoreRuleHelm(SpecModel):
    paths: list[str]
    target: Selector | None = None


class DriftDetection(SpecModel):
    mode: Literal["enabled", "warn", "disabled"] | None = None
    ignore: list[DriftIgnoreRuleHelm] = Field(default_factory=list)

    @property
    def effective_mode(self) -> str:
        return self.mode or "disabled"


class ActionStrategy(SpecModel):
    name: Literal["RemediateOnFailure", "RetryOnFailure"]
    retry_interval: Duration | None = None


class InstallRemediation(SpecModel):
    retries: int = 0
    ignore_test_failures: bool | None = None
    remediate_last_failure: bool | None = None


class UpgradeRemediation(SpecModel):
    retries: int = 0
    ignore_test_failures: bool | None = None
    remediate_last_failure: bool | None = None
    strategy: Literal["rollback", "uninstall"] | None = None


CRDsPolicy = Literal["Skip", "Create", "CreateReplace"]


class Install(SpecModel):
    timeout: Duration | None = None
    strategy: ActionStrategy | None = None
    remediation: InstallRemediation | None = None
    disable_take_ownership: bool = False
    disable_wait: bool = False
    disable_wait_for_jobs: bool = False
    disable_hooks: bool = False
    disable_open_api_validation: bool = Field(default=False, alias="disableOpenAPIValidation")
    disable_schema_validation: bool = False
    replace: bool = False
    skip_crds: bool = Field(default=False, alias="skipCRDs")
    crds: CRDsPolicy | None = None
    create_namespace: bool = False
    server_side_apply: bool | None = None


class Upgrade(SpecModel):
    timeout: Duration | None = None
    strategy: ActionStrategy | None = None
    remediation: UpgradeRemediation | None = None
    disable_take_ownership: bool = False
    disable_wait: bool = False
    disable_wait_for_jobs: bool = False
    disable_hooks: bool = False
    disable_open_api_validation: bool = Field(default=False, alias="disableOpenAPIValidation")
    disable_schema_validation: bool = False
    force: bool = False
    preserve_values: bool = False
    cleanup_on_fail: bool = False
    crds: CRDsPolicy | None = None
    server_side_apply: Literal["enabled", "disabled", "auto"] | None = None
    chart_name_change_strategy: Literal["Upgrade", "UninstallInstall"] | None = None


class TestFilter(SpecModel):
    name: str
    exclude: bool = False


class Test(SpecModel):
    __test__ = False  # not a pytest class

    enable: bool = False
    timeout: Duration | None = None
    ignore_failures: bool = False
    filters: list[TestFilter] | None = None


class Rollback(SpecModel):
    timeout: Duration | None = None
    disable_wait: bool = False
    disable_wait_for_jobs: bool = False
    disable_hooks: bool = False
    recreate: bool = False
    force: bool = False
    cleanup_on_fail: bool = False
    server_side_apply: Literal["enabled", "disabled", "auto"] | None = None


class Uninstall(SpecModel):
    timeout: Duration | None = None
    disable_hooks: bool = False
    keep_history: bool = False
    disable_wait: bool = False
    deletion_propagation: Literal["background", "foreground", "orphan"] | None = None


class PostRendererKustomize(SpecModel):
    patches: list[Patch] = Field(default_factory=list)
    images: list[Image] = Field(default_factory=list)


class PostRenderer(SpecModel):
    kustomize: PostRendererKustomize | None = None


class CommonMetadataHelm(SpecModel):
    annotations: dict[str, str] | None = None
    labels: dict[str, str] | None = None


class WaitStrategy(SpecModel):
    name: Literal["poller", "watcher", "legacy"]


class HelmReleaseSpec(SpecModel):
    """Desired state of a HelmRelease (helm-controller api/v2)."""

    chart: HelmChartTemplate | None = None
    chart_ref: ChartRefReference | None = None
    interval: Duration
    kube_config: KubeConfigReference | None = None
    suspend: bool = False
    release_name: str | None = Field(default=None, min_length=1, max_length=MAX_RELEASE_NAME)
    target_namespace: str | None = Field(default=None, min_length=1, max_length=63)
    storage_namespace: str | None = Field(default=None, min_length=1, max_length=63)
    depends_on: list[DependencyReference] = Field(default_factory=list)
    timeout: Duration | None = None
    max_history: int | None = None
    service_account_name: str | None = None
    persistent_client: bool | None = None
    drift_detection: DriftDetection | None = None
    install: Install | None = None
    upgrade: Upgrade | None = None
    test: Test | None = None
    rollback: Rollback | None = None
    uninstall: Uninstall | None = None
    values_from: list[ValuesReference] = Field(default_factory=list)
    values: dict[str, Any] | None = None
    common_metadata: CommonMetadataHelm | None = None
    post_renderers: list[PostRenderer] = Field(default_factory=list)
    post_render_strategy: str | None = None
    wait_strategy: WaitStrategy | None = None
    health_check_exprs: list[CustomHealthCheck] = Field(default_factory=list)

    @property
    def interval_seconds(self) -> float:
        return seconds(self.interval, 0.0)

    @property
    def timeout_seconds(self) -> float:
        """`spec.timeout` in seconds; Flux's default is 5 minutes."""
        return seconds(self.timeout, DEFAULT_HELM_TIMEOUT)

    @property
    def effective_max_history(self) -> int:
        """Flux keeps 5 Helm release revisions unless told otherwise (0 = unlimited)."""
        return 5 if self.max_history is None else self.max_history


class HelmSnapshot(LooseModel):
    """One entry of `status.history`: a Helm release revision as observed."""

    api_version: str | None = None
    digest: str
    name: str
    namespace: str
    version: int
    status: str
    action: str | None = None
    chart_name: str
    chart_version: str
    app_version: str | None = None
    config_digest: str
    first_deployed: str
    last_deployed: str
    deleted: str | None = None
    test_hooks: dict[str, dict[str, str]] | None = None
    oci_digest: str | None = None


class HelmReleaseStatus(ObjectStatus):
    observed_post_renderers_digest: str | None = None
    observed_common_metadata_digest: str | None = None
    last_attempted_generation: int | None = None
    helm_chart: str | None = None
    storage_namespace: str | None = None
    history: list[HelmSnapshot] = Field(default_factory=list)
    inventory: ResourceInventory | None = None
    last_attempted_release_action: str | None = None
    last_attempted_release_action_duration: str | None = None
    failures: int | None = None
    install_failures: int | None = None
    upgrade_failures: int | None = None
    last_attempted_revision: str | None = None
    last_attempted_revision_digest: str | None = None
    last_attempted_values_checksum: str | None = None
    last_release_revision: int | None = None
    last_attempted_config_digest: str | None = None
    last_handled_reset_at: str | None = None
    last_handled_force_at: str | None = None


class HelmRelease(ToolkitObject[HelmReleaseSpec, HelmReleaseStatus]):
    """A Helm release of a chart into a cluster, kept in the declared state."""

    api_version: Literal["helm.toolkit.fluxcd.io/v2"] = "helm.toolkit.fluxcd.io/v2"
    kind: Literal["HelmRelease"] = "HelmRelease"
    spec: HelmReleaseSpec
    status: HelmReleaseStatus = Field(default_factory=HelmReleaseStatus)


def release_name(name: str, target_namespace: str | None, explicit: str | None = None) -> str:
    """Flux's release name: `spec.releaseName`, else `[<targetNamespace>-]<name>`.

    A generated name longer than 53 characters is cut to 40 and suffixed with
    `-` and the first 12 hex of its SHA-256, as helm-controller does.
    """
    if explicit:
        return explicit
    full = f"{target_namespace}-{name}" if target_namespace else name
    if len(full) <= MAX_RELEASE_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:12]
    return f"{full[:40]}-{digest}"
