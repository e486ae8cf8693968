"""`status.history` of a HelmRelease: snapshots of Helm release revisions as
helm-controller observes them, newest first, and the operations Flux runs on
them (latest, the previous good one, truncation, test hooks).

A snapshot's `digest` is the `sha256:` of the release as observed (name,
namespace, version, status, chart, config, manifest, times) without its test
hook results, so running tests does not make a release look foreign.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fluxbus_common.api.helm import HelmSnapshot
from fluxbus_helm.logic.values import config_digest

HELM_API_VERSION = "v2"
"""Helm's chart API version, as Flux records it in snapshots."""
DEFAULT_MAX_HISTORY = 5
"""Snapshots kept when no previous good one bounds the history (Flux's default)."""
GOOD = ("deployed", "superseded")
FAILED_PHASE = "Failed"


class ReleaseLike(Protocol):
    """What a snapshot is made of (`fluxbus_helmsdk.Release` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def revision(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def chart_name(self) -> str: ...
    @property
    def chart_version(self) -> str: ...
    @property
    def app_version(self) -> str | None: ...
    @property
    def manifest(self) -> str: ...
    @property
    def first_deployed(self) -> str: ...
    @property
    def last_deployed(self) -> str: ...
    @property
    def deleted(self) -> str | None: ...
    @property
    def config(self) -> dict[str, Any]: ...


def release_digest(rls: ReleaseLike) -> str:
    """Return the `sha256:` digest of a release as observed (test results excluded)."""
    observed = {
        "name": rls.name,
        "namespace": rls.namespace,
        "version": rls.revision,
        "status": rls.status,
        "chart": [rls.chart_name, rls.chart_version, rls.app_version or ""],
        "config": rls.config or {},
        "manifest": rls.manifest,
        "firstDeployed": rls.first_deployed,
        "lastDeployed": rls.last_deployed,
        "deleted": rls.deleted or "",
    }
    data = json.dumps(observed, sort_keys=True, separators=(",", ":"), default=str).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def snapshot(
    rls: ReleaseLike,
    action: str | None = None,
    test_hooks: dict[str, dict[str, str]] | None = None,
) -> HelmSnapshot:
    """Return the history snapshot of a release (`action`: what produced it)."""
    return HelmSnapshot(
        api_version=HELM_API_VERSION,
        digest=release_digest(rls),
        name=rls.name,
        namespace=rls.namespace,
        version=rls.revision,
        status=rls.status,
        action=action,
        chart_name=rls.chart_name,
        chart_version=rls.chart_version,
        app_version=rls.app_version or None,
        config_digest=config_digest(rls.config),
        first_deployed=rls.first_deployed,
        last_deployed=rls.last_deployed,
        deleted=rls.deleted or None,
        test_hooks=test_hooks,
    )


def test_hooks_of(hooks: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Return `snapshot.testHooks` from test hook phases by name."""
    return {name: {"phase": phase} for name, phase in sorted(hooks.items())}


def full_name(snap: HelmSnapshot) -> str:
    """`<namespace>/<name>.v<version>` as Flux prints a release."""
    return f"{snap.namespace}/{snap.name}.v{snap.version}"


def versioned_chart(snap: HelmSnapshot) -> str:
    """`<chart>@<version>` as Flux prints a chart."""
    return f"{snap.chart_name}@{snap.chart_version}"


def has_been_tested(snap: HelmSnapshot | None) -> bool:
    return snap is not None and snap.test_hooks is not None


def has_failed_test(snap: HelmSnapshot) -> bool:
    return any(h.get("phase") == FAILED_PHASE for h in (snap.test_hooks or {}).values())


def by_version(history: Sequence[HelmSnapshot]) -> list[HelmSnapshot]:
    """Return the snapshots newest (highest version) first."""
    return sorted(history, key=lambda s: s.version, reverse=True)


def latest(history: Sequence[HelmSnapshot]) -> HelmSnapshot | None:
    ordered = by_version(history)
    return ordered[0] if ordered else None


def previous(history: Sequence[HelmSnapshot], ignore_tests: bool) -> HelmSnapshot | None:
    """Return the newest good (deployed/superseded) snapshot before the latest whose
    tests did not fail (unless ignored): the rollback target."""
    for snap in by_version(history)[1:]:
        if snap.status in GOOD and (ignore_tests or not has_failed_test(snap)):
            return snap
    return None


def truncate(history: Sequence[HelmSnapshot], ignore_tests: bool) -> list[HelmSnapshot]:
    """Keep the snapshots down to the previous good one (Flux's Truncate), else the
    newest DEFAULT_MAX_HISTORY."""
    ordered = by_version(history)
    for i, snap in enumerate(ordered[1:], start=1):
        if snap.status in GOOD and (ignore_tests or not has_failed_test(snap)):
            return ordered[: i + 1]
    return ordered[:DEFAULT_MAX_HISTORY]


def record(history: Sequence[HelmSnapshot], snap: HelmSnapshot) -> list[HelmSnapshot]:
    """Return the history with `snap` replacing the snapshot of the same release
    version, or added as the newest (Flux's observeRelease)."""
    out = [s for s in history if not (s.name == snap.name and s.version == snap.version)]
    return by_version([snap, *out])


def sync_statuses(
    history: Sequence[HelmSnapshot], stored: Mapping[int, ReleaseLike]
) -> list[HelmSnapshot]:
    """Return the history with each snapshot's status refreshed from the stored
    release of the same version (an upgrade supersedes the previous release)."""
    out = []
    for snap in history:
        rls = stored.get(snap.version)
        if rls is not None and rls.name == snap.name and rls.status != snap.status:
            fresh = snapshot(rls, snap.action, snap.test_hooks)
            out.append(fresh)
        else:
            out.append(snap)
    return by_version(out)
