"""helm-controller's release state machine, as data: what state the release in
Helm's storage is in compared with the HelmRelease (`determine_state`), and
which action brings it closer (`next_action`), with the install/upgrade
remediation and retry rules of the v2 API.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from fluxbus_common.api.helm import HelmRelease
from fluxbus_common.duration import parse_duration
from fluxbus_helm.logic import history as hist
from fluxbus_helm.logic.reasons import ReleaseAction

DEFAULT_RETRY_INTERVAL = 300.0
"""Flux's `strategy.retryInterval` default (5 m)."""
PENDING = ("pending-install", "pending-upgrade", "pending-rollback")


class ReleaseStatus(StrEnum):
    """The states DetermineReleaseState tells apart."""

    ABSENT = "Absent"
    UNMANAGED = "Unmanaged"
    OUT_OF_SYNC = "OutOfSync"
    LOCKED = "Locked"
    UNTESTED = "Untested"
    IN_SYNC = "InSync"
    FAILED = "Failed"


class Action(StrEnum):
    """The action reconcilers (their Flux names)."""

    INSTALL = "install"
    UPGRADE = "upgrade"
    TEST = "test"
    ROLLBACK = "rollback"
    UNINSTALL = "uninstall"
    UNLOCK = "unlock"


KIND_OF = {
    Action.INSTALL: "release",
    Action.UPGRADE: "release",
    Action.TEST: "test",
    Action.ROLLBACK: "remediate",
    Action.UNINSTALL: "remediate",
    Action.UNLOCK: "unlock",
}
"""Flux's reconciler types: an atomic release runs each type at most once."""


@dataclass(frozen=True)
class ReleaseState:
    status: ReleaseStatus
    reason: str = ""


class ExceededMaxRetries(Exception):
    """No more attempts: Stalled (RetriesExceeded) until the spec changes or a reset."""


class MissingRollbackTarget(Exception):
    """A rollback is due but no good previous release exists."""


@dataclass(frozen=True)
class Desired:
    """What the HelmRelease asks for now."""

    chart_name: str
    chart_version: str
    config_digest: str


@dataclass(frozen=True)
class Remediation:
    """The remediation of the action last attempted (Flux's GetActiveRemediation)."""

    action: str
    retries: int
    remediate_last_failure: bool
    ignore_test_failures: bool
    strategy: str

    def failures(self, obj: HelmRelease) -> int:
        st = obj.status
        return (st.install_failures if self.action == "install" else st.upgrade_failures) or 0

    def increment(self, obj: HelmRelease) -> None:
        if self.action == "install":
            obj.status.install_failures = (obj.status.install_failures or 0) + 1
        else:
            obj.status.upgrade_failures = (obj.status.upgrade_failures or 0) + 1

    def exhausted(self, obj: HelmRelease) -> bool:
        return self.retries >= 0 and self.failures(obj) > self.retries


def install_remediation(obj: HelmRelease) -> Remediation:
    r = obj.spec.install.remediation if obj.spec.install else None
    test_ignore = bool(obj.spec.test and obj.spec.test.ignore_failures)
    return Remediation(
        action="install",
        retries=r.retries if r else 0,
        remediate_last_failure=bool(r and r.remediate_last_failure),
        ignore_test_failures=test_ignore
        if r is None or r.ignore_test_failures is None
        else r.ignore_test_failures,
        strategy="uninstall",
    )


def upgrade_remediation(obj: HelmRelease) -> Remediation:
    r = obj.spec.upgrade.remediation if obj.spec.upgrade else None
    retries = r.retries if r else 0
    test_ignore = bool(obj.spec.test and obj.spec.test.ignore_failures)
    last = r.remediate_last_failure if r else None
    return Remediation(
        action="upgrade",
        retries=retries,
        remediate_last_failure=retries > 0 if last is None else last,
        ignore_test_failures=test_ignore
        if r is None or r.ignore_test_failures is None
        else r.ignore_test_failures,
        strategy=(r.strategy if r else None) or "rollback",
    )


def active_remediation(obj: HelmRelease) -> Remediation | None:
    action = obj.status.last_attempted_release_action
    if action == ReleaseAction.INSTALL:
        return install_remediation(obj)
    if action == ReleaseAction.UPGRADE:
        return upgrade_remediation(obj)
    return None


def active_retry(obj: HelmRelease) -> float | None:
    """Seconds between retries when the last action's strategy is RetryOnFailure, else None."""
    action = obj.status.last_attempted_release_action
    strategy = None
    if action == ReleaseAction.INSTALL and obj.spec.install is not None:
        strategy = obj.spec.install.strategy
    elif action == ReleaseAction.UPGRADE and obj.spec.upgrade is not None:
        strategy = obj.spec.upgrade.strategy
    if strategy is None or strategy.name != "RetryOnFailure":
        return None
    if strategy.retry_interval is None:
        return DEFAULT_RETRY_INTERVAL
    return parse_duration(str(strategy.retry_interval))


def ignore_test_failures(obj: HelmRelease) -> bool:
    remediation = active_remediation(obj)
    if remediation is not None:
        return remediation.ignore_test_failures
    return bool(obj.spec.test and obj.spec.test.ignore_failures)


def test_enabled(obj: HelmRelease) -> bool:
    return bool(obj.spec.test and obj.spec.test.enable)


def determine_state(
    obj: HelmRelease,
    last: hist.ReleaseLike | None,
    desired: Desired,
) -> ReleaseState:
    """Compare the last release in Helm's storage with the HelmRelease (Flux's
    DetermineReleaseState, before drift detection, which needs the cluster)."""
    if last is None:
        return ReleaseState(ReleaseStatus.ABSENT, "no release in storage for object")
    if last.status in PENDING:
        return ReleaseState(ReleaseStatus.LOCKED, f"release with status '{last.status}'")
    cur = hist.latest(obj.status.history)
    if cur is None:
        if last.status == "uninstalled":
            return ReleaseState(ReleaseStatus.ABSENT, "found uninstalled release in storage")
        return ReleaseState(ReleaseStatus.UNMANAGED, "found existing release in storage")
    if cur.name != last.name or cur.version != last.revision:
        return ReleaseState(
            ReleaseStatus.UNMANAGED,
            "release not observed to be made for object: "
            f"{hist.full_name(cur)} != {last.namespace}/{last.name}.v{last.revision}",
        )
    if cur.digest != hist.release_digest(last):
        return ReleaseState(ReleaseStatus.UNMANAGED, "release digest does not match")
    if last.status == "failed":
        return ReleaseState(ReleaseStatus.FAILED)
    if last.status == "uninstalled":
        return ReleaseState(ReleaseStatus.ABSENT, "found uninstalled release in storage")
    if last.status != "deployed":
        return ReleaseState(ReleaseStatus.UNMANAGED, f"unexpected release status '{last.status}'")
    if last.chart_name != desired.chart_name or last.chart_version != desired.chart_version:
        return ReleaseState(ReleaseStatus.OUT_OF_SYNC, "release chart has changed")
    if cur.config_digest != desired.config_digest:
        return ReleaseState(ReleaseStatus.OUT_OF_SYNC, "release config digest has changed")
    if test_enabled(obj):
        if not hist.has_been_tested(cur):
            return ReleaseState(ReleaseStatus.UNTESTED)
        remediation = active_remediation(obj)
        if (
            remediation is not None
            and not remediation.ignore_test_failures
            and hist.has_failed_test(cur)
        ):
            return ReleaseState(ReleaseStatus.FAILED, "release has test in failed phase")
    return ReleaseState(ReleaseStatus.IN_SYNC)


def next_action(
    obj: HelmRelease,
    state: ReleaseState,
    stored: Sequence[hist.ReleaseLike],
    *,
    force: bool = False,
) -> Action | None:
    """Return the action for a state (None: nothing to do), updating the history as
    Flux does on the way. Raises ExceededMaxRetries or MissingRollbackTarget."""
    st = obj.status
    status = state.status
    if status == ReleaseStatus.IN_SYNC:
        st.history = hist.truncate(st.history, ignore_test_failures(obj))
        return Action.UPGRADE if force else None
    if status == ReleaseStatus.LOCKED:
        return Action.UNLOCK
    if status == ReleaseStatus.ABSENT:
        if install_remediation(obj).exhausted(obj) and not force:
            raise ExceededMaxRetries("cannot install release")
        return Action.INSTALL
    if status == ReleaseStatus.UNMANAGED:
        st.history = []
        return Action.UPGRADE
    if status == ReleaseStatus.OUT_OF_SYNC:
        if upgrade_remediation(obj).exhausted(obj) and not force:
            raise ExceededMaxRetries("cannot upgrade release")
        return Action.UPGRADE
    if status == ReleaseStatus.UNTESTED:
        return Action.TEST
    # FAILED
    if active_retry(obj) is not None:
        return Action.UPGRADE
    remediation = active_remediation(obj)
    if remediation is None or remediation.failures(obj) <= 0 or force:
        return Action.UPGRADE
    if remediation.exhausted(obj) and not remediation.remediate_last_failure:
        raise ExceededMaxRetries("cannot remediate failed release")
    st.history = hist.truncate(st.history, remediation.ignore_test_failures)
    if remediation.strategy == "uninstall":
        return Action.UNINSTALL
    prev = hist.previous(st.history, remediation.ignore_test_failures)
    if prev is None:
        raise MissingRollbackTarget("cannot remediate failed release")
    found = next((r for r in stored if r.revision == prev.version and r.name == prev.name), None)
    if found is None:
        raise MissingRollbackTarget("cannot remediate failed release")
    return Action.ROLLBACK
