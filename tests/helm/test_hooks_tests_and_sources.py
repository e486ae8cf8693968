"""HelmReleases with Helm hooks and tests (run as Jobs and Pods by kubelite),
and with the real source service resolving their charts from a chart
repository served over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from helmrelease_helpers import CONFIGMAP, SETTINGS, chart, condition, helmrelease, running

from fluxbus_common.bus import Bus
from fluxbus_common.runtime import EventRecorder
from fluxbus_common.testing.plugin import running_runtime
from fluxbus_common.workdir import WorkDirs
from fluxbus_helmsdk.testing import ChartRepo, make_chart
from fluxbus_source.helmcharts import ChartEngine
from fluxbus_source.helmhttp import HelmHTTP
from fluxbus_source.reconcilers import HelmChartReconciler, HelmRepositoryReconciler

HOOK_JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-upgrade
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: run
          image: busybox:1
          command: ["sh", "-c", "exit {{ .Values.hookExit | default 0 }}"]
"""
TEST_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-check
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  restartPolicy: Never
  containers:
    - name: check
      image: busybox:1
      command: ["sh", "-c", "exit {{ .Values.testExit | default 0 }}"]
"""
REMEDIATE = {"remediation": {"remediateLastFailure": True}}


async def test_a_failing_pre_upgrade_hook_job_is_remediated_by_rollback(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    data = chart(templates={"configmap.yaml": CONFIGMAP, "hook.yaml": HOOK_JOB})
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web", values={"mode": "one"}, upgrade=REMEDIATE))
        await env.publish_chart("default", "default-web", data)
        await env.ready(key)
        await env.apply(
            helmrelease("web", values={"mode": "two", "hookExit": 3}, upgrade=REMEDIATE)
        )
        st = await env.until(key, "Remediated", "True", "RollbackSucceeded")

        assert condition(st, "Released")["reason"] == "UpgradeFailed"
        assert "pre-upgrade hooks failed" in condition(st, "Released")["message"]
        assert [(r.revision, r.status) for r in await env.history("web")] == [
            (1, "superseded"),
            (2, "failed"),
            (3, "deployed"),
        ]
        assert env.get("configmap", "web-settings")["data"]["mode"] == "one"


async def test_a_failing_helm_test_is_recorded_and_remediated(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    data = chart(templates={"configmap.yaml": CONFIGMAP, "test.yaml": TEST_POD})
    spec = {"test": {"enable": True}, "upgrade": REMEDIATE}
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web", values={"mode": "one"}, **spec))
        await env.publish_chart("default", "default-web", data)
        st = await env.until(key, "TestSuccess", "True", "TestSucceeded")
        assert condition(st, "TestSuccess")["message"] == (
            "Helm test succeeded for release default/web.v1 with chart demo@0.1.0: "
            "1 test hook completed successfully"
        )
        assert st["history"][0]["testHooks"] == {"web-check": {"phase": "Succeeded"}}

        await env.apply(helmrelease("web", values={"mode": "two", "testExit": 1}, **spec))
        st = await env.until(key, "Remediated", "True", "RollbackSucceeded")

        failed = next(s for s in st["history"] if s["version"] == 2)
        assert failed["testHooks"]["web-check"]["phase"] == "Failed"
        assert condition(st)["status"] == "False"
        assert [(r.revision, r.status) for r in await env.history("web")] == [
            (1, "superseded"),
            (2, "superseded"),
            (3, "deployed"),
        ]


@contextlib.asynccontextmanager
async def source_service(bus: Bus, tmp_path: Path) -> AsyncIterator[None]:
    """The source service's Helm kinds, as its `app.run` wires them."""
    recorder = EventRecorder(bus, "source-controller", "test")
    http = HelmHTTP()
    engine = ChartEngine()
    workdirs = WorkDirs(tmp_path / "source-work")
    try:
        async with contextlib.AsyncExitStack() as stack:
            for r in (
                HelmRepositoryReconciler(bus, http, recorder, workdirs),
                HelmChartReconciler(bus, http, engine, recorder, workdirs),
            ):
                await stack.enter_async_context(running_runtime(bus, r, SETTINGS, service="source"))
            yield
    finally:
        await engine.aclose()


async def test_the_source_service_resolves_the_chart_from_a_helm_repository(
    bus: Bus, kubelite: Any, chart_repo: ChartRepo, tmp_path: Path
):
    await chart_repo.add(make_chart(tmp_path / "charts", "demo", "0.1.0"))
    await chart_repo.add(make_chart(tmp_path / "charts", "demo", "0.2.0"))
    repo = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "charts", "namespace": "default"},
        "spec": {"interval": "1h", "url": chart_repo.url},
    }
    async with source_service(bus, tmp_path), running(bus, kubelite, tmp_path / "h") as env:
        await env.apply(repo)
        pinned = {
            "spec": {
                "chart": "demo",
                "version": "0.1.0",
                "sourceRef": {"kind": "HelmRepository", "name": "charts"},
            }
        }
        key = await env.apply(helmrelease("web", chart=pinned))
        st = await env.until(key, "Ready", "True", "InstallSucceeded", timeout=30)
        assert st["history"][0]["chartVersion"] == "0.1.0"

        pinned["spec"]["version"] = "0.2.0"
        await env.apply(helmrelease("web", chart=pinned))
        st = await env.until(key, "Ready", "True", "UpgradeSucceeded", timeout=30)
        assert condition(st)["message"] == (
            "Helm upgrade succeeded for release default/web.v2 with chart demo@0.2.0"
        )
        assert [r.chart_version for r in await env.history("web")] == ["0.1.0", "0.2.0"]
