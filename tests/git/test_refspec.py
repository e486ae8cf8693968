"""Push refspecs as Flux and git write them, parsed to full ref names. Pure: no I/O."""

import pytest

from fluxbus_git.errors import InvalidSpecError
from fluxbus_git.logic.refspec import PushRefspec, parse_push_refspec

SHA = "a" * 40


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("refs/heads/main:refs/heads/main", ("refs/heads/main", "refs/heads/main"), id="full"),
        pytest.param("HEAD:refs/heads/auto", ("HEAD", "refs/heads/auto"), id="head"),
        pytest.param("HEAD:refs/for/main", ("HEAD", "refs/for/main"), id="gerrit"),
        pytest.param("refs/heads/auto:refs/heads/main", ("refs/heads/auto", "refs/heads/main"), id="branch-to-branch"),
        pytest.param("main:other", ("refs/heads/main", "refs/heads/other"), id="short-names"),
        pytest.param("main", ("refs/heads/main", "refs/heads/main"), id="same-name"),
        pytest.param(f"{SHA}:refs/heads/x", (SHA, "refs/heads/x"), id="commit-id"),
        pytest.param(" HEAD:refs/heads/flux/auto ", ("HEAD", "refs/heads/flux/auto"), id="spaces"),
    ],
)  # fmt: skip
def test_a_push_refspec_is_read_as_full_names(spec: str, expected: tuple[str, str]) -> None:
    assert parse_push_refspec(spec) == PushRefspec(*expected)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("+main:main", "force pushes", id="force"),
        pytest.param(":refs/heads/x", "deleting", id="delete"),
        pytest.param("main:", "destination is empty", id="empty-dst"),
        pytest.param("refs/heads/*:refs/heads/*", "patterns", id="pattern"),
        pytest.param("HEAD", "needs a destination", id="bare-head"),
        pytest.param("main:HEAD", "must be a ref name", id="head-dst"),
        pytest.param(f"main:{SHA}", "must be a ref name", id="sha-dst"),
        pytest.param("main:refs/heads/a b", "invalid Git reference", id="space"),
        pytest.param("main:refs/heads/x.lock", "invalid Git reference", id="lock"),
        pytest.param("ma..in:x", "invalid Git reference", id="dots"),
    ],
)
def test_a_refspec_the_writer_cannot_push_is_refused(spec: str, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        parse_push_refspec(spec)
