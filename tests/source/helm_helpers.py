"""Helpers of the Helm source tests: the GitRepository, HelmRepository and HelmChart
reconcilers run by the controller runtime against the test's nats-server, object
builders, and waits on their status."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from source_helpers import SETTINGS

from fluxbus_common.bus import Bus
from fluxbus_common.runtime import EventRecorder
from fluxbus_common.testing.plugin import running_runtime, wait_for
from fluxbus_common.workdir import WorkDirs
from fluxbus_git.client import GitClient
from fluxbus_source.helmcharts import ChartEngine
from fluxbus_source.helmhttp import HelmHTTP
from fluxbus_source.ports import ChartEnginePort
from fluxbus_source.reconcilers import (
    GitRepositoryReconciler,
    HelmChartReconciler,
    HelmRepositoryReconciler,
)

NS = "flux-system"


@contextlib.asynccontextmanager
async def helm_sources(
    bus: Bus, tmp_path: Path, engine: ChartEnginePort | None = None
) -> AsyncIterator[None]:
    """The source service's three kinds, as `app.run` wires them."""
    recorder = EventRecorder(bus, "source-controller", "test")
    git = GitClient()
    workdirs = WorkDirs(tmp_path / "work")
    http = HelmHTTP()
    own = ChartEngine() if engine is None else None
    reconcilers = (
        GitRepositoryReconciler(bus, git, recorder, workdirs),
        HelmRepositoryReconciler(bus, http, recorder, workdirs),
        HelmChartReconciler(bus, http, engine or own, recorder, workdirs),  # type: ignore[arg-type]
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            for r in reconcilers:
                await stack.enter_async_context(running_runtime(bus, r, SETTINGS, service="source"))
            yield
    finally:
        git.close()
        if own is not None:
            await own.aclose()


def helmrepository(name: str, url: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"interval": "1h", "url": url, **spec},
    }


def helmchart(name: str, chart: str, kind: str, source: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "interval": "1h",
            "chart": chart,
            "sourceRef": {"kind": kind, "name": source},
            **spec,
        },
    }


def gitrepository(name: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"interval": "1h", "url": url, "ref": {"branch": "main"}},
    }


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "stringData": data,
    }


async def apply(bus: Bus, doc: dict[str, Any]) -> None:
    key = f"{doc['kind'].lower()}.{NS}.{doc['metadata']['name']}"
    await bus.apply_object(key, doc)


async def status(bus: Bus, kind: str, name: str) -> dict[str, Any]:
    entry = await bus.get_status(f"{kind.lower()}.{NS}.{name}")
    return {} if entry is None else entry.value


def condition(st: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in st.get("conditions", []) if c["type"] == ctype), None)


async def wait_ready(
    bus: Bus, kind: str, name: str, revision: str | None = None, timeout: float = 30
) -> dict[str, Any]:
    """The status once Ready=True (with the artifact at `revision` when given)."""

    async def check() -> dict[str, Any] | None:
        st = await status(bus, kind, name)
        ready = condition(st, "Ready")
        if not ready or ready["status"] != "True":
            return None
        if revision is not None and (st.get("artifact") or {}).get("revision") != revision:
            return None
        return st

    return await wait_for(check, timeout=timeout, message=f"{kind} {name} ready at {revision}")


async def wait_failing(
    bus: Bus, kind: str, name: str, fragment: str, timeout: float = 30
) -> dict[str, Any]:
    """The status once Ready=False with `fragment` in its message."""

    async def check() -> dict[str, Any] | None:
        st = await status(bus, kind, name)
        ready = condition(st, "Ready")
        ok = ready and ready["status"] == "False" and fragment in ready["message"]
        return st if ok else None

    return await wait_for(check, timeout=timeout, message=f"{kind} {name} failing: {fragment}")


async def artifact_bytes(bus: Bus, st: dict[str, Any], tmp_path: Path) -> bytes:
    """The stored artifact, its digest and size checked against the status."""
    dest = tmp_path / "download"
    await bus.get_artifact(st["artifact"]["path"], dest)
    data = dest.read_bytes()
    assert st["artifact"]["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert st["artifact"]["size"] == len(data)
    return data


async def put_secret(bus: Bus, doc: dict[str, Any]) -> None:
    await bus.put_secret(NS, doc["metadata"]["name"], doc)
