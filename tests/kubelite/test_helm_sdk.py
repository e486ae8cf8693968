"""Helm's Go SDK (helm-python-sdk) drives kubelite like a real cluster: the release lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helm_charts import (
    CONFIGMAP,
    DEPLOYMENT,
    SERVICE,
    job,
    kubectl_json,
    names,
    release_name,
    write_chart,
)

from fluxbus_kubelite.testing import KubeliteHandle

helm = pytest.importorskip("helm_python")

APP = {"configmap.yaml": CONFIGMAP, "deployment.yaml": DEPLOYMENT, "service.yaml": SERVICE}


@pytest.fixture
def cfg(kl: KubeliteHandle, ns: str) -> Any:
    """A Helm configuration for the shared kubelite, releases in the test's namespace."""
    return helm.Config(kubeconfig_path=kl.kubeconfig, namespace=ns)


@pytest.fixture
def chart(tmp_path: Path) -> Any:
    """A chart with a ConfigMap, a Deployment and a Service."""
    return helm.Chart.load(write_chart(tmp_path, APP))


def release_secrets(kl: KubeliteHandle, ns: str, name: str) -> list[str]:
    return names(kl, "secrets", "-n", ns, "-l", f"owner=helm,name={name}")


def revisions(cfg: Any, name: str) -> list[tuple[int, str]]:
    return [(r["revision"], r["status"]) for r in cfg.history(name)]


def test_install_waits_for_deployments_services_and_jobs_then_records_the_release(
    kl: KubeliteHandle, ns: str, cfg: Any, tmp_path: Path
) -> None:
    chart = helm.Chart.load(
        write_chart(
            tmp_path, {**APP, "job.yaml": job("{{ .Release.Name }}-migrate", "echo migrated")}
        )
    )
    name = release_name()

    release = cfg.install(chart, name, {"replicaCount": 2}, wait="watcher", timeout=30)

    assert release["status"] == "deployed"
    deployment = kubectl_json(kl, "deployment", name, "-n", ns)
    assert deployment["status"]["readyReplicas"] == 2
    migrate = kubectl_json(kl, "job", f"{name}-migrate", "-n", ns)
    assert {c["type"] for c in migrate["status"]["conditions"]} >= {"Complete"}
    assert release_secrets(kl, ns, name) == [f"sh.helm.release.v1.{name}.v1"]


def test_release_objects_are_applied_server_side_by_helm(
    kl: KubeliteHandle, ns: str, cfg: Any, chart: Any
) -> None:
    name = release_name()
    cfg.install(chart, name, wait="watcher", timeout=30)
    cfg.upgrade(chart, name, {"greeting": "bonjour"}, wait="watcher", timeout=30)

    config = kubectl_json(kl, "configmap", f"{name}-config", "-n", ns, "--show-managed-fields")
    assert config["data"] == {"greeting": "bonjour"}
    applied = [m for m in config["metadata"]["managedFields"] if m["operation"] == "Apply"]
    assert len(applied) == 1
    assert "f:greeting" in applied[0]["fieldsV1"]["f:data"]


@pytest.mark.parametrize(
    ("wait", "expected"),
    [
        pytest.param("watcher", "failed", id="a watcher wait gives up and the release fails"),
        pytest.param(None, "deployed", id="without waiting the release is deployed"),
    ],
)
def test_a_rollout_that_never_becomes_ready_fails_only_a_waiting_install(
    cfg: Any, chart: Any, wait: str | None, expected: str
) -> None:
    name = release_name()
    if wait is None:
        cfg.install(chart, name, {"tag": "broken"}, wait=wait, timeout=2)
    else:
        with pytest.raises(helm.HelmError, match=r"(?s)not ready.*context deadline exceeded"):
            cfg.install(chart, name, {"tag": "broken"}, wait=wait, timeout=2)
    assert cfg.status(name)["status"] == expected


def test_upgrade_then_rollback_to_the_first_revision(
    kl: KubeliteHandle, ns: str, cfg: Any, chart: Any
) -> None:
    name = release_name()
    cfg.install(chart, name, {"replicaCount": 1}, wait="watcher", timeout=30)
    cfg.upgrade(chart, name, {"replicaCount": 3}, wait="watcher", timeout=30)
    assert kubectl_json(kl, "deployment", name, "-n", ns)["spec"]["replicas"] == 3

    cfg.rollback(name, version=1, wait="watcher", timeout=30)

    assert revisions(cfg, name) == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
    assert kubectl_json(kl, "deployment", name, "-n", ns)["spec"]["replicas"] == 1
    assert release_secrets(kl, ns, name) == [f"sh.helm.release.v1.{name}.v{n}" for n in (1, 2, 3)]


def test_upgrade_deletes_what_the_chart_no_longer_renders(
    kl: KubeliteHandle, ns: str, cfg: Any, tmp_path: Path
) -> None:
    name = release_name()
    cfg.install(helm.Chart.load(write_chart(tmp_path / "a", APP)), name, wait="watcher", timeout=30)
    smaller = helm.Chart.load(write_chart(tmp_path / "b", {"configmap.yaml": CONFIGMAP}))

    cfg.upgrade(smaller, name, wait="watcher", timeout=30)

    assert kubectl_json(kl, "deployment", name, "-n", ns) is None
    assert kubectl_json(kl, "service", name, "-n", ns) is None
    assert kubectl_json(kl, "configmap", f"{name}-config", "-n", ns) is not None


def test_uninstall_purges_the_release_and_its_objects(
    kl: KubeliteHandle, ns: str, cfg: Any, chart: Any
) -> None:
    name = release_name()
    cfg.install(chart, name, wait="watcher", timeout=30)
    assert release_secrets(kl, ns, name) == [f"sh.helm.release.v1.{name}.v1"]

    cfg.uninstall(name, wait="watcher", timeout=30)

    assert release_secrets(kl, ns, name) == []
    assert kubectl_json(kl, "deployment", name, "-n", ns) is None
    assert kubectl_json(kl, "configmap", f"{name}-config", "-n", ns) is None
    with pytest.raises(helm.HelmNotFoundError):
        cfg.status(name)


def test_uninstall_keeping_history_leaves_an_uninstalled_revision(
    kl: KubeliteHandle, ns: str, cfg: Any, chart: Any
) -> None:
    name = release_name()
    cfg.install(chart, name, wait="watcher", timeout=30)

    cfg.uninstall(name, keep_history=True, wait="watcher", timeout=30)

    assert revisions(cfg, name) == [(1, "uninstalled")]
    assert kubectl_json(kl, "deployment", name, "-n", ns) is None
    assert [(r["name"], r["status"]) for r in cfg.list(all_states=True)] == [(name, "uninstalled")]


def test_list_reads_the_releases_of_the_namespace(cfg: Any, chart: Any) -> None:
    first, second = release_name(), release_name()
    cfg.install(chart, first, wait=None)
    cfg.install(chart, second, {"greeting": "hi"}, wait=None)
    cfg.upgrade(chart, second, wait=None)

    listed = {(r["name"], r["revision"], r["status"]) for r in cfg.list()}

    assert listed == {(first, 1, "deployed"), (second, 2, "deployed")}


def test_install_creates_the_target_namespace_when_asked(
    kl: KubeliteHandle, cfg: Any, chart: Any
) -> None:
    name = release_name()
    target = f"created-{name}"
    fresh = helm.Config(kubeconfig_path=kl.kubeconfig, namespace=target)

    fresh.install(chart, name, wait="watcher", timeout=30, create_namespace=True)

    assert kubectl_json(kl, "namespace", target)["status"]["phase"] == "Active"
    assert release_secrets(kl, target, name) == [f"sh.helm.release.v1.{name}.v1"]
    assert kubectl_json(kl, "deployment", name, "-n", target) is not None


def test_legacy_wait_reads_the_replicaset_of_the_current_template(
    kl: KubeliteHandle, ns: str, cfg: Any, chart: Any
) -> None:
    name = release_name()
    cfg.install(chart, name, {"replicaCount": 2}, wait="legacy", timeout=30)
    cfg.upgrade(chart, name, {"replicaCount": 2, "tag": "1.26"}, wait="legacy", timeout=30)

    sets = kubectl_json(kl, "replicasets", "-n", ns, "-l", f"app={name}")
    replicas = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in sets}
    assert {image: rs["spec"]["replicas"] for image, rs in replicas.items()} == {
        "nginx:1.25": 0,
        "nginx:1.26": 2,
    }
    current = replicas["nginx:1.26"]
    assert current["status"]["readyReplicas"] == 2
    owner = current["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Deployment", name, True)
    assert (
        current["metadata"]["name"]
        == f"{name}-{current['metadata']['labels']['pod-template-hash']}"
    )


STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}
spec:
  serviceName: {{ .Release.Name }}
  replicas: 2
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers: [{name: db, image: "postgres:16"}]
"""

DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers: [{name: agent, image: "fluent-bit:3"}]
"""

CLAIM = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .Release.Name }}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
"""

LOAD_BALANCER = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-public
spec:
  type: LoadBalancer
  selector: {app: {{ .Release.Name }}}
  ports: [{port: 443}]
"""

SERVER_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-server
spec:
  containers: [{name: web, image: "nginx:1.25"}]
"""


@pytest.mark.parametrize(
    "template",
    [
        pytest.param(STATEFULSET, id="StatefulSet"),
        pytest.param(DAEMONSET, id="DaemonSet"),
        pytest.param(CLAIM, id="PersistentVolumeClaim"),
        pytest.param(LOAD_BALANCER, id="LoadBalancer Service"),
        pytest.param(SERVER_POD, id="Pod"),
    ],
)
def test_the_watcher_wait_sees_each_simulated_kind_become_ready(
    cfg: Any, tmp_path: Path, template: str
) -> None:
    chart = helm.Chart.load(write_chart(tmp_path, {"object.yaml": template}))
    name = release_name()

    release = cfg.install(chart, name, wait="watcher", timeout=10)

    assert release["status"] == "deployed"
