"""Composition root of the kustomize service: connect the target cluster,
build the Kustomization reconciler, and run it with the shared service root
(bus, /healthz /readyz /metrics, leases, SIGTERM). Wiring only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from fluxbus_common.bus import Bus
from fluxbus_common.runtime import EventRecorder, Runtime
from fluxbus_common.service import run_service
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_kube import Cluster
from fluxbus_kustomize.reconcilers import KustomizationReconciler
from fluxbus_kustomize.remote import ClusterPool
from fluxbus_kustomize.settings import DEFAULT_HTTP_ADDR, KustomizeSettings

SERVICE = "kustomize"
CONTROLLER = "kustomize-controller"
"""`reportingController` of events, as Flux names it."""


async def run(
    *,
    bus_settings: BusSettings | None = None,
    runtime_settings: RuntimeSettings | None = None,
    settings: KustomizeSettings | None = None,
    kubeconfig: str | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[list[Runtime], int], None] | None = None,
) -> None:
    """Run the kustomize service until `stop` is set or SIGTERM/SIGINT arrives.

    The target cluster comes from `kubeconfig`, else `KUBECONFIG`, else the
    in-cluster service account. Raises ClusterError when none is usable.
    """
    runtime_settings = runtime_settings or RuntimeSettings.from_env(
        default_http_addr=DEFAULT_HTTP_ADDR
    )
    settings = settings or KustomizeSettings.from_env()
    async with contextlib.AsyncExitStack() as stack:
        cluster = await Cluster.connect(kubeconfig)
        stack.push_async_callback(cluster.close)

        async def make_reconcilers(bus: Bus) -> list[Any]:
            recorder = EventRecorder(bus, CONTROLLER, runtime_settings.instance)
            clusters = ClusterPool(cluster, bus)  # remote clusters (spec.kubeConfig)
            stack.push_async_callback(clusters.close)
            return [
                KustomizationReconciler(
                    bus, cluster, recorder=recorder, settings=settings, clusters=clusters
                )
            ]

        await run_service(
            SERVICE,
            make_reconcilers,
            bus_settings=bus_settings,
            runtime_settings=runtime_settings,
            stop=stop,
            on_ready=on_ready,
        )
