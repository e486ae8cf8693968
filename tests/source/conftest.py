"""Fixtures of the source service tests: a Git client closed after each test."""

from collections.abc import Iterator

import pytest

from fluxbus_git.client import GitClient


@pytest.fixture
def git_client() -> Iterator[GitClient]:
    """A `GitClient` with a short timeout; its HTTP connections are closed afterwards."""
    client = GitClient(timeout=20)
    yield client
    client.close()
