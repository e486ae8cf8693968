"""`image.toolkit.fluxcd.io` ImageRepository, ImagePolicy and ImageUpdateAutomation.

Both `v1` (current) and `v1beta2` manifests are accepted: the v1beta2 specs
are a subset of v1 for everything fluxbus reads, and the apiVersion a manifest
was written with is kept. Defaults follow Flux's getters:
- ImageRepository timeout: `spec.timeout`, else the interval; at least 1 s.
- ImageRepository exclusionList: `["^.*\\.sig$"]`; provider: `generic`.
- ImagePolicy digestReflectionPolicy: `Never`; its interval only applies
  with `Always` and then defaults to 10 m.
- ImageUpdateAutomation update: `{strategy: Setters}`; sourceRef kind: GitRepository.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fluxbus_common.api.meta import (
    AccessFrom,
    Duration,
    LabelSelector,
    LocalObjectReference,
    LooseModel,
    NamespacedObjectReference,
    ObjectStatus,
    SpecModel,
    ToolkitObject,
    seconds,
)
from fluxbus_common.api.source import GitRepositoryRef

__all__ = [
    "DEFAULT_EXCLUSION_LIST",
    "DEFAULT_POLICY_INTERVAL",
    "IMAGE_GROUP",
    "MIN_IMAGE_SCAN_TIMEOUT",
    "AlphabeticalPolicy",
    "CommitSpec",
    "CommitUser",
    "GitCheckoutSpec",
    "GitSpec",
    "ImagePolicy",
    "ImagePolicyChoice",
    "ImagePolicySpec",
    "ImagePolicyStatus",
    "ImageRef",
    "ImageRepository",
    "ImageRepositorySpec",
    "ImageRepositoryStatus",
    "ImageUpdateAutomation",
    "ImageUpdateAutomationSpec",
    "ImageUpdateAutomationStatus",
    "ImageUpdateSourceReference",
    "NumericalPolicy",
    "PushSpec",
    "ScanResult",
    "SemVerPolicy",
    "SigningKey",
    "TagFilter",
    "UpdateStrategy",
]

IMAGE_GROUP = "image.toolkit.fluxcd.io"
ImageApiVersion = Literal["image.toolkit.fluxcd.io/v1", "image.toolkit.fluxcd.io/v1beta2"]

DEFAULT_EXCLUSION_LIST: tuple[str, ...] = (r"^.*\.sig$",)
"""Flux skips cosign signature tags unless told otherwise."""
MIN_IMAGE_SCAN_TIMEOUT = 1.0
"""Flux's ImageRepository GetTimeout() never returns less than one second."""
DEFAULT_POLICY_INTERVAL = 600.0
"""ImagePolicy re-reads the latest digest every 10 m when digestReflectionPolicy is Always."""


# -- ImageRepository ----------------------------------------------------------------------------


class ImageRepositorySpec(SpecModel):
    """Desired state of an ImageRepository (image-reflector-controller api/v1)."""

    image: str
    interval: Duration
    timeout: Duration | None = None
    secret_ref: LocalObjectReference | None = None
    proxy_secret_ref: LocalObjectReference | None = None
    service_account_name: str | None = Field(default=None, max_length=253)
    cert_secret_ref: LocalObjectReference | None = None
    suspend: bool = False
    access_from: AccessFrom | None = None
    exclusion_list: list[str] | None = Field(default=None, max_length=25)
    provider: Literal["generic", "aws", "azure", "gcp"] | None = None
    insecure: bool = False

    @property
    def interval_seconds(self) -> float:
        return seconds(self.interval, 0.0)

    @property
    def timeout_seconds(self) -> float:
        """Flux's GetTimeout(): `spec.timeout`, else the interval; at least 1 s."""
        return max(seconds(self.timeout, self.interval_seconds), MIN_IMAGE_SCAN_TIMEOUT)

    @property
    def effective_exclusion_list(self) -> list[str]:
        return list(self.exclusion_list) if self.exclusion_list else list(DEFAULT_EXCLUSION_LIST)

    @property
    def effective_provider(self) -> str:
        return self.provider or "generic"


class ScanResult(LooseModel):
    revision: str | None = None
    tag_count: int = 0
    scan_time: str | None = None
    latest_tags: list[str] | None = None


class ImageRepositoryStatus(ObjectStatus):
    canonical_image_name: str | None = None
    last_scan_result: ScanResult | None = None
    observed_exclusion_list: list[str] = Field(default_factory=list)


class ImageRepository(ToolkitObject[ImageRepositorySpec, ImageRepositoryStatus]):
    """A container image repository whose tags are scanned."""

    api_version: ImageApiVersion = "image.toolkit.fluxcd.io/v1"
    kind: Literal["ImageRepository"] = "ImageRepository"
    spec: ImageRepositorySpec
    status: ImageRepositoryStatus = Field(default_factory=ImageRepositoryStatus)


# -- ImagePolicy --------------------------------------------------------------------------------


class SemVerPolicy(SpecModel):
    range: str


class AlphabeticalPolicy(SpecModel):
    """Ascending (default) selects the last tag in alphabetical order."""

    order: Literal["asc", "desc"] | None = None


class NumericalPolicy(SpecModel):
    """Ascending (default) selects the highest number."""

    order: Literal["asc", "desc"] | None = None


class ImagePolicyChoice(SpecModel):
    """Exactly one of semver, alphabetical or numerical."""

    semver: SemVerPolicy | None = None
    alphabetical: AlphabeticalPolicy | None = None
    numerical: NumericalPolicy | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ImagePolicyChoice:
        chosen = [p for p in (self.semver, self.alphabetical, self.numerical) if p is not None]
        if len(chosen) != 1:
            raise ValueError("exactly one of semver, alphabetical or numerical must be set")
        return self


class TagFilter(SpecModel):
    """A regular expression tags must match; `extract` (e.g. `$ts`) is what gets ordered."""

    pattern: str | None = None
    extract: str | None = None


class ImagePolicySpec(SpecModel):
    """Desired state of an ImagePolicy (image-reflector-controller api/v1)."""

    image_repository_ref: NamespacedObjectReference
    policy: ImagePolicyChoice
    filter_tags: TagFilter | None = None
    digest_reflection_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    interval: Duration | None = None
    suspend: bool = False

    @property
    def effective_digest_reflection_policy(self) -> str:
        return self.digest_reflection_policy or "Never"

    @property
    def interval_seconds(self) -> float:
        """Flux's GetInterval(): 0 (no periodic run) unless digestReflectionPolicy is
        Always, then `spec.interval` or 10 m."""
        if self.effective_digest_reflection_policy != "Always":
            return 0.0
        value = seconds(self.interval, DEFAULT_POLICY_INTERVAL)
        return value or DEFAULT_POLICY_INTERVAL


class ImageRef(LooseModel):
    """An image reference: name, tag and optionally the digest."""

    name: str
    tag: str
    digest: str | None = None

    def __str__(self) -> str:
        ref = f"{self.name}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref


class ImagePolicyStatus(ObjectStatus):
    """Observed state of an ImagePolicy; `latestImage`/`observedPreviousImage` are v1beta2's."""

    latest_ref: ImageRef | None = None
    observed_previous_ref: ImageRef | None = None
    latest_image: str | None = None
    observed_previous_image: str | None = None


class ImagePolicy(ToolkitObject[ImagePolicySpec, ImagePolicyStatus]):
    """How to pick the latest image from an ImageRepository's tags."""

    api_version: ImageApiVersion = "image.toolkit.fluxcd.io/v1"
    kind: Literal["ImagePolicy"] = "ImagePolicy"
    spec: ImagePolicySpec
    status: ImagePolicyStatus = Field(default_factory=ImagePolicyStatus)


# -- ImageUpdateAutomation ----------------------------------------------------------------------


class ImageUpdateSourceReference(SpecModel):
    """The GitRepository to update (the only source kind Flux supports here)."""

    api_version: str | None = None
    kind: Literal["GitRepository"] = "GitRepository"
    name: str
    namespace: str | None = None


class GitCheckoutSpec(SpecModel):
    ref: GitRepositoryRef


class CommitUser(SpecModel):
    name: str | None = None
    email: str


class SigningKey(SpecModel):
    """A Secret with a `git.asc` OpenPGP key to sign commits with."""

    secret_ref: LocalObjectReference


class CommitSpec(SpecModel):
    author: CommitUser
    signing_key: SigningKey | None = None
    message_template: str | None = None
    message_template_values: dict[str, str] | None = None


class PushSpec(SpecModel):
    branch: str | None = None
    refspec: str | None = None
    options: dict[str, str] | None = None


class GitSpec(SpecModel):
    """Where to check out, how to commit and where to push."""

    checkout: GitCheckoutSpec | None = None
    commit: CommitSpec
    push: PushSpec | None = None


class UpdateStrategy(SpecModel):
    strategy: Literal["Setters"] | None = None
    path: str | None = None


class ImageUpdateAutomationSpec(SpecModel):
    """Desired state of an ImageUpdateAutomation (image-automation-controller api/v1)."""

    source_ref: ImageUpdateSourceReference
    git: GitSpec | None = None
    interval: Duration
    policy_selector: LabelSelector | None = None
    update: UpdateStrategy | None = None
    suspend: bool = False

    @property
    def interval_seconds(self) -> float:
        return seconds(self.interval, 0.0)

    @property
    def effective_update(self) -> UpdateStrategy:
        """`spec.update` with Flux's default strategy `Setters` filled in."""
        update = self.update or UpdateStrategy()
        return UpdateStrategy(strategy=update.strategy or "Setters", path=update.path)


class ImageUpdateAutomationStatus(ObjectStatus):
    last_automation_run_time: str | None = None
    last_push_commit: str | None = None
    last_push_time: str | None = None
    observed_policies: dict[str, ImageRef] | None = None
    observed_source_revision: str | None = None


class ImageUpdateAutomation(ToolkitObject[ImageUpdateAutomationSpec, ImageUpdateAutomationStatus]):
    """Commits new image tags chosen by ImagePolicies back to Git."""

    api_version: ImageApiVersion = "image.toolkit.fluxcd.io/v1"
    kind: Literal["ImageUpdateAutomation"] = "ImageUpdateAutomation"
    spec: ImageUpdateAutomationSpec
    status: ImageUpdateAutomationStatus = Field(default_factory=ImageUpdateAutomationStatus)
