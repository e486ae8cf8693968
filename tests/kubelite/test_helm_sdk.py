"""Helm's Go SDK (helm-python-sdk) drives kubelite like a real cluster: release lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helm_charts import CONFIGMAP, DEPLOYMENT, SERVICE, kubectl_json, names, release_name, write_chart

from fluxbus_kubelite.testing import KubeliteHandle

helm = pytest.importorskip("helm_python")


@pytest.fixture
def cfg(kl: KubeliteHandle, ns: str) -> Any:
    """A Helm configuration for the shared kubelite, releases in the test's namespace."""
    return helm.Config(kubeconfig_path=kl.kubeconfig, namespace=ns)


@pytest.fixture
def chart(tmp_path: Path) -> Any:
    """A chart with a ConfigMap, a Deployment and a Service."""
    path = write_chart(
        tmp_path,
        {"configmap.yaml": CONFIGMAP, "deployment.yaml": DEPLOYMENT, "service.yaml": SERVICE},
    )
    return helm.Chart.load(path)


def release_secrets(kl: KubeliteHandle, ns: str, name: str) -> list[str]:
    return names(kl, "secrets", "-n", ns, "-l", f"owner=helm,name={name}")


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
