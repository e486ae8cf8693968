"""The contracts the HelmRelease reconciler works through.

`HelmPort` is what it needs from Helm (`fluxbus_helmsdk.HelmEngine` satisfies
it); `HelmStore` what it needs from the fluxbus store (the common ports
combined; `fluxbus_common.bus.Bus` satisfies it); `ObjectGetter` reads one
object of the target cluster (ConfigMaps/Secrets of `valuesFrom`) and
`DriftPort` compares and corrects a release's objects (drift detection).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from fluxbus_common.ports import ArtifactStore, ObjectStore, SecretReader, StatusReader
from fluxbus_helmsdk import ChartInfo, KubeTarget, Release, TestResult


class HelmPort(Protocol):
    """The Helm actions the reconciler runs (`fluxbus_helmsdk.HelmEngine`)."""

    async def chart_info(self, chart: bytes) -> ChartInfo: ...

    async def install(
        self,
        target: KubeTarget,
        chart: bytes,
        release_name: str,
        values: Mapping[str, Any],
        *,
        namespace: str,
        storage_namespace: str,
        timeout: float,
        wait: bool = True,
        wait_for_jobs: bool = True,
        create_namespace: bool = False,
        disable_hooks: bool = False,
        skip_crds: bool = False,
        replace: bool = False,
        disable_schema_validation: bool = False,
        description: str | None = None,
        dry_run: bool = False,
    ) -> Release: ...

    async def upgrade(
        self,
        target: KubeTarget,
        chart: bytes,
        release_name: str,
        values: Mapping[str, Any],
        *,
        namespace: str,
        storage_namespace: str,
        timeout: float,
        wait: bool = True,
        wait_for_jobs: bool = True,
        force: bool = False,
        cleanup_on_fail: bool = False,
        max_history: int = 0,
        disable_hooks: bool = False,
        skip_crds: bool = False,
        disable_schema_validation: bool = False,
        description: str | None = None,
        dry_run: bool = False,
    ) -> Release: ...

    async def rollback(
        self,
        target: KubeTarget,
        release_name: str,
        *,
        storage_namespace: str,
        version: int | None = None,
        timeout: float,
        wait: bool = True,
        force: bool = False,
        recreate: bool = False,
        cleanup_on_fail: bool = False,
        disable_hooks: bool = False,
        max_history: int = 0,
    ) -> None: ...

    async def uninstall(
        self,
        target: KubeTarget,
        release_name: str,
        *,
        storage_namespace: str,
        timeout: float,
        keep_history: bool = False,
        wait: bool = True,
        disable_hooks: bool = False,
        ignore_not_found: bool = True,
    ) -> None: ...

    async def test(
        self,
        target: KubeTarget,
        release_name: str,
        *,
        storage_namespace: str,
        timeout: float,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
    ) -> TestResult: ...

    async def history(
        self, target: KubeTarget, release_name: str, *, storage_namespace: str
    ) -> list[Release]: ...

    async def status(
        self,
        target: KubeTarget,
        release_name: str,
        *,
        storage_namespace: str,
        revision: int | None = None,
    ) -> Release | None: ...


class BlobStore(Protocol):
    """Small documents in the object store."""

    async def put_blob(self, name: str, data: bytes) -> None: ...

    async def get_blob(self, name: str) -> bytes | None: ...


class HelmStore(StatusReader, ObjectStore, SecretReader, ArtifactStore, Protocol):
    """The fluxbus store as the reconciler sees it: HelmCharts (generated ones are
    written here) and their status and artifacts, dependencies' status,
    `valuesFrom` and kubeConfig Secrets/ConfigMaps."""


ObjectGetter = Callable[[str, str, str], Awaitable[dict[str, Any] | None]]
"""`get(kind, namespace, name)` of a v1 ConfigMap/Secret in the target cluster
(None: absent); raises `errors.ClusterReadError` when the cluster cannot answer."""


class DriftPort(Protocol):
    """Drift detection and correction of a release's objects on its cluster."""

    async def detect(
        self,
        target: KubeTarget,
        manifest: str,
        namespace: str,
        ignore: Sequence[Mapping[str, Any]],
    ) -> list[str]:
        """Return one line per drifted object (empty: none)."""
        ...

    async def correct(
        self,
        target: KubeTarget,
        manifest: str,
        namespace: str,
        ignore: Sequence[Mapping[str, Any]],
    ) -> list[str]:
        """Re-apply the release's objects; return one line per corrected object."""
        ...

    async def inventory(
        self, target: KubeTarget, manifest: str, namespace: str
    ) -> list[dict[str, str]]:
        """Return the release's objects as `status.inventory` entries (`id`, `v`)."""
        ...


class ReleaseStorage(Protocol):
    """Direct edits of Helm's release records (helm-controller's unlock)."""

    async def unlock(
        self, target: KubeTarget, release: str, namespace: str, revision: int, description: str
    ) -> None:
        """Mark a release revision stuck in a pending state as failed.

        Raises `errors.StorageError`."""
        ...
