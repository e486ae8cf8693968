"""`fluxbus build`, `diff`, `history`, `rollback`, `resume` and `tree` on a
Kustomization, against the real kustomize reconciler applying to kubelite."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import Cli, heartbeat
from kustomize.reconcile_helpers import (
    Env,
    configmap,
    deployment,
    kustomization,
    manifests,
    namespace,
    running,
)

from fluxbus_common import subjects
from fluxbus_common.api import Kustomization
from fluxbus_common.bus import Bus
from fluxbus_kustomize import history_output
from fluxbus_kustomize.render import owned


def app_files(image: str, *, with_config: bool = True) -> dict[str, str]:
    docs: list[dict[str, Any]] = [namespace("apps"), deployment("web", "apps", image)]
    if with_config:
        docs.append(configmap("web-config", "apps", color="blue"))
    return {"app.yaml": manifests(*docs)}


def image_of(env: Env) -> str:
    web = env.get("deployment", "web", "-n", "apps")
    return str(web["spec"]["template"]["spec"]["containers"][0]["image"])


async def started(env: Env, image: str = "nginx:1.25", **spec: Any) -> tuple[str, str]:
    """Publish the app, store Kustomization default/app; return (key, revision) once Ready."""
    rev = await env.publish(app_files(image))
    key = await env.apply(kustomization("app", **spec))
    await env.ready(key, rev)
    return key, rev


async def test_build_prints_exactly_what_was_applied(
    cli: Cli, bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env") as env:
        key, _ = await started(env)
        result = await cli(
            "build", "ks", "app", "-n", "default", "--kubeconfig", kubelite.kubeconfig
        )
        assert result.code == 0, result.output
        built = [d for d in yaml.safe_load_all(result.stdout) if d]
        status = await env.status(key)
        applied = await history_output.load(bus, "default", "app", status["history"][0]["digest"])
        obj = Kustomization.model_validate((await bus.get_object(key)).value)
        assert built == [owned(obj, o) for o in applied]
        assert {d["kind"] for d in built} == {"Namespace", "Deployment", "ConfigMap"}


@pytest.mark.parametrize(
    ("change", "code", "expected"),
    [
        pytest.param(None, 0, [], id="in-sync-exits-0"),
        pytest.param(
            ["scale", "deployment/web", "-n", "apps", "--replicas=5"],
            1,
            ["► Deployment/apps/web drifted", "-  replicas: 5", "+  replicas: 1"],
            id="hand-made-drift-exits-1",
        ),
        pytest.param(
            ["delete", "configmap", "web-config", "-n", "apps"],
            1,
            ["► ConfigMap/apps/web-config created", "+  color: blue"],
            id="deleted-by-hand-exits-1",
        ),
    ],
)
async def test_diff_shows_drift_in_the_cluster_with_flux_exit_codes(
    cli: Cli,
    bus: Bus,
    kubelite: Any,
    tmp_path: Path,
    change: list[str] | None,
    code: int,
    expected: list[str],
):
    async with running(bus, kubelite, tmp_path / "env") as env:
        await started(env)
        if change is not None:
            done = kubelite.kubectl(*change)
            assert done.returncode == 0, done.stderr
        result = await cli(
            "diff", "ks", "app", "-n", "default", "--kubeconfig", kubelite.kubeconfig
        )
        assert result.code == code, result.output
        for line in expected:
            assert line in result.stdout, result.stdout
        assert "managedFields" not in result.stdout and "resourceVersion" not in result.stdout


async def test_diff_of_a_local_path_shows_what_a_change_would_do(
    cli: Cli, bus: Bus, kubelite: Any, tmp_path: Path
):
    local = tmp_path / "checkout"
    local.mkdir()
    for name, text in app_files("nginx:1.26", with_config=False).items():
        (local / name).write_text(text)
    async with running(bus, kubelite, tmp_path / "env") as env:
        await started(env)
        args = ("-n", "default", "--kubeconfig", kubelite.kubeconfig, "--path", str(local))
        result = await cli("diff", "ks", "app", *args)
        assert result.code == 1, result.output
        assert "► Deployment/apps/web drifted" in result.stdout
        assert "-      - image: nginx:1.25" in result.stdout, result.stdout
        assert "+      - image: nginx:1.26" in result.stdout
        assert "► ConfigMap/apps/web-config deleted" in result.stdout  # would be pruned
        built = await cli("build", "ks", "app", *args)
        assert built.code == 0 and "nginx:1.26" in built.stdout and "web-config" not in built.stdout
        assert image_of(env) == "nginx:1.25"  # nothing was applied


async def test_diff_masks_secret_values(cli: Cli, bus: Bus, kubelite: Any, tmp_path: Path):
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "default"},
        "data": {"password": base64.b64encode(b"hunter2").decode()},
    }
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev = await env.publish({"s.yaml": manifests(secret)})
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev)
        patch = json.dumps({"data": {"password": base64.b64encode(b"changed!").decode()}})
        done = kubelite.kubectl("patch", "secret", "db", "-p", patch)
        assert done.returncode == 0, done.stderr
        result = await cli(
            "diff", "ks", "app", "-n", "default", "--kubeconfig", kubelite.kubeconfig
        )
        assert result.code == 1, result.output
        assert "*** (before)" in result.stdout and "*** (after)" in result.stdout
        for value in ("hunter2", "changed!", secret["data"]["password"], "Y2hhbmdlZCE="):
            assert value not in result.output


async def test_rollback_says_at_once_when_no_kustomize_service_is_alive(
    cli: Cli, bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env") as env:
        await started(env)
        await env.ready(
            subjects.object_key("Kustomization", "default", "app"),
            await env.publish(app_files("nginx:1.26")),
        )
        result = await cli("rollback", "ks", "app", "-n", "default")
        assert result.code != 0 and "no live instance" in result.stderr, result.output
        assert image_of(env) == "nginx:1.26"


async def test_diff_errors_exit_above_1(cli: Cli, bus: Bus, kubelite: Any):
    missing = await cli("diff", "ks", "nope", "-n", "default", "--kubeconfig", kubelite.kubeconfig)
    assert missing.code == 2 and "not found" in missing.stderr
    wrong_kind = await cli("diff", "gitrepository", "x")
    assert wrong_kind.code == 2 and "kustomizations" in wrong_kind.stderr


async def test_history_rollback_hold_and_resume_to_git(
    cli: Cli, bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env") as env, heartbeat(bus, "Kustomization"):
        key, old = await started(env)
        new = await env.publish(app_files("nginx:1.26", with_config=False))
        await env.ready(key, new)

        listed = await cli("history", "ks", "app", "-n", "default", "-o", "json")
        assert listed.code == 0, listed.output
        entries = json.loads(listed.stdout)
        assert [e["revision"] for e in entries] == [new, old]
        assert entries[0]["pruned"] == ["ConfigMap/apps/web-config"]
        assert entries[0]["result"] == "ReconciliationSucceeded"
        table = await cli("history", "ks", "app", "-n", "default")
        assert table.stdout.splitlines()[0].split()[:2] == ["REVISION", "DIGEST"]
        assert new in table.stdout.splitlines()[1]

        rolled = await cli("rollback", "ks", "app", "-n", "default", "--timeout", "20s")
        assert rolled.code == 0, rolled.output
        assert f"rolled back to {old}" in rolled.stderr
        assert image_of(env) == "nginx:1.25"
        assert env.get("configmap", "web-config", "-n", "apps") is not None
        shown = await cli("get", "ks", "app", "-n", "default")
        assert f"suspended: rolled back to {old}" in shown.stdout

        newest = await env.publish(app_files("nginx:1.27"))
        refused = await cli("reconcile", "ks", "app", "-n", "default", "--timeout", "2s")
        assert refused.code == 1 and "suspended" in refused.stderr
        assert image_of(env) == "nginx:1.25"  # held

        resumed = await cli("resume", "ks", "app", "-n", "default", "--timeout", "20s")
        assert resumed.code == 0, resumed.output
        await env.ready(key, newest)
        assert image_of(env) == "nginx:1.27"
        shown = await cli("get", "ks", "app", "-n", "default")
        assert "suspended:" not in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--to", "main@sha1:0000000"), "no applied history entry", id="unknown"),
        pytest.param(("--steps", "5"), "cannot go back 5 step(s)", id="too-far"),
        pytest.param((), "no longer stored", id="output-gone"),
    ],
)
async def test_rollback_refuses_with_a_clear_message(
    cli: Cli, bus: Bus, kubelite: Any, tmp_path: Path, args: tuple[str, ...], message: str
):
    async with running(bus, kubelite, tmp_path / "env") as env, heartbeat(bus, "Kustomization"):
        key, _ = await started(env)
        await env.ready(key, await env.publish(app_files("nginx:1.26")))
        status = await env.status(key)
        await bus.delete_artifact(
            subjects.history_output_name("default", "app", status["history"][1]["digest"])
        )
        result = await cli("rollback", "ks", "app", "-n", "default", *args)
        assert result.code != 0 and message in result.stderr, result.output
        assert image_of(env) == "nginx:1.26"


async def test_tree_recurses_into_the_kustomizations_it_manages(
    cli: Cli, bus: Bus, kubelite: Any, tmp_path: Path
):
    child = kustomization("child", path="./child")
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev = await env.publish(
            {
                "root/r.yaml": manifests(configmap("r", "default"), child),
                "child/c.yaml": manifests(configmap("c", "default")),
            }
        )
        key = await env.apply(kustomization("root", path="./root"))
        await env.ready(key, rev)
        await env.ready(subjects.object_key("Kustomization", "default", "child"), rev)
        result = await cli("tree", "ks", "root", "-n", "default")
        assert result.code == 0, result.output
        assert result.stdout.splitlines() == [
            "Kustomization/default/root",
            "├── ConfigMap/default/r",
            "└── Kustomization/default/child",
            "    └── ConfigMap/default/c",
        ]


async def test_diff_compares_with_the_remote_cluster_of_spec_kubeconfig(
    cli: Cli, bus: Bus, kubelite: Any, kubelite_factory: Any, tmp_path: Path
):
    remote = kubelite_factory()
    kubeconfig = await asyncio.to_thread(Path(remote.kubeconfig).read_bytes)
    await bus.put_secret(
        "default",
        "remote",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "remote", "namespace": "default"},
            "data": {"value.yaml": base64.b64encode(kubeconfig).decode()},
        },
    )
    async with running(bus, kubelite, tmp_path / "env") as env:
        await started(env, kubeConfig={"secretRef": {"name": "remote"}})
        args = ("-n", "default", "--kubeconfig", kubelite.kubeconfig)
        assert (await cli("diff", "ks", "app", *args)).code == 0
        done = remote.kubectl("scale", "deployment/web", "-n", "apps", "--replicas=3")
        assert done.returncode == 0, done.stderr
        result = await cli("diff", "ks", "app", *args)
        assert result.code == 1 and "-  replicas: 3" in result.stdout, result.output
