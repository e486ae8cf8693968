"""Composition root of the source service: wiring only.

The bus (the store port), the Git client, work directories and the event
recorder go into the GitRepository reconciler; the Helm HTTP getter and Helm's
engine (started on first use, only with the helm extra) into the HelmRepository
and HelmChart reconcilers. All three are served by the shared runtime.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fluxbus_common.bus import Bus
from fluxbus_common.reconcile import Reconciler
from fluxbus_common.runtime import EventRecorder
from fluxbus_common.service import run_service
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.workdir import WorkDirs
from fluxbus_git.client import GitClient
from fluxbus_source.helmcharts import ChartEngine
from fluxbus_source.helmhttp import HelmHTTP
from fluxbus_source.reconcilers import (
    GitRepositoryReconciler,
    HelmChartReconciler,
    HelmRepositoryReconciler,
)
from fluxbus_source.settings import DEFAULT_HTTP_ADDR, SourceSettings

SERVICE = "source"
CONTROLLER = "source-controller"
"""`reportingController` of events, as Flux names it (alert filters rely on it)."""


async def run(
    bus_settings: BusSettings | None = None,
    runtime_settings: RuntimeSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
    work_dir: Path | None = None,
    settings: SourceSettings | None = None,
) -> None:
    """Run the source service until stopped (SIGTERM/SIGINT or `stop`).

    `work_dir`, when given, overrides `settings.work_dir`.
    """
    runtime_settings = runtime_settings or RuntimeSettings.from_env(
        default_http_addr=DEFAULT_HTTP_ADDR
    )
    settings = settings or SourceSettings()
    if work_dir is not None:
        settings = dataclasses.replace(settings, work_dir=work_dir)
    git = GitClient()
    workdirs = WorkDirs(settings.work_dir)
    http = HelmHTTP()
    engine = ChartEngine()
    keep = settings.keep_artifacts

    async def make(bus: Bus) -> Sequence[Reconciler[Any]]:
        recorder = EventRecorder(bus, CONTROLLER, runtime_settings.instance)
        return [
            GitRepositoryReconciler(bus, git, recorder, workdirs, keep_artifacts=keep),
            HelmRepositoryReconciler(bus, http, recorder, workdirs, keep_artifacts=keep),
            HelmChartReconciler(bus, http, engine, recorder, workdirs, keep_artifacts=keep),
        ]

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
        await engine.aclose()
