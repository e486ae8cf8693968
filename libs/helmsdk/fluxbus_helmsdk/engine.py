"""`HelmEngine`: the async face of Helm for the services.

Every action is encoded as plain data (`op`, `args`), run by a transport
(`fluxbus_helmsdk.pool.WorkerPool`: Helm in worker processes with memory and
time limits) and its answer decoded into the dataclasses of
`fluxbus_helmsdk.models`. Chart archives travel base64-encoded.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict
from types import TracebackType
from typing import Any, Protocol

from .errors import HelmEngineError, HelmUnavailable, ReleaseError
from .models import ChartInfo, KubeTarget, RegistryAuth, Release, TestResult, WorkerLimits

# Cluster actions get Helm's own timeout plus this grace before the worker's time limit
# kills them: Helm's wait ends by itself and should be the one to report.
_CLUSTER_GRACE = 30.0


def available() -> bool:
    """True when helm_python (the `helm` extra) is installed.

    Looks the package up without importing it: the Go runtime it loads stays
    out of the service process.
    """
    if "helm_python" in sys.modules:
        return sys.modules["helm_python"] is not None
    try:
        return importlib.util.find_spec("helm_python") is not None
    except (ImportError, ValueError):
        return False


class Transport(Protocol):
    """Runs one Helm action; raises `HelmEngineError`s."""

    async def start(self) -> None: ...

    async def call(self, op: str, args: dict[str, Any], *, timeout: float) -> Any: ...

    async def close(self) -> None: ...


class _Sealed(str):
    """A secret string (kubeconfig, password) whose repr does not show it (tracebacks)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'"


def _seal(value: str | None) -> str | None:
    return None if value is None else _Sealed(value)


def _chart(chart: bytes) -> str:
    return base64.b64encode(chart).decode()


def _target(target: KubeTarget) -> dict[str, Any]:
    """The target for a worker, which has its own HOME and no KUBECONFIG: the default
    kubeconfig (`KUBECONFIG`'s first file, then ~/.kube/config) is named here."""
    doc = asdict(target)
    doc["kubeconfig"] = _seal(target.kubeconfig)
    if target.kubeconfig_path is not None:
        doc["kubeconfig_path"] = _absolute(target.kubeconfig_path)
    elif target.kubeconfig is None:
        doc["kubeconfig_path"] = default_kubeconfig()
    return doc


def default_kubeconfig() -> str | None:
    """The kubeconfig file kubectl would read, or None (in-cluster configuration)."""
    candidates = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    candidates.append(os.path.expanduser("~/.kube/config"))
    return next((p for p in candidates if os.path.isfile(p)), None)


def _same_storage(namespace: str, storage_namespace: str) -> None:
    """helm-c 0.2.2 keeps a release's records in the release's own namespace: it has no
    separate storage namespace (Flux's `storageNamespace` apart from `targetNamespace`)."""
    if storage_namespace != namespace:
        raise ReleaseError(
            f"the Helm engine stores a release in its target namespace {namespace!r}; "
            f"a separate storage namespace ({storage_namespace!r}) is not supported"
        )


def _absolute(path: str) -> str:
    """`path` made absolute: the worker's working directory is its own."""
    return os.path.abspath(path)


def _auth(auth: RegistryAuth | None) -> dict[str, Any] | None:
    if auth is None:
        return None
    doc = asdict(auth)
    doc["password"] = _seal(auth.password)
    doc["key_pem"] = _seal(auth.key_pem)
    return doc


class HelmEngine:
    """Helm actions, run in worker processes: `async with HelmEngine(limits) as engine:`.

    Without the `helm` extra every action raises `HelmUnavailable`.
    """

    def __init__(self, limits: WorkerLimits | None = None, *, transport: Transport | None = None):
        self.limits = limits or WorkerLimits()
        self._transport = transport
        self._started = False
        self._closed = False

    async def __aenter__(self) -> HelmEngine:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Prepare the workers (they start on first use)."""
        if self._closed:
            raise HelmEngineError("the Helm engine is closed")
        if self._started or not available():
            return
        if self._transport is None:
            from .pool import WorkerPool

            self._transport = WorkerPool(self.limits)
        await self._transport.start()
        self._started = True

    async def close(self) -> None:
        """Stop every worker and wait for it to exit; later calls raise HelmEngineError."""
        self._closed = True
        if self._transport is not None and self._started:
            self._started = False
            await self._transport.close()

    def worker_pids(self, *, busy: bool | None = None) -> list[int]:
        """Process ids of the running workers (all, or only the busy or idle ones)."""
        pids = getattr(self._transport, "pids", None)
        return list(pids(busy=busy)) if callable(pids) else []

    async def _call(self, op: str, args: dict[str, Any], *, helm_timeout: float = 0.0) -> Any:
        if not available():
            raise HelmUnavailable()
        if not self._started:
            await self.start()
        assert self._transport is not None
        limit = self.limits.timeout
        if helm_timeout:
            limit = max(limit, helm_timeout + _CLUSTER_GRACE)
        return await self._transport.call(op, args, timeout=limit)

    # ------------------------------------------------------------------ charts

    async def chart_info(self, chart: bytes) -> ChartInfo:
        """Name, version, appVersion, default values and dependency names of a chart archive."""
        doc = await self._call("chart_info", {"chart": _chart(chart)})
        return ChartInfo(
            name=doc["name"],
            version=doc["version"],
            app_version=doc.get("app_version"),
            values=doc.get("values") or {},
            dependencies=list(doc.get("dependencies") or []),
        )

    async def render(
        self,
        chart: bytes,
        values: Mapping[str, Any],
        *,
        release_name: str,
        namespace: str,
        revision: int = 1,
        is_upgrade: bool = False,
    ) -> dict[str, str]:
        """Render offline: `{template path: YAML}`. Raises RenderError, ValuesError, ChartLoadError."""
        rendered: dict[str, str] = await self._call(
            "render",
            {
                "chart": _chart(chart),
                "values": dict(values),
                "release_name": release_name,
                "namespace": namespace,
                "revision": revision,
                "is_upgrade": is_upgrade,
            },
        )
        return rendered

    async def package(
        self,
        chart_dir: str,
        dest_dir: str,
        *,
        version: str | None = None,
        values_yaml: str | None = None,
    ) -> str:
        """Package a chart directory; returns the path of `<name>-<version>.tgz` in `dest_dir`.

        `version` overrides Chart.yaml's; `values_yaml` replaces values.yaml in the archive.
        """
        path: str = await self._call(
            "package",
            {
                "chart_dir": _absolute(chart_dir),
                "dest_dir": _absolute(dest_dir),
                "version": version,
                "values_yaml": values_yaml,
            },
        )
        return path

    async def oci_tags(self, ref: str, *, auth: RegistryAuth | None = None) -> list[str]:
        """The semver tags of `oci://host/path/chart`, newest first. Raises RegistryError."""
        tags: list[str] = await self._call("oci_tags", {"ref": ref, "auth": _auth(auth)})
        return tags

    async def oci_pull(self, ref: str, version: str, *, auth: RegistryAuth | None = None) -> bytes:
        """The `.tgz` of `oci://host/path/chart` at `version`. Raises RegistryError."""
        data = await self._call("oci_pull", {"ref": ref, "version": version, "auth": _auth(auth)})
        return base64.b64decode(data)

    async def oci_push(
        self, archive: str, remote: str, *, auth: RegistryAuth | None = None
    ) -> None:
        """Push a packaged chart to `oci://host/path` (name and version from the archive)."""
        await self._call(
            "oci_push",
            {"path": _absolute(archive), "remote": remote, "auth": _auth(auth)},
        )

    async def repo_index(self, directory: str, *, base_url: str | None = None) -> dict[str, Any]:
        """`helm repo index`: writes `directory/index.yaml` for its archives; returns the index."""
        index: dict[str, Any] = await self._call(
            "repo_index", {"directory": _absolute(directory), "base_url": base_url}
        )
        return index

    # ---------------------------------------------------------------- releases

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
    ) -> Release:
        """Install `chart` as `release_name`; returns the new release. Raises ReleaseError & co.

        `storage_namespace` must equal `namespace` (see `_same_storage`).
        """
        _same_storage(namespace, storage_namespace)
        doc = await self._call(
            "install",
            {
                "target": _target(target),
                "chart": _chart(chart),
                "release_name": release_name,
                "values": dict(values),
                "namespace": namespace,
                "storage_namespace": storage_namespace,
                "timeout": timeout,
                "wait": wait,
                "wait_for_jobs": wait_for_jobs,
                "create_namespace": create_namespace,
                "disable_hooks": disable_hooks,
                "skip_crds": skip_crds,
                "replace": replace,
                "disable_schema_validation": disable_schema_validation,
                "description": description,
                "dry_run": dry_run,
            },
            helm_timeout=timeout,
        )
        return Release.from_wire(doc)

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
    ) -> Release:
        """Upgrade `release_name` to `chart` with exactly `values`; returns the new revision.

        `storage_namespace` must equal `namespace` (see `_same_storage`).
        """
        _same_storage(namespace, storage_namespace)
        doc = await self._call(
            "upgrade",
            {
                "target": _target(target),
                "chart": _chart(chart),
                "release_name": release_name,
                "values": dict(values),
                "namespace": namespace,
                "storage_namespace": storage_namespace,
                "timeout": timeout,
                "wait": wait,
                "wait_for_jobs": wait_for_jobs,
                "force": force,
                "cleanup_on_fail": cleanup_on_fail,
                "max_history": max_history,
                "disable_hooks": disable_hooks,
                "skip_crds": skip_crds,
                "disable_schema_validation": disable_schema_validation,
                "description": description,
                "dry_run": dry_run,
            },
            helm_timeout=timeout,
        )
        return Release.from_wire(doc)

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
    ) -> None:
        """Roll back to `version` (None: the previous revision), as a new revision.

        `recreate` is accepted for Flux's API and ignored: Helm 4 has no pod recreation.
        """
        await self._call(
            "rollback",
            {
                "target": _target(target),
                "release_name": release_name,
                "storage_namespace": storage_namespace,
                "version": version,
                "timeout": timeout,
                "wait": wait,
                "force": force,
                "recreate": recreate,
                "cleanup_on_fail": cleanup_on_fail,
                "disable_hooks": disable_hooks,
                "max_history": max_history,
            },
            helm_timeout=timeout,
        )

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
    ) -> None:
        """Uninstall `release_name` (a missing release is fine unless `ignore_not_found=False`)."""
        await self._call(
            "uninstall",
            {
                "target": _target(target),
                "release_name": release_name,
                "storage_namespace": storage_namespace,
                "timeout": timeout,
                "keep_history": keep_history,
                "wait": wait,
                "disable_hooks": disable_hooks,
                "ignore_not_found": ignore_not_found,
            },
            helm_timeout=timeout,
        )

    async def test(
        self,
        target: KubeTarget,
        release_name: str,
        *,
        storage_namespace: str,
        timeout: float,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
    ) -> TestResult:
        """Run the release's test hooks: their phases; a failing test raises ReleaseError.

        `logs` stays empty: Helm would read every hook's log as a Pod's, failing Job hooks.
        """
        doc = await self._call(
            "test",
            {
                "target": _target(target),
                "release_name": release_name,
                "storage_namespace": storage_namespace,
                "timeout": timeout,
                "include": include,
                "exclude": exclude,
            },
            helm_timeout=timeout,
        )
        release = Release.from_wire(doc["release"])
        return TestResult(hooks=release.test_hooks, logs=str(doc.get("logs") or ""))

    async def history(
        self, target: KubeTarget, release_name: str, *, storage_namespace: str
    ) -> list[Release]:
        """Every stored revision of `release_name`, oldest first; [] when there is none."""
        docs = await self._call(
            "history",
            {
                "target": _target(target),
                "release_name": release_name,
                "storage_namespace": storage_namespace,
            },
        )
        releases = [Release.from_wire(d) for d in docs]
        return sorted(releases, key=lambda r: r.revision)

    async def status(
        self,
        target: KubeTarget,
        release_name: str,
        *,
        storage_namespace: str,
        revision: int | None = None,
    ) -> Release | None:
        """The latest (or the given) revision of `release_name`; None when there is none."""
        doc = await self._call(
            "status",
            {
                "target": _target(target),
                "release_name": release_name,
                "storage_namespace": storage_namespace,
                "revision": revision,
            },
        )
        return None if doc is None else Release.from_wire(doc)


__all__ = ["HelmEngine", "HelmEngineError", "Transport", "available"]
