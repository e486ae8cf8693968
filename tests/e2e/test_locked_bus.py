"""The GitOps loop on the locked-down bus `fluxbus up` runs: source and
kustomize each with their own NATS user, the CLI with its own, nats-server with
permissions and encryption at rest — a push reaches the cluster and the server
never reports a permission violation."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from fluxbus_cli.up import stack_up
from fluxbus_git.testing import GitHTTPServer, GitRepo
from fluxbus_kubelite.testing import kubectl_binary

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
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
  name: apps
spec:
  interval: 1h
  path: ./apps
  prune: true
  sourceRef:
    kind: GitRepository
    name: fleet
"""


def run(argv: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    out = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


async def test_a_push_reaches_the_cluster_with_every_component_on_its_own_nats_user(
    tmp_path: Path, git_repo: GitRepo, git_http_server: GitHTTPServer
):
    git_repo.commit({"apps/web.yaml": DEPLOYMENT.format(replicas=1)}, branch="main", message="a")
    logs = tmp_path / "logs"
    async with stack_up(
        tmp_path / "state", services=("source", "kustomize"), quiet=True, log_dir=logs, secure=True
    ) as stack:
        assert "FLUXBUS_NATS_CREDS" in stack.cli_env
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLUXBUS_")}
        env.update(stack.cli_env)
        fluxbus = [str(Path(sys.executable).parent / "fluxbus")]
        kubectl = [kubectl_binary(), "--kubeconfig", stack.kubeconfig, "--cache-dir", str(tmp_path)]

        def replicas() -> int:
            doc = run([*kubectl, "get", "deployment", "web", "-o", "json"], env)
            return int(json.loads(doc)["spec"]["replicas"])

        manifests = MANIFESTS.format(url=git_http_server.url(git_repo))
        await asyncio.to_thread(run, [*fluxbus, "apply", "-f", "-"], env, manifests)
        reconcile = [*fluxbus, "reconcile", "kustomization", "apps", "--with-source"]
        await asyncio.to_thread(run, [*reconcile, "--timeout", "90s"], env)
        assert await asyncio.to_thread(replicas) == 1

        git_repo.commit(
            {"apps/web.yaml": DEPLOYMENT.format(replicas=3)}, branch="main", message="b"
        )
        await asyncio.to_thread(run, [*reconcile, "--timeout", "90s"], env)
        assert await asyncio.to_thread(replicas) == 3

        # the CLI's user reads what every service ships: heartbeats, logs
        shipped = await asyncio.to_thread(
            run, [*fluxbus, "logs", "--service", "kustomize", "--tail", "50"], env
        )
        assert "reconcile.finished" in shipped

        # without credentials the CLI is turned away
        anonymous = {k: v for k, v in env.items() if k != "FLUXBUS_NATS_CREDS"}
        refused = await asyncio.to_thread(
            subprocess.run,
            [*fluxbus, "get", "kustomizations"],
            env=anonymous,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode != 0
        assert "Authorization Violation" in refused.stdout + refused.stderr
    nats_log = (logs / "nats.log").read_text()
    assert "Violation" not in nats_log
    assert "Encryption:      ChaCha20-Poly1305" in nats_log
