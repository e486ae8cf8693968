"""Condition types and reasons of helm-controller, Flux's own spelling (the
helm service's one home for them; the shared ones are `fluxbus_common.conditions`).

Pure: no I/O.
"""

from __future__ import annotations

from enum import StrEnum


class HelmCondition(StrEnum):
    """The condition types a HelmRelease carries beside Ready/Reconciling/Stalled."""

    RELEASED = "Released"
    TEST_SUCCESS = "TestSuccess"
    REMEDIATED = "Remediated"
    DRIFTED = "Drifted"


class HelmReason(StrEnum):
    """helm-controller's reasons (api/v2 and internal/reconcile)."""

    INSTALL_SUCCEEDED = "InstallSucceeded"
    INSTALL_FAILED = "InstallFailed"
    UPGRADE_SUCCEEDED = "UpgradeSucceeded"
    UPGRADE_FAILED = "UpgradeFailed"
    TEST_SUCCEEDED = "TestSucceeded"
    TEST_FAILED = "TestFailed"
    AWAITING_TESTS = "AwaitingTests"
    ROLLBACK_SUCCEEDED = "RollbackSucceeded"
    ROLLBACK_FAILED = "RollbackFailed"
    UNINSTALL_SUCCEEDED = "UninstallSucceeded"
    UNINSTALL_FAILED = "UninstallFailed"
    ARTIFACT_FAILED = "ArtifactFailed"
    INIT_FAILED = "InitFailed"
    GET_LAST_RELEASE_FAILED = "GetLastReleaseFailed"
    DEPENDENCY_NOT_READY = "DependencyNotReady"
    SOURCE_NOT_READY = "SourceNotReady"
    VALUES_ERROR = "ValuesError"
    RENDER_FAILED = "RenderFailed"
    DRIFT_DETECTED = "DriftDetected"
    NO_DRIFT_DETECTED = "NoDriftDetected"
    RETRIES_EXCEEDED = "RetriesExceeded"
    MISSING_ROLLBACK_TARGET = "MissingRollbackTarget"
    RECONCILE_ERROR = "ReconcileError"
    STATE_ERROR = "StateError"
    PENDING_RELEASE = "PendingRelease"
    HELM_CHART_CREATED = "HelmChartCreated"
    HELM_CHART_CONFIGURED = "HelmChartConfigured"
    HELM_CHART_DELETED = "HelmChartDeleted"


class ReleaseAction(StrEnum):
    """`status.lastAttemptedReleaseAction` and a snapshot's `action`."""

    INSTALL = "install"
    UPGRADE = "upgrade"
    ROLLBACK = "rollback"
    UNINSTALL_REMEDIATION = "uninstall-remediation"
