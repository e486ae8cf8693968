"""Composition root of the helm service: start Helm's worker processes (when the
`helm` extra is installed), connect the target cluster, build the HelmRelease
reconciler and run it with the shared service root (bus, /healthz /readyz
/metrics, leases, SIGTERM). Wiring only.

Without the extra the service still starts: every HelmRelease is marked
Ready=False, Stalled, with HelmUnavailable's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

import structlog

from fluxbus_common.bus import Bus
from fluxbus_common.runtime import EventRecorder, Runtime
from fluxbus_common.service import run_service
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_helm.cluster import ClusterAccess
from fluxbus_helm.ports import HelmPort
from fluxbus_helm.reconcilers import HelmReleaseReconciler
from fluxbus_helm.settings import DEFAULT_HTTP_ADDR, HelmSettings
from fluxbus_helmsdk import HelmEngine, WorkerLimits, available
from fluxbus_kube import Cluster

SERVICE = "helm"
CONTROLLER = "helm-controller"
"""`reportingController` of events, as Flux names it."""

log = structlog.get_logger("fluxbus.helm")


async def run(
    *,
    bus_settings: BusSettings | None = None,
    runtime_settings: RuntimeSettings | None = None,
    settings: HelmSettings | None = None,
    kubeconfig: str | None = None,
    helm_available: bool | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[list[Runtime], int], None] | None = None,
) -> None:
    """Run the helm service until `stop` is set or SIGTERM/SIGINT arrives.

    The target cluster comes from `kubeconfig`, else `KUBECONFIG`, else the
    in-cluster service account (raises ClusterError when none is usable).
    `helm_available` overrides the detection of the helm extra (tests).
    """
    runtime_settings = runtime_settings or RuntimeSettings.from_env(
        default_http_addr=DEFAULT_HTTP_ADDR
    )
    settings = settings or HelmSettings.from_env()
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
    usable = available() if helm_available is None else helm_available
    async with contextlib.AsyncExitStack() as stack:
        helm: HelmPort | None = None
        if usable:
            limits = WorkerLimits(
                workers=settings.workers,
                memory_bytes=settings.worker_memory,
                timeout=settings.worker_timeout,
            )
            helm = await stack.enter_async_context(HelmEngine(limits))
        else:
            log.warning("service.helm_unavailable")
        cluster = await Cluster.connect(kubeconfig)
        stack.push_async_callback(cluster.close)
        access = ClusterAccess(cluster)

        async def make_reconcilers(bus: Bus) -> list[Any]:
            recorder = EventRecorder(bus, CONTROLLER, runtime_settings.instance)
            return [
                HelmReleaseReconciler(
                    bus,
                    helm,
                    recorder=recorder,
                    settings=settings,
                    kubeconfig_path=kubeconfig,
                    cluster_get=access.get,
                    drift=access,
                    storage=access,
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
