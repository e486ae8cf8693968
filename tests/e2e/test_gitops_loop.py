"""The GitOps loop as a user drives it: real service processes, the fluxbus
CLI and kubectl. Synced → manual drift → corrected; broken commit → not
Ready, cluster untouched; fixing push → new image, file removed from Git →
pruned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fluxbus_cli.up import stack_up
from fluxbus_git.testing import GitHTTPServer, GitRepo
from fluxbus_kubelite.testing import kubectl_binary

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gitops-repo"


def repo_files() -> dict[str, str]:
    return {
        str(p.relative_to(EXAMPLE)): p.read_text()
        for p in EXAMPLE.rglob("*.yaml")
        if "clusters" not in p.parts
    }


class User:
    """Runs `fluxbus` and `kubectl` the way a person at a terminal would."""

    def __init__(self, nats_url: str, kubeconfig: str, cache: Path) -> None:
        self.env = {**os.environ, "FLUXBUS_NATS_URL": nats_url}
        self.kubeconfig = kubeconfig
        self.cache = cache

    def fluxbus(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        exe = str(Path(sys.executable).parent / "fluxbus")
        return subprocess.run(
            [exe, *args], env=self.env, input=input, capture_output=True, text=True, timeout=120
        )

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                kubectl_binary(),
                "--kubeconfig",
                self.kubeconfig,
                "--cache-dir",
                str(self.cache),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def deployment(self, namespace: str, name: str = "web") -> dict[str, Any]:
        out = self.kubectl("get", "deployment", name, "-n", namespace, "-o", "json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


BASE_WITHOUT_SERVICE = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
"""

MANIFESTS = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: fleet
spec:
  interval: 1h
  url: {url}
  ref:
    branch: main
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps-dev
spec:
  interval: 1h
  path: ./apps/overlays/dev
  prune: true
  wait: true
  timeout: 1m
  sourceRef:
    kind: GitRepository
    name: fleet
"""


async def test_drift_is_corrected_pushes_roll_out_and_removed_files_are_pruned(
    tmp_path: Path, git_repo: GitRepo, git_http_server: GitHTTPServer
):
    git_repo.commit(repo_files(), branch="main", message="initial fleet")
    async with stack_up(
        tmp_path / "state", services=("source", "kustomize"), quiet=True, log_dir=tmp_path / "logs"
    ) as stack:
        user = User(stack.nats_url, stack.kubeconfig, tmp_path / "kube-cache")
        applied = user.fluxbus(
            "apply", "-f", "-", input=MANIFESTS.format(url=git_http_server.url(git_repo))
        )
        assert applied.returncode == 0, applied.stderr
        assert "gitrepository/flux-system/fleet created" in applied.stdout

        synced = user.fluxbus(
            "reconcile", "kustomization", "apps-dev", "--with-source", "--timeout", "90s"
        )
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert user.deployment("dev")["spec"]["replicas"] == 1

        # manual drift on a field Git owns is reverted on the next reconcile
        assert (
            user.kubectl("scale", "deployment/web", "-n", "dev", "--replicas", "5").returncode == 0
        )
        assert user.deployment("dev")["spec"]["replicas"] == 5
        healed = user.fluxbus("reconcile", "kustomization", "apps-dev", "--timeout", "90s")
        assert healed.returncode == 0, healed.stdout + healed.stderr
        assert user.deployment("dev")["spec"]["replicas"] == 1

        # a broken commit: not Ready, the file named, the cluster left as it was
        git_repo.commit({"apps/base/service.yaml": None}, branch="main", message="oops")
        broken = user.fluxbus(
            "reconcile", "kustomization", "apps-dev", "--with-source", "--timeout", "90s"
        )
        assert broken.returncode != 0
        assert "apps/base/service.yaml" in broken.stdout + broken.stderr
        assert "service/web" in user.kubectl("get", "services", "-n", "dev", "-o", "name").stdout
        assert user.deployment("dev")["spec"]["replicas"] == 1

        # the fixing push rolls out: new image in the cluster, new revision in status
        overlay = (EXAMPLE / "apps/overlays/dev/kustomization.yaml").read_text()
        sha = git_repo.commit(
            {
                "apps/overlays/dev/kustomization.yaml": overlay.replace(
                    'newTag: "dev"', 'newTag: "dev-2"'
                ),
                "apps/base/service.yaml": None,  # the Service leaves Git
                "apps/base/kustomization.yaml": BASE_WITHOUT_SERVICE,
            },
            branch="main",
            message="bump dev, drop the service",
        )
        pushed = user.fluxbus(
            "reconcile", "kustomization", "apps-dev", "--with-source", "--timeout", "90s"
        )
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        image = user.deployment("dev")["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.endswith(":dev-2")
        services = user.kubectl("get", "services", "-n", "dev", "-o", "name")
        assert "service/web" not in services.stdout  # pruned
        table = user.fluxbus("get", "kustomizations")
        assert f"main@sha1:{sha}" in table.stdout
