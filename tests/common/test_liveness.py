"""Knowing a service is alive: heartbeats judged by their ttl, each service's
instances, the controller of a kind; an in-process service writes its
heartbeat (kinds, owned shards, ready) and removes it when it stops; Flux's
per-object metrics follow an object's status and deletion."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from fluxbus_common import liveness
from fluxbus_common.bus import Bus
from fluxbus_common.liveness import Heartbeat
from fluxbus_common.metrics import Metrics
from fluxbus_common.service import run_service
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.testing.plugin import wait_for
from fluxbus_common.testing.widgets import WidgetReconciler, widget_doc

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def beat(service: str, instance: str, seen_ago: float, ttl: float = 15, **kw: object) -> Heartbeat:
    return Heartbeat.model_validate(
        {
            "service": service,
            "instance": instance,
            "lastSeen": liveness.rfc3339(NOW - timedelta(seconds=seen_ago)),
            "ttl": ttl,
            **kw,
        }
    )


@pytest.mark.parametrize(
    ("seen_ago", "ttl", "live"),
    [
        pytest.param(0, 15, True, id="just-written"),
        pytest.param(14.9, 15, True, id="within-its-ttl"),
        pytest.param(15.1, 15, False, id="past-its-ttl"),
        pytest.param(2, 1.5, False, id="short-ttl-missed"),
    ],
)
def test_a_heartbeat_is_live_for_its_ttl(seen_ago: float, ttl: float, live: bool):
    assert liveness.is_live(beat("source", "a", seen_ago, ttl), NOW) is live


def test_a_malformed_last_seen_is_not_live():
    assert not liveness.is_live(Heartbeat(service="s", instance="a", last_seen="yesterday"), NOW)


def test_missing_names_every_service_without_a_live_instance_in_order():
    beats = [
        beat("source", "a", 1),
        beat("kustomize", "k", 60),  # crashed a minute ago
        beat("notifier", "n", 2),
    ]
    assert liveness.missing(beats, NOW) == ["kustomize", "image-reflector", "helm"]


def test_by_service_lists_every_expected_service_even_without_instances():
    grouped = liveness.by_service([beat("source", "b", 0), beat("source", "a", 0)])
    assert list(grouped) == list(liveness.SERVICES)
    assert [b.instance for b in grouped["source"]] == ["a", "b"]
    assert grouped["kustomize"] == []


@pytest.mark.parametrize(
    ("kind", "service"),
    [
        pytest.param("GitRepository", "source", id="source"),
        pytest.param("kustomization", "kustomize", id="kustomize"),
        pytest.param("ImageUpdateAutomation", "image-reflector", id="image"),
        pytest.param("Receiver", "notifier", id="notifier"),
        pytest.param("HelmRelease", "helm", id="helm"),
        pytest.param("HelmChart", "source", id="helm-source"),
        pytest.param("Secret", None, id="no-controller"),
    ],
)
def test_each_kind_has_its_controller(kind: str, service: str | None):
    assert liveness.controller_of(kind) == service


def test_serving_counts_only_live_instances_reconciling_the_kind():
    beats = [
        beat("kustomize", "old", 100, kinds=["kustomization"]),
        beat("kustomize", "new", 1, kinds=["kustomization"]),
        beat("source", "s", 1, kinds=["gitrepository"]),
    ]
    assert [b.instance for b in liveness.serving(beats, "Kustomization", NOW)] == ["new"]


async def test_a_service_publishes_its_heartbeat_and_removes_it_when_it_stops(
    bus: Bus, bus_settings: BusSettings
):
    await bus.apply_object("widget.default.hb", widget_doc("hb", interval=3600))
    stop = asyncio.Event()
    settings = RuntimeSettings(
        http_addr="127.0.0.1:0", instance="hb-0", lease_ttl=3, heartbeat_interval=0.2
    )

    async def make(_: Bus) -> list[WidgetReconciler]:
        return [WidgetReconciler("hb")]

    service = asyncio.create_task(
        run_service(
            "widgets", make, bus_settings=bus_settings, runtime_settings=settings, stop=stop
        )
    )
    try:

        async def ready() -> Heartbeat | None:
            beats = [b for b in await bus.heartbeats() if b.ready and b.shards.get("widget")]
            return beats[0] if beats else None

        seen = await wait_for(ready, message="a ready heartbeat owning the widget shard")
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await service

    assert (seen.service, seen.instance, seen.kinds) == ("widgets", "hb-0", ("widget",))
    assert seen.shards == {"widget": (0,)}
    assert seen.http_port > 0
    assert seen.ttl == pytest.approx(0.6)
    assert liveness.is_live(seen, datetime.now(UTC))
    assert await bus.heartbeats() == []


def _series(metrics: Metrics, name: str) -> list[str]:
    text = generate_latest(metrics.registry).decode()
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def test_flux_metrics_follow_the_status_and_the_deletion_of_an_object():
    metrics = Metrics()
    doc = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {"suspend": False},
    }
    failing = {"conditions": [{"type": "Ready", "status": "False"}]}
    applied = {
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "Healthy", "status": "True"}],
        "lastAppliedRevision": "main@sha1:abc",
    }
    metrics.record_object(doc, failing)
    metrics.record_object(doc, applied)
    metrics.observe_reconcile("Kustomization", "flux-system", "apps", 0.25)
    info = _series(metrics, "gotk_resource_info")
    conditions = _series(metrics, "gotk_reconcile_condition")
    metrics.forget_object("Kustomization", "flux-system", "apps")

    assert info == [
        'gotk_resource_info{customresource_group="kustomize.toolkit.fluxcd.io",'
        'customresource_kind="Kustomization",customresource_version="v1",name="apps",'
        'namespace="flux-system",ready="True",revision="main@sha1:abc",suspended="false"} 1.0'
    ]
    assert (
        'gotk_reconcile_condition{kind="Kustomization",name="apps",namespace="flux-system",'
        'status="True",type="Ready"} 1.0'
    ) in conditions
    assert (
        'gotk_reconcile_condition{kind="Kustomization",name="apps",namespace="flux-system",'
        'status="True",type="Healthy"} 1.0'
    ) in conditions
    assert any(
        line.startswith('gotk_reconcile_duration_seconds_count{kind="Kustomization",name="apps"')
        for line in generate_latest(metrics.registry).decode().splitlines()
    )
    assert _series(metrics, "gotk_resource_info") == []
    assert (
        'gotk_reconcile_condition{kind="Kustomization",name="apps",namespace="flux-system",'
        'status="Deleted",type="Ready"} 1.0'
    ) in _series(metrics, "gotk_reconcile_condition")
