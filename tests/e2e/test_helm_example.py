"""Flux's kustomize-helm example, end to end on real processes: a Git repository
with `clusters/staging` (Kustomizations infra-controllers → infra-configs → apps,
chained by `dependsOn`, the first and last with `wait: true`),
`infrastructure/controllers` (two HelmRepositories and the HelmReleases of two
small local charts standing in for cert-manager and ingress-nginx),
`infrastructure/configs` (a ConfigMap) and `apps/base` + `apps/staging`
(podinfo's HelmRelease with the staging values patched on). The source,
kustomize and helm services run as processes against kubelite; the charts are
served over HTTP by this process (so the CLI runs in a thread: the chart server
keeps answering). Everything becomes Ready with the staging values in the
cluster; a values change pushed to Git upgrades the release to revision 2, which
a user's `helm history` (through the SDK) sees too; `fluxbus rollback hr` goes
back to revision 1's values (as revision 3) and holds, `fluxbus resume hr`
returns to Git (revision 4)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from test_gitops_loop import User

from fluxbus_cli.up import stack_up
from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for
from fluxbus_git.testing import GitHTTPServer, GitRepo
from fluxbus_helmsdk import HelmEngine, KubeTarget, Release, WorkerLimits
from fluxbus_helmsdk.testing import ChartRepoFactory, make_chart

KUSTOMIZATION = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
{depends}  interval: 1h
  retryInterval: 5s
  timeout: 2m
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: {path}
  prune: true
  wait: {wait}
"""


def kustomization(name: str, path: str, *, wait: bool, after: str = "") -> str:
    depends = f"  dependsOn:\n    - name: {after}\n" if after else ""
    return KUSTOMIZATION.format(name=name, path=path, wait=str(wait).lower(), depends=depends)


def controller(name: str, chart: str, url: str) -> str:
    """A Namespace, its HelmRepository and the HelmRelease of `chart` (as the example's
    infrastructure/controllers files, with a local chart repository)."""
    return f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {name}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: {name}
  namespace: {name}
spec:
  interval: 24h
  url: {url}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
  namespace: {name}
spec:
  interval: 12h
  chart:
    spec:
      chart: {chart}
      version: "1.x"
      sourceRef:
        kind: HelmRepository
        name: {name}
  install:
    createNamespace: true
  values:
    greeting: {name}
"""


PODINFO_BASE = {
    "apps/base/podinfo/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n"
    "  name: podinfo\n",
    "apps/base/podinfo/release.yaml": """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
spec:
  interval: 50m
  releaseName: podinfo
  chart:
    spec:
      chart: podinfo
      sourceRef:
        kind: HelmRepository
        name: podinfo
  install:
    strategy:
      name: RetryOnFailure
  values:
    replicaCount: 1
    image:
      tag: "6.5.0"
""",
    "apps/base/podinfo/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: podinfo
resources:
  - namespace.yaml
  - repository.yaml
  - release.yaml
""",
    "apps/staging/kustomization.yaml": """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base/podinfo
patches:
  - path: podinfo-values.yaml
    target:
      kind: HelmRelease
""",
}

STAGING_VALUES = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
spec:
  chart:
    spec:
      version: ">=1.0.0-alpha"
  values:
    replicaCount: {replicas}
    greeting: staging
"""

BOOTSTRAP = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1h
  url: {url}
  ref:
    branch: main
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1h
  path: ./clusters/staging
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


def fleet(infra_url: str, apps_url: str, edge_url: str) -> dict[str, str]:
    """The example repository, its chart repositories served locally."""
    return {
        "clusters/staging/infrastructure.yaml": "---\n".join(
            [
                kustomization("infra-controllers", "./infrastructure/controllers", wait=True),
                kustomization(
                    "infra-configs",
                    "./infrastructure/configs",
                    wait=False,
                    after="infra-controllers",
                ),
            ]
        ),
        "clusters/staging/apps.yaml": kustomization(
            "apps", "./apps/staging", wait=True, after="infra-configs"
        ),
        "infrastructure/controllers/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/"
        "v1beta1\nkind: Kustomization\nresources:\n  - cert-manager.yaml\n  - ingress-nginx.yaml\n",
        "infrastructure/controllers/cert-manager.yaml": controller(
            "cert-manager", "cert-manager", infra_url
        ),
        "infrastructure/controllers/ingress-nginx.yaml": controller(
            "ingress-nginx", "ingress-nginx", edge_url
        ),
        "infrastructure/configs/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/"
        "v1beta1\nkind: Kustomization\nresources:\n  - cluster-issuers.yaml\n",
        "infrastructure/configs/cluster-issuers.yaml": "apiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: letsencrypt\n  namespace: cert-manager\ndata:\n"
        "  server: https://acme-staging-v02.api.letsencrypt.org/directory\n",
        **PODINFO_BASE,
        "apps/base/podinfo/repository.yaml": "apiVersion: source.toolkit.fluxcd.io/v1\n"
        "kind: HelmRepository\nmetadata:\n  name: podinfo\n  namespace: podinfo\nspec:\n"
        f"  interval: 5m\n  url: {apps_url}\n",
        "apps/staging/podinfo-values.yaml": STAGING_VALUES.format(replicas=2),
    }


def ready_at_generation(doc: dict[str, Any] | None, status: dict[str, Any] | None) -> bool:
    if doc is None or status is None:
        return False
    generation = doc["metadata"].get("generation")
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return (
        bool(ready)
        and ready[0].get("status") == "True"
        and status.get("observedGeneration") == generation
    )


async def all_ready(bus: Bus, objects: list[tuple[str, str, str]]) -> bool:
    for kind, namespace, name in objects:
        key = subjects.object_key(kind, namespace, name)
        doc, status = await bus.get_object(key), await bus.get_status(key)
        if not ready_at_generation(doc.value if doc else None, status.value if status else None):
            return False
    return True


EVERYTHING = [
    ("Kustomization", "flux-system", "flux-system"),
    ("Kustomization", "flux-system", "infra-controllers"),
    ("Kustomization", "flux-system", "infra-configs"),
    ("Kustomization", "flux-system", "apps"),
    ("HelmRelease", "cert-manager", "cert-manager"),
    ("HelmRelease", "ingress-nginx", "ingress-nginx"),
    ("HelmRelease", "podinfo", "podinfo"),
]


def configmap(user: User, namespace: str, name: str) -> dict[str, str]:
    out = user.kubectl("get", "configmap", name, "-n", namespace, "-o", "json")
    assert out.returncode == 0, out.stderr
    data: dict[str, str] = json.loads(out.stdout)["data"]
    return data


async def test_flux_s_kustomize_helm_example_reconciles_and_upgrades_from_git(
    tmp_path: Path,
    git_repo: GitRepo,
    git_http_server: GitHTTPServer,
    chart_repo_factory: ChartRepoFactory,
):
    infra, edge = await chart_repo_factory(), await chart_repo_factory()
    await infra.add(make_chart(tmp_path / "charts", "cert-manager", "1.14.0"))
    await edge.add(make_chart(tmp_path / "charts", "ingress-nginx", "1.10.0"))
    await infra.add(make_chart(tmp_path / "charts", "podinfo", "6.5.0"))
    git_repo.commit(fleet(infra.url, infra.url, edge.url), branch="main", message="fleet")

    async with stack_up(
        tmp_path / "state",
        services=("source", "kustomize", "helm"),
        quiet=True,
        log_dir=tmp_path / "logs",
    ) as stack:
        user = User(stack.nats_url, stack.kubeconfig, tmp_path / "kube-cache")
        bootstrap = BOOTSTRAP.format(url=git_http_server.url(git_repo))
        applied = await asyncio.to_thread(user.fluxbus, "apply", "-f", "-", input=bootstrap)
        assert applied.returncode == 0, applied.stderr
        bus = await Bus.connect(stack.bus_settings(), "e2e-helm")
        try:
            await wait_for(
                lambda: all_ready(bus, EVERYTHING), timeout=180, message="the example Ready"
            )
            # the staging values are in the release objects
            podinfo = configmap(user, "podinfo", "podinfo")
            assert podinfo["replicaCount"] == "2" and podinfo["tag"] == "6.5.0"
            assert configmap(user, "cert-manager", "letsencrypt")["server"].startswith("https")
            for name in ("cert-manager", "ingress-nginx"):
                assert configmap(user, name, name)["revision"] == "1"
            releases = await asyncio.to_thread(user.fluxbus, "get", "hr", "-A")
            assert releases.returncode == 0, releases.stderr
            assert "6.5.0" in releases.stdout and "1.14.0" in releases.stdout
            tree = await asyncio.to_thread(user.fluxbus, "tree", "ks", "infra-controllers")
            assert "HelmRelease/cert-manager/cert-manager" in tree.stdout, tree.stderr
            assert "HelmRepository/ingress-nginx/ingress-nginx" in tree.stdout
            charts = await asyncio.to_thread(user.fluxbus, "get", "sources", "chart", "-A")
            assert "podinfo-podinfo" in charts.stdout and "6.5.0" in charts.stdout
            # the HelmRepository, then the generated HelmChart, then the release
            again = await asyncio.to_thread(
                user.fluxbus,
                "reconcile",
                "hr",
                "podinfo",
                "-n",
                "podinfo",
                "--with-source",
                "--timeout",
                "2m",
            )
            assert again.returncode == 0, again.stdout + again.stderr
            assert "annotating HelmChart podinfo-podinfo in podinfo namespace" in again.stderr
            assert "applied revision 6.5.0" in again.stderr

            # a values change through Git: a Helm upgrade, revision 2
            git_repo.commit(
                {"apps/staging/podinfo-values.yaml": STAGING_VALUES.format(replicas=3)},
                branch="main",
                message="staging: 3 replicas",
            )
            upgraded = await asyncio.to_thread(
                user.fluxbus, "reconcile", "ks", "apps", "--with-source", "--timeout", "3m"
            )
            assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
            await wait_for(lambda: all_ready(bus, EVERYTHING[3:]), timeout=120, message="upgraded")
            assert configmap(user, "podinfo", "podinfo")["replicaCount"] == "3"
            history = await asyncio.to_thread(
                user.fluxbus, "history", "hr", "podinfo", "-n", "podinfo"
            )
            assert history.returncode == 0, history.stderr
            assert [line.split()[0] for line in history.stdout.splitlines()[1:]] == ["2", "1"]
            # what `helm history podinfo -n podinfo` shows a user
            seen = await helm_history(stack.kubeconfig)
            assert [(r.revision, r.status) for r in seen] == [(1, "superseded"), (2, "deployed")]
            assert seen[-1].config["replicaCount"] == 3

            # back to the first release, held there; `resume` returns to Git
            rolled = await asyncio.to_thread(
                user.fluxbus, "rollback", "hr", "podinfo", "-n", "podinfo", "--timeout", "2m"
            )
            assert rolled.returncode == 0, rolled.stdout + rolled.stderr
            assert "rolled back to revision 1" in rolled.stderr
            podinfo = configmap(user, "podinfo", "podinfo")
            # Helm's rollback re-applies revision 1's manifest (rendered with revision "1")
            assert (podinfo["replicaCount"], podinfo["revision"]) == ("2", "1")
            shown = await asyncio.to_thread(user.fluxbus, "get", "hr", "-n", "podinfo")
            assert "suspended: rolled back to revision 1" in shown.stdout
            latest = (await helm_history(stack.kubeconfig))[-1]
            assert (latest.revision, latest.description) == (3, "Rollback to 1")
            resumed = await asyncio.to_thread(
                user.fluxbus, "resume", "hr", "podinfo", "-n", "podinfo", "--timeout", "2m"
            )
            assert resumed.returncode == 0, resumed.stdout + resumed.stderr
            podinfo = configmap(user, "podinfo", "podinfo")
            assert (podinfo["replicaCount"], podinfo["revision"]) == ("3", "4")
        finally:
            await bus.close()


async def helm_history(kubeconfig: str) -> list[Release]:
    """The releases of podinfo as `helm history podinfo -n podinfo` lists them."""
    async with HelmEngine(WorkerLimits(workers=1)) as engine:
        target = KubeTarget(kubeconfig_path=kubeconfig)
        return await engine.history(target, "podinfo", storage_namespace="podinfo")
