"""The helm service's typed outcomes beyond the common ones.

A `ReleaseRetry` or `ReleaseStalled` ends a reconcile whose Ready condition is
summarised from the release conditions (Released, TestSuccess, Remediated), as
helm-controller's summarize does, while the error itself sets Reconciling
(retry) or Stalled (no retry until the spec changes). `ClusterReadError` is
what the cluster reader raises instead of its library's errors.

Pure: no I/O.
"""

from __future__ import annotations

from fluxbus_common.errors import Generic, Stalling


class ReleaseRetry(Generic):
    """The release will be retried (remediation pending, RetryOnFailure, a failed
    action); Ready comes from the release conditions."""


class ReleaseStalled(Stalling):
    """No more attempts (RetriesExceeded, MissingRollbackTarget); Ready comes from
    the release conditions."""


class ClusterReadError(Exception):
    """The target cluster could not answer a read (the message names the object)."""


class DriftError(Exception):
    """Drift detection or correction could not talk to the cluster (names the object)."""


class StorageError(Exception):
    """Helm's release storage could not be read or written directly (unlock)."""
