"""An artifact the kustomize service would refuse is refused when the source builds it:
the GitRepository is not Ready, the message names the limit, and nothing is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fluxbus_common.bus import Bus
from fluxbus_common.runtime import EventRecorder
from fluxbus_common.settings import RuntimeSettings
from fluxbus_common.testing.plugin import running_runtime, wait_for
from fluxbus_git.client import GitClient
from fluxbus_git.testing import GitHTTPServer, GitRepo
from fluxbus_source.reconcilers import GitRepositoryReconciler
from fluxbus_source.workdir import WorkDirs

SETTINGS = RuntimeSettings(
    workers=1,
    shards=1,
    lease_ttl=5,
    instance="test",
    http_addr="",
    backoff_base=0.1,
    backoff_cap=1.0,
)
KEY = "gitrepository.flux-system.big"


def gitrepository(url: str) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "big", "namespace": "flux-system"},
        "spec": {"interval": "1h", "url": url, "ref": {"branch": "main"}},
    }


async def ready_condition(bus: Bus) -> tuple[dict[str, Any], dict[str, Any]] | None:
    entry = await bus.get_status(KEY)
    status = entry.value if entry else {}
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
    return (status, ready) if ready else None


async def reconcile_until(
    bus: Bus, url: str, tmp_path: Path, ready_status: str, what: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the source reconciler on the GitRepository at `url` until Ready is
    `ready_status`; return (status, Ready condition)."""
    recorder = EventRecorder(bus, "source-controller", "test")
    git = GitClient()
    try:
        reconciler = GitRepositoryReconciler(bus, git, recorder, WorkDirs(tmp_path))
        async with running_runtime(bus, reconciler, SETTINGS, service="source"):
            await bus.apply_object(KEY, gitrepository(url))

            async def reached() -> tuple[dict[str, Any], dict[str, Any]] | None:
                found = await ready_condition(bus)
                return found if found and found[1]["status"] == ready_status else None

            found: tuple[dict[str, Any], dict[str, Any]] = await wait_for(
                reached, timeout=20, message=what
            )
            return found
    finally:
        git.close()


async def test_a_repository_with_more_files_than_the_member_limit_is_refused_when_built(
    bus: Bus,
    git_repo: GitRepo,
    git_http_server: GitHTTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the same setting governs the kustomize service's extraction (ArtifactLimits.from_env)
    monkeypatch.setenv("FLUXBUS_ARTIFACT_MAX_MEMBERS", "3")
    git_repo.commit({f"apps/cm{i}.yaml": f"n: {i}\n" for i in range(4)}, branch="main")
    url = git_http_server.url(git_repo)
    status, ready = await reconcile_until(bus, url, tmp_path, "False", "big refused")
    assert ready["reason"] == "ArchiveOperationFailed"
    assert "more than 3 members (file count limit)" in ready["message"]
    assert status.get("artifact") is None
    assert await bus.list_artifacts("gitrepository/flux-system/big/") == []


async def test_a_repository_at_the_member_limit_is_stored(
    bus: Bus,
    git_repo: GitRepo,
    git_http_server: GitHTTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLUXBUS_ARTIFACT_MAX_MEMBERS", "3")
    git_repo.commit({f"apps/cm{i}.yaml": f"n: {i}\n" for i in range(3)}, branch="main")
    url = git_http_server.url(git_repo)
    status, _ = await reconcile_until(bus, url, tmp_path, "True", "big ready")
    assert status["artifact"]["digest"].startswith("sha256:")
