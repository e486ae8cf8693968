"""Fixtures of the source service tests: a Git client closed after each test, and the
Helm fixtures (chart repositories, charts, OCI pushes) of `fluxbus_helmsdk.testing`."""

from collections.abc import Iterator

import pytest

from fluxbus_git.client import GitClient
from fluxbus_helmsdk.testing import chart_repo, chart_repo_factory, helm_engine

__all__ = ["chart_repo", "chart_repo_factory", "helm_engine"]
# (imported, not `pytest_plugins`: only the root conftest may list plugins; once
# tests/conftest.py registers `fluxbus_helmsdk.testing` these names still resolve)


@pytest.fixture
def git_client() -> Iterator[GitClient]:
    """A `GitClient` with a short timeout; its HTTP connections are closed afterwards."""
    client = GitClient(timeout=20)
    yield client
    client.close()
