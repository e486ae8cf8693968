"""spec.ref precedence, resolution against a ref listing, and Flux revision strings."""

import pytest

from fluxbus_git.errors import GitNoSemverMatchError, GitNotFoundError, InvalidSpecError
from fluxbus_git.logic.refs import (
    Checkout,
    RefKind,
    RefSpec,
    checkout_for,
    needs_remote_refs,
    resolve,
    same_revision,
    split_revision,
)

A = "a" * 40
B = "b" * 40
C = "c" * 40
T = "d" * 40  # an annotated tag object

REFS = {
    "refs/heads/master": A,
    "refs/heads/main": B,
    "refs/heads/feature/x": C,
    "refs/tags/v1.2.3": T,
    "refs/tags/v1.2.3^{}": B,
    "refs/tags/v1.3.0": C,
    "refs/tags/nightly": A,
    "refs/pull/1/head": C,
}


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        pytest.param(None, Checkout(RefKind.BRANCH, "master"), id="default-master"),
        pytest.param(RefSpec(branch="main"), Checkout(RefKind.BRANCH, "main"), id="branch"),
        pytest.param(
            RefSpec(branch="main", tag="v1"), Checkout(RefKind.TAG, "v1"), id="tag-over-branch"
        ),
        pytest.param(
            RefSpec(tag="v1", semver="1.x"), Checkout(RefKind.SEMVER, "1.x"), id="semver-over-tag"
        ),
        pytest.param(
            RefSpec(semver="1.x", name="refs/heads/main"),
            Checkout(RefKind.NAME, "refs/heads/main"),
            id="name-over-semver",
        ),
        pytest.param(
            RefSpec(branch="main", tag="v1", semver="1.x", name="refs/heads/x", commit=A),
            Checkout(RefKind.COMMIT, A, "main"),
            id="commit-over-everything-keeps-branch",
        ),
        pytest.param(RefSpec(commit=A.upper()), Checkout(RefKind.COMMIT, A), id="commit-alone"),
    ],
)
def test_ref_precedence_is_commit_name_semver_tag_branch(
    ref: RefSpec | None, expected: Checkout
) -> None:
    assert checkout_for(ref) == expected


@pytest.mark.parametrize(
    ("ref", "revision"),
    [
        pytest.param(RefSpec(branch="main"), f"main@sha1:{B}", id="branch"),
        pytest.param(RefSpec(branch="feature/x"), f"feature/x@sha1:{C}", id="branch-with-slash"),
        pytest.param(RefSpec(tag="v1.2.3"), f"v1.2.3@sha1:{B}", id="annotated-tag-is-peeled"),
        pytest.param(RefSpec(tag="nightly"), f"nightly@sha1:{A}", id="lightweight-tag"),
        pytest.param(RefSpec(semver="~1.2"), f"v1.2.3@sha1:{B}", id="semver"),
        pytest.param(RefSpec(semver=">=1.0.0"), f"v1.3.0@sha1:{C}", id="semver-highest"),
        pytest.param(RefSpec(name="refs/pull/1/head"), f"refs/pull/1/head@sha1:{C}", id="name"),
        pytest.param(
            RefSpec(name="refs/tags/v1.2.3"), f"refs/tags/v1.2.3@sha1:{B}", id="name-tag-peeled"
        ),
        pytest.param(RefSpec(commit=A), f"sha1:{A}", id="bare-commit"),
        pytest.param(RefSpec(commit=A, branch="main"), f"main@sha1:{A}", id="commit-in-branch"),
    ],
)
def test_resolved_references_have_flux_revision_strings(ref: RefSpec, revision: str) -> None:
    assert resolve(checkout_for(ref), REFS).revision == revision


def test_a_bare_commit_needs_no_ref_listing() -> None:
    checkout = checkout_for(RefSpec(commit=A))
    assert not needs_remote_refs(checkout)
    assert resolve(checkout, {}).commit == A
    assert needs_remote_refs(checkout_for(RefSpec(commit=A, branch="main")))


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        pytest.param(
            RefSpec(branch="gone"), "branch 'gone' not found.*refs/heads/gone", id="branch"
        ),
        pytest.param(RefSpec(tag="v9"), "tag 'v9' not found", id="tag"),
        pytest.param(
            RefSpec(name="refs/pull/9/head"), "unable to resolve ref 'refs/pull/9/head'", id="name"
        ),
        pytest.param(
            RefSpec(commit=A, branch="gone"), "branch 'gone' not found", id="commit-branch"
        ),
    ],
)
def test_missing_references_are_not_found_errors(ref: RefSpec, message: str) -> None:
    with pytest.raises(GitNotFoundError, match=message):
        resolve(checkout_for(ref), REFS, "https://example.com/repo.git")


def test_a_semver_range_without_a_matching_tag_says_so() -> None:
    with pytest.raises(GitNoSemverMatchError, match=r"no match found for semver: >=5.0.0"):
        resolve(checkout_for(RefSpec(semver=">=5.0.0")), REFS)


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param(RefSpec(commit="abc123"), id="short-commit"),
        pytest.param(RefSpec(commit="z" * 40), id="non-hex-commit"),
        pytest.param(RefSpec(name="main"), id="name-not-full-ref"),
        pytest.param(RefSpec(name="refs/heads/main/"), id="name-trailing-slash"),
        pytest.param(RefSpec(branch="a..b"), id="branch-dotdot"),
        pytest.param(RefSpec(semver="not a range"), id="bad-semver"),
    ],
)
def test_malformed_references_stall_with_the_field_named(ref: RefSpec) -> None:
    with pytest.raises(InvalidSpecError, match=r"spec\.ref\."):
        checkout_for(ref)


def test_revisions_compare_across_current_and_legacy_forms() -> None:
    assert split_revision(f"main@sha1:{A}") == ("main", A)
    assert split_revision(f"sha1:{A}") == (None, A)
    assert split_revision(f"main/{A}") == ("main", A)
    assert same_revision(f"main/{A}", f"main@sha1:{A}")
    assert not same_revision(f"main@sha1:{A}", f"main@sha1:{B}")
    assert not same_revision(None, f"main@sha1:{A}")
