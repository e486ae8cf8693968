"""Helpers of the source service tests: the GitRepository reconciler run by the
controller runtime against the test's nats-server, and status accessors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fluxbus_common.bus import Bus
from fluxbus_common.runtime import EventRecorder, Runtime
from fluxbus_common.settings import RuntimeSettings
from fluxbus_common.testing.plugin import running_runtime
from fluxbus_common.workdir import WorkDirs
from fluxbus_git.client import GitClient
from fluxbus_source.reconcilers import GitRepositoryReconciler

SETTINGS = RuntimeSettings(
    workers=2,
    shards=1,
    lease_ttl=5,
    instance="test",
    http_addr="",
    backoff_base=0.1,
    backoff_cap=1.0,
)


@contextlib.asynccontextmanager
async def source_service(bus: Bus, tmp_path: Path, keep: int = 2) -> AsyncIterator[Runtime]:
    recorder = EventRecorder(bus, "source-controller", "test")
    git = GitClient()
    reconciler = GitRepositoryReconciler(
        bus, git, recorder, WorkDirs(tmp_path), keep_artifacts=keep
    )
    try:
        async with running_runtime(bus, reconciler, SETTINGS, service="source") as runtime:
            yield runtime
    finally:
        git.close()


def gitrepository(name: str, url: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"interval": "1h", "url": url, "ref": {"branch": "main"}, **spec},
    }


def key_of(name: str) -> str:
    return f"gitrepository.flux-system.{name}"


async def status(bus: Bus, name: str) -> dict[str, Any]:
    entry = await bus.get_status(key_of(name))
    return {} if entry is None else entry.value


def ready_of(st: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in st.get("conditions", []) if c["type"] == "Ready"), None)
