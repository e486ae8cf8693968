"""Condition types and reasons (Flux's CamelCase strings) and pure helpers
to read and set conditions. Event reasons equal condition reasons.

Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ConditionType(StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    HEALTHY = "Healthy"
    ARTIFACT_IN_STORAGE = "ArtifactInStorage"
    FETCH_FAILED = "FetchFailed"
    STORAGE_OPERATION_FAILED = "StorageOperationFailed"
    INCLUDE_UNAVAILABLE = "IncludeUnavailable"
    ARTIFACT_OUTDATED = "ArtifactOutdated"
    BUILD_FAILED = "BuildFailed"
    DRIFTED = "Drifted"
    """fluxbus: a report-only Kustomization's objects differ from what it applied."""


class Reason(StrEnum):
    # generic (fluxcd/pkg/apis/meta)
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    PROGRESSING = "Progressing"
    PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
    SUSPENDED = "Suspended"
    DEPENDENCY_NOT_READY = "DependencyNotReady"
    RECONCILIATION_SUCCEEDED = "ReconciliationSucceeded"
    RECONCILIATION_FAILED = "ReconciliationFailed"
    HEALTH_CHECK_FAILED = "HealthCheckFailed"
    HEALTH_CHECK_CANCELED = "HealthCheckCanceled"
    GARBAGE_COLLECTION_SUCCEEDED = "GarbageCollectionSucceeded"
    INVALID_PATH = "InvalidPath"
    INVALID_URL = "URLInvalid"
    INVALID_SPEC = "InvalidSpec"
    # source
    GIT_OPERATION_SUCCEEDED = "GitOperationSucceed"
    GIT_OPERATION_FAILED = "GitOperationFailed"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    NEW_ARTIFACT = "NewArtifact"
    ARTIFACT_UP_TO_DATE = "ArtifactUpToDate"
    STORAGE_OPERATION_FAILED = "StorageOperationFailed"
    DIRECTORY_CREATION_FAILED = "DirectoryCreationFailed"
    ARCHIVE_OPERATION_FAILED = "ArchiveOperationFailed"
    INCLUDE_UNAVAILABLE = "IncludeUnavailable"
    SIZE_LIMIT_EXCEEDED = "SizeLimitExceeded"
    # kustomize
    ARTIFACT_FAILED = "ArtifactFailed"
    BUILD_FAILED = "BuildFailed"
    PRUNE_FAILED = "PruneFailed"
    DRY_RUN_FAILED = "DryRunFailed"
    APPLY_FAILED = "ApplyFailed"
    POST_BUILD_FAILED = "PostBuildSubstitutionFailed"
    DRIFT_DETECTED = "DriftDetected"
    NO_DRIFT = "NoDrift"
    ROLLBACK_FAILED = "RollbackFailed"
    # image
    REPOSITORY_SCAN_FAILED = "ScanFailed"
    POLICY_FAILED = "PolicyFailed"
    # notification
    NOTIFICATION_DISPATCH_FAILED = "NotificationDispatchFailed"
    INVALID_CONFIG = "InvalidConfig"
    PROVIDER_NOT_FOUND = "ProviderNotFound"
    SECRET_NOT_FOUND = "SecretNotFound"
    # notifier: Receivers (notification-controller api/v1)
    TOKEN_NOT_FOUND = "TokenNotFound"
    INVALID_CEL_EXPRESSION = "InvalidCELExpression"
    VALIDATION_FAILED = "ValidationFailed"


def now_rfc3339() -> str:
    """Return the current UTC time as Kubernetes writes it (seconds, `Z`)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Condition(BaseModel):
    """A Kubernetes `metav1.Condition`, camelCase on the wire."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True
    )

    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: str = Field(default_factory=now_rfc3339)
    observed_generation: int | None = None


def get_condition(conditions: list[Condition], ctype: str) -> Condition | None:
    """Return the condition of a type, or None."""
    for cond in conditions:
        if cond.type == ctype:
            return cond
    return None


def set_condition(
    conditions: list[Condition],
    ctype: str,
    status: bool | str,
    reason: str,
    message: str,
    observed_generation: int | None = None,
) -> Condition:
    """Set (or replace) one condition in place and return it.

    lastTransitionTime changes only when the status changes, as in Kubernetes.
    """
    value = status if isinstance(status, str) else ("True" if status else "False")
    old = get_condition(conditions, ctype)
    cond = Condition(
        type=str(ctype),
        status=value,
        reason=str(reason),
        message=message,
        observed_generation=observed_generation,
    )
    if old is not None:
        if old.status == value:
            cond.last_transition_time = old.last_transition_time
        conditions[conditions.index(old)] = cond
    else:
        conditions.append(cond)
    return cond


def remove_condition(conditions: list[Condition], ctype: str) -> None:
    """Remove the condition of a type (if any) in place."""
    conditions[:] = [c for c in conditions if c.type != ctype]
