"""The image automation chain as a user runs it: real service processes (source,
kustomize, image-reflector), the real registry and Git server, the fluxbus CLI
and kubectl. A tag pushed to the registry ends as the image the Deployment runs,
through a commit the image-reflector pushed to Git — no poll interval waited for."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from test_gitops_loop import User

from fluxbus_cli.up import stack_up
from fluxbus_common.testing.plugin import wait_for
from fluxbus_git.testing import GitHTTPServer, GitRepo

KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: {image}:1.0.0 # {{"$imagepolicy": "flux-system:web"}}
"""

MANIFESTS = """
apiVersion: v1
kind: Secret
metadata:
  name: git-auth
stringData:
  username: {username}
  password: {password}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: fleet
spec:
  interval: 1h
  url: {url}
  secretRef:
    name: git-auth
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
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: web
spec:
  image: {image}
  interval: 1h
  insecure: true
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: web
spec:
  imageRepositoryRef:
    name: web
  policy:
    semver:
      range: 1.x
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: fleet
spec:
  interval: 1h
  sourceRef:
    kind: GitRepository
    name: fleet
  git:
    commit:
      author:
        name: fluxbot
        email: fluxbot@example.com
    push:
      branch: main
  update:
    path: ./apps
    strategy: Setters
"""


def image_of(user: User) -> str | None:
    out = user.kubectl("get", "deployment", "web", "-n", "default", "-o", "json")
    if out.returncode != 0:
        return None
    return str(json.loads(out.stdout)["spec"]["template"]["spec"]["containers"][0]["image"])


async def test_a_pushed_tag_is_committed_to_git_and_deployed(
    tmp_path: Path, git_repo: GitRepo, git_http_basic_server: GitHTTPServer, registry: Any
):
    server = git_http_basic_server
    image = f"{registry.host}/web"
    registry.push_tag("web", "1.0.0")
    git_repo.commit(
        {
            "apps/kustomization.yaml": KUSTOMIZATION,
            "apps/deployment.yaml": DEPLOYMENT.format(image=image),
        },
        branch="main",
        message="initial",
    )
    async with stack_up(
        tmp_path / "state",
        services=("source", "kustomize", "image-reflector"),
        quiet=True,
        log_dir=tmp_path / "logs",
    ) as stack:
        user = User(stack.nats_url, stack.kubeconfig, tmp_path / "kube-cache")
        applied = user.fluxbus(
            "apply",
            "-f",
            "-",
            input=MANIFESTS.format(
                url=server.url(git_repo),
                image=image,
                username=server.username,
                password=server.password,
            ),
        )
        assert applied.returncode == 0, applied.stderr
        synced = await asyncio.to_thread(
            user.fluxbus, "reconcile", "kustomization", "apps", "--with-source", "--timeout", "90s"
        )
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert image_of(user) == f"{image}:1.0.0"

        registry.push_tag("web", "1.1.0")
        scanned = await asyncio.to_thread(
            user.fluxbus, "reconcile", "imagerepository", "web", "--timeout", "60s"
        )
        assert scanned.returncode == 0, scanned.stdout + scanned.stderr

        await wait_for(
            lambda: asyncio.to_thread(lambda: image_of(user) == f"{image}:1.1.0"),
            timeout=60,
            message="the deployment to run the new image",
        )
        head = git_repo.head("main")
        assert f"{image}:1.1.0" in git_repo.show("apps/deployment.yaml", head)
        listed = user.fluxbus("get", "imagepolicies")
        assert "1.1.0" in listed.stdout
