"""Typed errors of the image-reflector service, each a runtime behaviour
(`fluxbus_common.errors`' Stalling / Waiting / Generic) with its Flux reason.

The reasons are image-reflector-controller's and image-automation-controller's
(api/v1 condition_types.go), so alerts written for Flux match.

Pure: no I/O.
"""

from __future__ import annotations

from enum import StrEnum

from fluxbus_common.errors import Generic, Stalling, Waiting


class ImageReason(StrEnum):
    """Condition (and event) reasons of the three image kinds, spelled as Flux does."""

    IMAGE_URL_INVALID = "ImageURLInvalid"
    DEPENDENCY_NOT_READY = "DependencyNotReady"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    READ_OPERATION_FAILED = "ReadOperationFailed"
    INTERVAL_NOT_CONFIGURED = "IntervalNotConfigured"
    INVALID_POLICY = "InvalidPolicy"
    FAILURE = "Failure"
    """metav1.StatusFailure: what Flux reports for other ImagePolicy failures."""
    ACCESS_DENIED = "AccessDenied"
    INVALID_UPDATE_STRATEGY = "InvalidUpdateStrategy"
    INVALID_SOURCE_CONFIG = "InvalidSourceConfiguration"
    SOURCE_MANAGER_FAILED = "SourceManagerFailed"
    GIT_OPERATION_FAILED = "GitOperationFailed"
    UPDATE_FAILED = "UpdateFailed"
    INVALID_POLICY_SELECTOR = "InvalidPolicySelector"
    REMOVED_TEMPLATE_FIELD = "RemovedTemplateField"


class ScanAuthFailed(Generic):
    """Credentials could not be read or were refused by the registry."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ImageReason.AUTHENTICATION_FAILED)


class ScanFailed(Generic):
    """Listing the tags failed (unreachable, 5xx, timeout, storage)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ImageReason.READ_OPERATION_FAILED)


class PolicyInvalid(Stalling):
    """The policy (range, pattern, extract) cannot be evaluated until the spec changes."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ImageReason.INVALID_POLICY)


class DependencyNotReady(Waiting):
    """The ImageRepository (or GitRepository) is missing or has no tags yet."""

    def __init__(self, message: str, requeue_after: float) -> None:
        super().__init__(message, ImageReason.DEPENDENCY_NOT_READY, requeue_after)


class PolicyFailed(Generic):
    """Any other ImagePolicy failure (Flux: reason Failure), e.g. a digest fetch."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ImageReason.FAILURE)


class InvalidSourceConfig(Stalling):
    """The automation's source (kind, push branch, refs) is misconfigured."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ImageReason.INVALID_SOURCE_CONFIG)


class InvalidPolicySelector(Stalling):
    def __init__(self, message: str) -> None:
        super().__init__(message, ImageReason.INVALID_POLICY_SELECTOR)


class InvalidUpdateStrategy(Stalling):
    def __init__(self, message: str) -> None:
        super().__init__(message, ImageReason.INVALID_UPDATE_STRATEGY)


class SourceManagerFailed(Generic):
    """The GitRepository or its Secrets could not be read."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ImageReason.SOURCE_MANAGER_FAILED)


class GitOperationFailed(Generic):
    """Clone, commit or push failed (retried with backoff)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ImageReason.GIT_OPERATION_FAILED)


class UpdateFailed(Generic):
    """Applying the policies to the work tree failed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ImageReason.UPDATE_FAILED)


class TemplateFailed(Stalling):
    """The commit message template cannot be rendered: nothing is pushed until it is fixed."""

    def __init__(self, message: str, reason: str = ImageReason.GIT_OPERATION_FAILED) -> None:
        super().__init__(message, reason)
