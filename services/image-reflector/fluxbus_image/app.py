"""Composition root of the image-reflector service: wiring only.

The bus (wrapped as the image store), the registry client, the Git writer and
resolver, work directories and the event recorder go into the ImageRepository,
ImagePolicy and ImageUpdateAutomation reconcilers, served by the shared runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fluxbus_common.bus import Bus
from fluxbus_common.reconcile import Reconciler
from fluxbus_common.runtime import EventRecorder
from fluxbus_common.service import run_service
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.workdir import WorkDirs
from fluxbus_git.client import GitClient
from fluxbus_git.writer import GitWriter
from fluxbus_image.reconcilers import (
    ImagePolicyReconciler,
    ImageRepositoryReconciler,
    ImageUpdateAutomationReconciler,
)
from fluxbus_image.registry import RegistryClient
from fluxbus_image.settings import DEFAULT_HTTP_ADDR, ImageSettings
from fluxbus_image.store import BusImageStore

SERVICE = "image-reflector"
REFLECTOR = "image-reflector-controller"
AUTOMATION = "image-automation-controller"
"""`reportingController` of events, as Flux names them (alert filters rely on them)."""


@contextlib.asynccontextmanager
async def _clients() -> AsyncIterator[tuple[RegistryClient, GitClient, GitWriter]]:
    registry = RegistryClient()
    git = GitClient()
    writer = GitWriter()
    try:
        yield registry, git, writer
    finally:
        await registry.close()
        git.close()
        writer.close()


async def run(
    bus_settings: BusSettings | None = None,
    runtime_settings: RuntimeSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
    settings: ImageSettings | None = None,
) -> None:
    """Run the image-reflector service until stopped (SIGTERM/SIGINT or `stop`)."""
    runtime_settings = runtime_settings or RuntimeSettings.from_env(
        default_http_addr=DEFAULT_HTTP_ADDR
    )
    settings = settings or ImageSettings()
    workdirs = WorkDirs(settings.work_dir, prefix="fluxbus-image-")
    async with _clients() as (registry, git, writer):

        async def make(bus: Bus) -> Sequence[Reconciler[Any]]:
            store = BusImageStore(bus)
            reflector = EventRecorder(bus, REFLECTOR, runtime_settings.instance)
            automation = EventRecorder(bus, AUTOMATION, runtime_settings.instance)
            return [
                ImageRepositoryReconciler(store, registry, reflector),
                ImagePolicyReconciler(
                    store, registry, reflector, dependency_requeue=settings.dependency_requeue
                ),
                ImageUpdateAutomationReconciler(store, writer, git, workdirs, automation),
            ]

        await run_service(
            SERVICE,
            make,
            bus_settings=bus_settings,
            runtime_settings=runtime_settings,
            stop=stop,
        )
