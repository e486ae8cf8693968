"""Typed errors of a build, each with the Flux condition reason it stands for.

Pure: no I/O.
"""

from __future__ import annotations

from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic


class BuildError(Generic):
    """The artifact could not be rendered (bad repository content or kustomize failure).

    Retried with backoff: a new commit may fix it. `reason` is Flux's `BuildFailed`.
    """

    def __init__(self, message: str, reason: str = Reason.BUILD_FAILED) -> None:
        super().__init__(message, reason)


class ArtifactRefusedError(BuildError):
    """The artifact itself is unusable: digest mismatch, not a tarball, an unsafe member
    or over the limits (`fluxbus_common.artifact.ArtifactFormatError`, with Flux's
    `ArtifactFailed` reason)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.ARTIFACT_FAILED)


class PostBuildError(BuildError):
    """Post-build variable substitution failed (Flux reports it as `BuildFailed`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.BUILD_FAILED)
