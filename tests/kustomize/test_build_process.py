"""How kustomize is run: the wheel's kubectl, a minimal environment, a timeout,
and one render for concurrent builds of the same inputs."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fluxbus_kustomize.build import (
    Builder,
    BuildError,
    BuildLimits,
    BuildSpec,
    RenderCache,
    find_kubectl,
)

Artifact = Callable[..., tuple[Path, str]]

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"

ENV_REPORTER = """#!/bin/sh
# stands in for kubectl: reports what it was started with as a ConfigMap
cat <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: env
data:
  args: "$*"
  home: "$HOME"
  plugins: "$KUSTOMIZE_PLUGIN_HOME"
  plugin_files: "$(ls -A "$KUSTOMIZE_PLUGIN_HOME" | wc -l)"
  secret: "${AWS_SECRET_ACCESS_KEY:-unset}"
  cwd: "$(pwd)"
EOF
"""


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    path.chmod(0o755)
    return str(path)


def test_kubectl_is_the_one_from_the_wheel_next_to_the_interpreter() -> None:
    assert find_kubectl() == str(Path(sys.executable).parent / "kubectl")


async def test_kustomize_runs_without_plugins_or_the_services_environment(
    artifact: Artifact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    builder = Builder(kubectl=script(tmp_path, "kubectl", ENV_REPORTER), cache=RenderCache())
    tar, digest = artifact({"app/kustomization.yaml": "resources: []\n"})
    [report] = await builder.build(tar, digest, BuildSpec(path="app"))
    data = report["data"]
    assert data["args"].startswith("kustomize --load-restrictor LoadRestrictionsNone ")
    assert data["args"].endswith("/root/app")
    assert data["secret"] == "unset"
    assert data["plugin_files"].strip() == "0"
    assert data["home"] != str(Path.home())
    assert Path(data["home"]).parent == Path(data["cwd"])


async def test_a_kustomize_that_hangs_is_killed_at_the_timeout(
    artifact: Artifact, tmp_path: Path
) -> None:
    hang = script(tmp_path, "kubectl", "#!/bin/sh\nexec sleep 60\n")
    builder = Builder(kubectl=hang, cache=RenderCache(), limits=BuildLimits(timeout=0.3))
    tar, digest = artifact({"cm.yaml": CM})
    with pytest.raises(BuildError, match=r"kustomize build timed out after 0\.3s"):
        await builder.build(tar, digest, BuildSpec())


async def test_concurrent_builds_of_the_same_inputs_render_once(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact({"cm.yaml": CM})
    results = await asyncio.gather(*(builder.build(tar, digest, BuildSpec()) for _ in range(4)))
    assert builder.renders == 1
    assert all(r == results[0] for r in results)


async def test_the_cache_forgets_the_least_recently_used_render(artifact: Artifact) -> None:
    builder = Builder(cache=RenderCache(max_entries=1))
    tar, digest = artifact({"a/cm.yaml": CM, "b/cm.yaml": CM})
    await builder.build(tar, digest, BuildSpec(path="a"))
    await builder.build(tar, digest, BuildSpec(path="b"))
    await builder.build(tar, digest, BuildSpec(path="a"))
    assert builder.renders == 3
    assert len(builder.cache) == 1
