"""Helm's Go SDK against kubelite: hooks, `helm test`, and CRDs shipped in a chart's crds/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helm_charts import CONFIGMAP, helm_test_pod, job, kubectl_json, release_name, write_chart

from fluxbus_kubelite.testing import KubeliteHandle

helm = pytest.importorskip("helm_python")

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.helmsdk.example.com
spec:
  group: helmsdk.example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer}
"""

WIDGET = """\
apiVersion: helmsdk.example.com/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
spec:
  size: {{ .Values.size }}
"""


@pytest.fixture
def cfg(kl: KubeliteHandle, ns: str) -> Any:
    """A Helm configuration for the shared kubelite, releases in the test's namespace."""
    return helm.Config(kubeconfig_path=kl.kubeconfig, namespace=ns)


def hook_job(script: str, policy: str) -> str:
    annotations = {"helm.sh/hook": "pre-install,post-upgrade"}
    if policy:
        annotations["helm.sh/hook-delete-policy"] = policy
    return job("{{ .Release.Name }}-hook", script, annotations)


def test_a_kept_hook_job_runs_before_install_and_again_after_upgrade(
    kl: KubeliteHandle, ns: str, cfg: Any, tmp_path: Path
) -> None:
    templates = {
        "configmap.yaml": CONFIGMAP,
        "hook.yaml": hook_job("echo hooked", "before-hook-creation"),
    }
    chart = helm.Chart.load(write_chart(tmp_path, templates))
    name = release_name()

    cfg.install(chart, name, wait="watcher", timeout=30)
    first = kubectl_json(kl, "job", f"{name}-hook", "-n", ns)
    cfg.upgrade(chart, name, {"greeting": "again"}, wait="watcher", timeout=30)
    second = kubectl_json(kl, "job", f"{name}-hook", "-n", ns)

    assert first["status"]["succeeded"] == 1
    assert second["status"]["succeeded"] == 1
    assert second["metadata"]["uid"] != first["metadata"]["uid"]  # recreated by its policy
    hooks = {h["name"]: h for h in cfg.get_all(name)["hooks"]}
    assert hooks[f"{name}-hook"]["last_run"]["phase"] == "Succeeded"


def test_a_succeeded_hook_is_deleted_by_its_policy(
    kl: KubeliteHandle, ns: str, cfg: Any, tmp_path: Path
) -> None:
    policy = "before-hook-creation,hook-succeeded"
    templates = {"configmap.yaml": CONFIGMAP, "hook.yaml": hook_job("true", policy)}
    chart = helm.Chart.load(write_chart(tmp_path, templates))
    name = release_name()

    cfg.install(chart, name, wait="watcher", timeout=30)

    assert kubectl_json(kl, "job", f"{name}-hook", "-n", ns) is None
    assert cfg.status(name)["status"] == "deployed"


def test_a_failing_pre_install_hook_fails_the_release_before_its_templates(
    kl: KubeliteHandle, ns: str, cfg: Any, tmp_path: Path
) -> None:
    templates = {"configmap.yaml": CONFIGMAP, "hook.yaml": hook_job("echo no; exit 3", "")}
    chart = helm.Chart.load(write_chart(tmp_path, templates))
    name = release_name()

    with pytest.raises(helm.HelmError, match="failed"):
        cfg.install(chart, name, wait="watcher", timeout=30)

    assert cfg.status(name)["status"] == "failed"
    assert kubectl_json(kl, "configmap", f"{name}-config", "-n", ns) is None
    hook = kubectl_json(kl, "job", f"{name}-hook", "-n", ns)
    assert {c["type"]: c["reason"] for c in hook["status"]["conditions"]}["Failed"] == (
        "BackoffLimitExceeded"
    )


def test_helm_test_runs_the_test_pods_and_collects_their_logs(
    kl: KubeliteHandle, ns: str, cfg: Any, tmp_path: Path
) -> None:
    templates = {
        "configmap.yaml": CONFIGMAP,
        "test.yaml": helm_test_pod("{{ .Release.Name }}-check", "echo all good"),
    }
    chart = helm.Chart.load(write_chart(tmp_path, templates))
    name = release_name()
    cfg.install(chart, name, wait="watcher", timeout=30)

    result = cfg.test(name, timeout=30, logs=True)

    assert "all good" in result["logs"]
    pod = kubectl_json(kl, "pod", f"{name}-check", "-n", ns)
    assert pod["status"]["phase"] == "Succeeded"
    hooks = {h["name"]: h for h in cfg.get_all(name)["hooks"]}
    assert hooks[f"{name}-check"]["last_run"]["phase"] == "Succeeded"


def test_a_failing_test_pod_fails_helm_test(
    kl: KubeliteHandle, ns: str, cfg: Any, tmp_path: Path
) -> None:
    script = "echo checking; exit 1"
    templates = {
        "configmap.yaml": CONFIGMAP,
        "test.yaml": helm_test_pod("{{ .Release.Name }}-check", script),
    }
    chart = helm.Chart.load(write_chart(tmp_path, templates))
    name = release_name()
    cfg.install(chart, name, wait="watcher", timeout=30)

    with pytest.raises(helm.HelmError, match=f"{name}-check"):
        cfg.test(name, timeout=30)

    pod = kubectl_json(kl, "pod", f"{name}-check", "-n", ns)
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    log = kl.kubectl("logs", f"{name}-check", "-n", ns)
    assert log.stdout == "checking\n"


def test_crds_are_installed_before_the_custom_resources_that_use_them(
    kl: KubeliteHandle, ns: str, cfg: Any, tmp_path: Path
) -> None:
    chart_dir = write_chart(
        tmp_path, {"widget.yaml": WIDGET}, values={"size": 3}, crds={"widget.yaml": CRD}
    )
    chart = helm.Chart.load(chart_dir)
    name = release_name()

    cfg.install(chart, name, wait="watcher", timeout=30)
    cfg.upgrade(chart, name, {"size": 5}, wait="watcher", timeout=30)

    crd = kubectl_json(kl, "crd", "widgets.helmsdk.example.com")
    established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert established["Established"] == "True"
    assert kubectl_json(kl, "widget", f"{name}-widget", "-n", ns)["spec"] == {"size": 5}

    cfg.uninstall(name, wait="watcher", timeout=30)
    assert kubectl_json(kl, "widget", f"{name}-widget", "-n", ns) is None
    assert (
        kubectl_json(kl, "crd", "widgets.helmsdk.example.com") is not None
    )  # Helm never deletes crds/


def test_a_failing_job_in_the_templates_fails_a_waiting_install(
    kl: KubeliteHandle, ns: str, cfg: Any, tmp_path: Path
) -> None:
    templates = {"job.yaml": job("{{ .Release.Name }}-migrate", "echo migrating; exit 2")}
    chart = helm.Chart.load(write_chart(tmp_path, templates))
    name = release_name()

    with pytest.raises(helm.HelmError, match="Failed"):
        cfg.install(chart, name, wait="watcher", timeout=30)

    assert cfg.status(name)["status"] == "failed"
    migrate = kubectl_json(kl, "job", f"{name}-migrate", "-n", ns)
    assert migrate["status"]["failed"] == 1  # backoffLimit 0: the first failed pod ends it
