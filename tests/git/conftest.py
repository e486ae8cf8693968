"""Fixtures of the Git library's own tests: a writer, and repositories to write to."""

from collections.abc import Iterator

import pytest

from fluxbus_git.testing import GitRepo
from fluxbus_git.writer import GitWriter


@pytest.fixture
def git_writer() -> Iterator[GitWriter]:
    """A writer with a timeout generous enough for a loaded CI machine."""
    writer = GitWriter(timeout=30)
    yield writer
    writer.close()


@pytest.fixture
def app_repo(git_repo: GitRepo) -> GitRepo:
    """`main`: two commits (deploy.yaml at image 1.0.0, a README); `master`: one commit."""
    git_repo.commit({"README.md": "hello\n"}, message="init")
    git_repo.commit(
        {"app/deploy.yaml": "image: ghcr.io/acme/app:1.0.0\n", "README.md": "hello\n"},
        branch="main",
        message="app",
    )
    git_repo.commit({"app/config.yaml": "replicas: 2\n"}, branch="main", message="config")
    git_repo.set_default_branch("main")
    return git_repo
