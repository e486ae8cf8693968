"""The source service without the helm extra: GitRepositories and HTTP HelmRepositories
are served, plain chart pulls work, and HelmCharts that need Helm's engine stall with a
clear message instead of failing obscurely."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helm_helpers import (
    apply,
    condition,
    gitrepository,
    helm_sources,
    helmchart,
    helmrepository,
    wait_failing,
    wait_ready,
)

import fluxbus_helmsdk
from fluxbus_common.bus import Bus
from fluxbus_git.testing import GitHTTPServer, GitRepo
from fluxbus_helmsdk.testing import ChartRepoFactory, make_chart
from fluxbus_source.helmcharts import ChartEngine

UNAVAILABLE = "Helm kinds need the helm extra"


def remove_helm_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if `helm_python` were not installed: `available()` says so, the import fails."""
    monkeypatch.setattr(fluxbus_helmsdk, "available", lambda: False)
    monkeypatch.setitem(sys.modules, "helm_python", None)


async def test_charts_needing_helm_stall_while_the_rest_is_served(
    bus: Bus,
    chart_repo_factory: ChartRepoFactory,
    git_repo: GitRepo,
    git_http_server: GitHTTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    repo = await chart_repo_factory()  # indexed with the SDK before the extra "goes"
    await repo.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    git_repo.commit(
        {"charts/app/Chart.yaml": "name: app\nversion: 0.1.0\n"}, branch="main", message="app"
    )
    remove_helm_extra(monkeypatch)
    engine = ChartEngine()
    async with helm_sources(bus, tmp_path, engine=engine):
        await apply(bus, gitrepository("repo", git_http_server.url(git_repo)))
        await apply(bus, helmrepository("charts", repo.url))
        await apply(bus, helmchart("plain", "web", "HelmRepository", "charts"))
        await apply(bus, helmchart("git", "charts/app", "GitRepository", "repo"))
        values = {"valuesFiles": ["values.yaml"]}
        await apply(bus, helmchart("values", "web", "HelmRepository", "charts", **values))

        await wait_ready(bus, "GitRepository", "repo")
        await wait_ready(bus, "HelmRepository", "charts")
        await wait_ready(bus, "HelmChart", "plain", "1.0.0")
        for name in ("git", "values"):
            st = await wait_failing(bus, "HelmChart", name, UNAVAILABLE)
            assert condition(st, "Stalled")["reason"] == "HelmUnavailable"
            assert "pip install 'fluxbus[helm]'" in condition(st, "Ready")["message"]
    await engine.aclose()


def test_the_service_imports_without_the_extra():
    code = (
        "import sys; sys.modules['helm_python'] = None\n"
        "import fluxbus_source.app, fluxbus_helmsdk\n"
        "assert not fluxbus_helmsdk.available()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
