"""Composition root of the source service: bus, Git client, the
GitRepository reconciler, served by the shared runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fluxbus_common.bus import Bus
from fluxbus_common.reconcile import Reconciler
from fluxbus_common.runtime import EventRecorder
from fluxbus_common.service import run_service
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_source.git import GitClient
from fluxbus_source.reconciler import GitRepositoryReconciler

SERVICE = "source"
CONTROLLER = "source-controller"
"""`reportingController` of events, as Flux names it (alert filters rely on it)."""


async def run(
    bus_settings: BusSettings | None = None,
    runtime_settings: RuntimeSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
    work_dir: Path | None = None,
) -> None:
    """Run the source service until stopped (SIGTERM/SIGINT or `stop`)."""
    runtime_settings = runtime_settings or RuntimeSettings.from_env()
    git = GitClient()

    async def make(bus: Bus) -> Sequence[Reconciler[Any]]:
        recorder = EventRecorder(bus, CONTROLLER, runtime_settings.instance)
        return [GitRepositoryReconciler(bus, recorder, git, work_dir=work_dir)]

    try:
        await run_service(
            SERVICE,
            make,
            bus_settings=bus_settings,
            runtime_settings=runtime_settings,
            stop=stop,
        )
    finally:
        git.close()
