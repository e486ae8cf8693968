"""An artifact the kustomize service would refuse is refused when the source builds it:
the GitRepository is not Ready, the message names the limit, and nothing is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from source_helpers import gitrepository, key_of, ready_of, source_service, status

from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for
from fluxbus_git.testing import GitHTTPServer, GitRepo


async def reconcile_until(
    bus: Bus, url: str, tmp_path: Path, ready_status: str, what: str
) -> dict[str, Any]:
    """Run the source service on the GitRepository `big` at `url` until Ready is
    `ready_status`; return its status."""
    async with source_service(bus, tmp_path):
        await bus.apply_object(key_of("big"), gitrepository("big", url))

        async def reached() -> dict[str, Any] | None:
            st = await status(bus, "big")
            ready = ready_of(st)
            return st if ready and ready["status"] == ready_status else None

        found: dict[str, Any] = await wait_for(reached, timeout=20, message=what)
        return found


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
    st = await reconcile_until(bus, url, tmp_path, "False", "big refused")
    ready = ready_of(st)
    assert ready is not None
    assert ready["reason"] == "ArchiveOperationFailed"
    assert "more than 3 members (file count limit)" in ready["message"]
    assert st.get("artifact") is None
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
    st = await reconcile_until(bus, url, tmp_path, "True", "big ready")
    assert st["artifact"]["digest"].startswith("sha256:")
