"""Release actions against a real kubelite: install, upgrade, history, status,
rollback and uninstall. Releases are stored in their own namespace (helm-c has no
separate storage namespace)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxbus_helmsdk import (
    HelmEngine,
    KubeTarget,
    KubeUnreachable,
    ReleaseError,
    ReleaseNotFound,
)
from fluxbus_helmsdk.testing import DEFAULT_TEMPLATES, make_chart, package_chart
from fluxbus_kubelite.testing import KubeliteHandle

APPS = "apps"
STORE = APPS


@pytest.fixture
def engine(kubelite: KubeliteHandle, helm_engine: HelmEngine) -> HelmEngine:
    """The engine, closed before kubelite stops (its workers hold connections to it)."""
    return helm_engine


@pytest.fixture
def target(kubelite: KubeliteHandle) -> KubeTarget:
    kubelite.ensure_namespace(APPS)
    return KubeTarget(kubeconfig=Path(kubelite.kubeconfig).read_text())


def configmap(kubelite: KubeliteHandle, name: str) -> dict[str, str] | None:
    got = kubelite.kubectl("get", "configmap", name, "-n", APPS, "-o", "json")
    return json.loads(got.stdout)["data"] if got.returncode == 0 else None


async def test_install_then_upgrade_keep_a_history_and_rollback_restores_the_first(
    engine: HelmEngine, kubelite: KubeliteHandle, target: KubeTarget, demo_chart: bytes
) -> None:
    common = {"namespace": APPS, "storage_namespace": STORE, "timeout": 30}
    installed = await engine.install(
        target, demo_chart, "web", {"replicaCount": 2}, description="first", **common
    )
    assert (installed.revision, installed.status) == (1, "deployed")
    assert (installed.namespace, installed.chart_name, installed.chart_version) == (
        APPS, "demo", "0.1.0",
    )  # fmt: skip
    assert installed.config == {"replicaCount": 2}
    assert installed.description == "first"
    assert "kind: Deployment" in installed.manifest
    assert configmap(kubelite, "web") == {"replicaCount": "2", "tag": "1.27.0", "revision": "1"}

    upgraded = await engine.upgrade(
        target, demo_chart, "web", {"image": {"tag": "1.28.0"}}, max_history=5, **common
    )
    assert (upgraded.revision, upgraded.status) == (2, "deployed")
    assert upgraded.config == {"image": {"tag": "1.28.0"}}  # the previous values are not reused
    assert configmap(kubelite, "web") == {"replicaCount": "1", "tag": "1.28.0", "revision": "2"}

    history = await engine.history(target, "web", storage_namespace=STORE)
    assert [(r.revision, r.status) for r in history] == [(1, "superseded"), (2, "deployed")]
    first = await engine.status(target, "web", storage_namespace=STORE, revision=1)
    assert first is not None and first.config == {"replicaCount": 2}

    await engine.rollback(target, "web", storage_namespace=STORE, version=1, timeout=30)
    current = await engine.status(target, "web", storage_namespace=STORE)
    assert current is not None
    assert (current.revision, current.status, current.config) == (
        3, "deployed", {"replicaCount": 2},
    )  # fmt: skip
    # a rollback re-applies revision 1's manifest as it was rendered then
    assert configmap(kubelite, "web") == {"replicaCount": "2", "tag": "1.27.0", "revision": "1"}


async def test_a_storage_namespace_apart_from_the_target_is_refused(
    engine: HelmEngine, target: KubeTarget, demo_chart: bytes
) -> None:
    with pytest.raises(ReleaseError, match="separate storage namespace"):
        await engine.install(
            target, demo_chart, "web", {}, namespace=APPS, storage_namespace="flux-system",
            timeout=10,
        )  # fmt: skip


TEST_JOB = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    helm.sh/hook: test
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: check
          image: busybox:{{ .Values.testTag }}
"""


@pytest.mark.parametrize(
    ("tag", "passes"),
    [pytest.param("1.36", True, id="passing"), pytest.param("broken", False, id="failing")],
)
async def test_helm_test_runs_the_test_hooks_and_records_their_phase(
    engine: HelmEngine, target: KubeTarget, tmp_path: Path, tag: str, passes: bool
) -> None:
    source = make_chart(
        tmp_path, "demo", templates={**DEFAULT_TEMPLATES, "test.yaml": TEST_JOB},
        values={"testTag": tag},
    )  # fmt: skip
    chart = package_chart(source, tmp_path / "dist").read_bytes()
    await engine.install(
        target, chart, "web", {}, namespace=APPS, storage_namespace=STORE, timeout=30
    )
    if passes:
        result = await engine.test(target, "web", storage_namespace=STORE, timeout=30)
        assert result.hooks == {"web-test": "Succeeded"}
    else:
        with pytest.raises(ReleaseError):
            await engine.test(target, "web", storage_namespace=STORE, timeout=1)
    release = await engine.status(target, "web", storage_namespace=STORE)
    assert release is not None and release.test_hooks.get("web-test") == (
        "Succeeded" if passes else "Failed"
    )


async def test_a_release_that_was_never_installed_has_no_status_and_no_history(
    engine: HelmEngine, target: KubeTarget
) -> None:
    assert await engine.status(target, "ghost", storage_namespace=STORE) is None
    assert await engine.history(target, "ghost", storage_namespace=STORE) == []
    with pytest.raises(ReleaseNotFound):
        await engine.rollback(target, "ghost", storage_namespace=STORE, timeout=10)


async def test_a_dry_run_install_renders_but_creates_nothing(
    engine: HelmEngine, kubelite: KubeliteHandle, target: KubeTarget, demo_chart: bytes
) -> None:
    release = await engine.install(
        target, demo_chart, "web", {"replicaCount": 4}, namespace=APPS, storage_namespace=STORE,
        timeout=30, dry_run=True,
    )  # fmt: skip
    assert "kind: ConfigMap" in release.manifest
    assert release.config == {"replicaCount": 4}
    assert configmap(kubelite, "web") is None
    assert await engine.status(target, "web", storage_namespace=STORE) is None


async def test_an_install_that_fails_in_the_cluster_is_a_release_error(
    engine: HelmEngine, target: KubeTarget, tmp_path: Path
) -> None:
    broken = {"bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: UPPER_case\n"}
    chart = package_chart(make_chart(tmp_path, "demo", templates=broken), tmp_path / "dist")
    with pytest.raises(ReleaseError):
        await engine.install(
            target, chart.read_bytes(), "web", {}, namespace=APPS, storage_namespace=STORE,
            timeout=10,
        )  # fmt: skip
    history = await engine.history(target, "web", storage_namespace=STORE)
    assert [r.status for r in history] == ["failed"]


async def test_an_unreachable_cluster_is_reported_as_such(
    engine: HelmEngine, kubelite: KubeliteHandle, target: KubeTarget
) -> None:
    assert target.kubeconfig is not None
    nowhere = KubeTarget(kubeconfig=target.kubeconfig.replace(kubelite.url, "https://127.0.0.1:1"))
    with pytest.raises(KubeUnreachable):
        await engine.status(nowhere, "web", storage_namespace=STORE)


async def test_uninstall_removes_the_objects_and_the_release(
    engine: HelmEngine, kubelite: KubeliteHandle, target: KubeTarget, demo_chart: bytes
) -> None:
    await engine.install(
        target, demo_chart, "web", {}, namespace=APPS, storage_namespace=STORE, timeout=30
    )
    await engine.uninstall(target, "web", storage_namespace=STORE, timeout=30)
    assert configmap(kubelite, "web") is None
    assert await engine.status(target, "web", storage_namespace=STORE) is None


async def test_uninstalling_a_missing_release_is_fine_unless_asked_otherwise(
    engine: HelmEngine, target: KubeTarget
) -> None:
    await engine.uninstall(target, "ghost", storage_namespace=STORE, timeout=10)
    with pytest.raises(ReleaseNotFound):
        await engine.uninstall(
            target, "ghost", storage_namespace=STORE, timeout=10, ignore_not_found=False
        )
