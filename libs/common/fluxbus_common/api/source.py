"""`source.toolkit.fluxcd.io/v1` GitRepository, field for field as in Flux.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from fluxbus_common.api.meta import (
    Artifact,
    Duration,
    LocalObjectReference,
    ObjectStatus,
    SpecModel,
    ToolkitObject,
    seconds,
)

__all__ = [
    "DEFAULT_BRANCH",
    "DEFAULT_GIT_TIMEOUT",
    "SOURCE_GROUP",
    "GitRepository",
    "GitRepositoryInclude",
    "GitRepositoryRef",
    "GitRepositorySpec",
    "GitRepositoryStatus",
    "GitRepositoryVerification",
]

SOURCE_GROUP = "source.toolkit.fluxcd.io"
DEFAULT_GIT_TIMEOUT = 60.0
"""Flux's default `spec.timeout` for Git operations (`60s`)."""
DEFAULT_BRANCH = "master"
"""Flux checks out `master` when `spec.ref` is missing or empty."""


class GitRepositoryRef(SpecModel):
    """The Git reference to check out. Later fields win: commit > name > semver > tag > branch."""

    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    name: str | None = None
    commit: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.branch or self.tag or self.semver or self.name or self.commit)


class GitRepositoryVerification(SpecModel):
    """Commit/tag signature verification. `head` is the legacy spelling of `HEAD`."""

    mode: Literal["head", "HEAD", "Tag", "TagAndHEAD"] | None = None
    secret_ref: LocalObjectReference


class GitRepositoryInclude(SpecModel):
    """Another GitRepository whose artifact is copied into this one's."""

    repository: LocalObjectReference
    from_path: str | None = None
    to_path: str | None = None

    @property
    def effective_to_path(self) -> str:
        """`toPath`, defaulting to the included repository's name (as Flux does)."""
        return self.to_path or self.repository.name


GIT_URL_SCHEMES = ("http://", "https://", "ssh://")
"""What `spec.url` may start with: source-controller's CRD pattern `^(http|https|ssh)://.*$`."""


def _without_userinfo(url: str) -> str:
    """Return `url` with any `user:password@` replaced by `***@` (safe to show)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{path}"


class GitRepositorySpec(SpecModel):
    """Desired state of a GitRepository (source-controller api/v1).

    `url` is checked against Flux's CRD pattern here, at the door (`fluxbus
    apply`, a Kustomization storing it), rather than only by the source
    service, which would refuse it on every reconcile anyway.
    """

    url: str
    secret_ref: LocalObjectReference | None = None
    provider: Literal["generic", "aws", "azure", "github"] | None = None
    service_account_name: str | None = None
    interval: Duration
    timeout: Duration | None = None
    ref: GitRepositoryRef | None = None
    verify: GitRepositoryVerification | None = None
    proxy_secret_ref: LocalObjectReference | None = None
    ignore: str | None = None
    suspend: bool = False
    recurse_submodules: bool = False
    include: list[GitRepositoryInclude] = Field(default_factory=list)
    sparse_checkout: list[str] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, url: str) -> str:
        if not url.strip().lower().startswith(GIT_URL_SCHEMES):
            raise ValueError(
                f"'{_without_userinfo(url)}' is refused: a GitRepository URL must start with "
                "http://, https:// or ssh:// (file:// URLs, local paths and the scp-like "
                "'git@host:path' form are never fetched)"
            )
        return url

    @property
    def interval_seconds(self) -> float:
        return seconds(self.interval, 0.0)

    @property
    def timeout_seconds(self) -> float:
        """`spec.timeout` in seconds; Flux's default is 60 s."""
        return seconds(self.timeout, DEFAULT_GIT_TIMEOUT)

    @property
    def effective_ref(self) -> GitRepositoryRef:
        """`spec.ref`, or `{branch: master}` when it is missing or empty (Flux's default)."""
        if self.ref is None or self.ref.is_empty:
            return GitRepositoryRef(branch=DEFAULT_BRANCH)
        return self.ref

    @property
    def effective_provider(self) -> str:
        return self.provider or "generic"


class GitRepositoryStatus(ObjectStatus):
    """Observed state of a GitRepository."""

    artifact: Artifact | None = None
    included_artifacts: list[Artifact] = Field(default_factory=list)
    observed_ignore: str | None = None
    observed_recurse_submodules: bool | None = None
    observed_include: list[GitRepositoryInclude] = Field(default_factory=list)
    observed_sparse_checkout: list[str] = Field(default_factory=list)
    source_verification_mode: str | None = None


class GitRepository(ToolkitObject[GitRepositorySpec, GitRepositoryStatus]):
    """A Git repository to fetch and archive as an artifact."""

    api_version: Literal["source.toolkit.fluxcd.io/v1"] = "source.toolkit.fluxcd.io/v1"
    kind: Literal["GitRepository"] = "GitRepository"
    spec: GitRepositorySpec
    status: GitRepositoryStatus = Field(default_factory=GitRepositoryStatus)
