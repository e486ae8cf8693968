"""Semver ranges pick the highest matching tag, as Masterminds/semver v3 does for Flux."""

import pytest

from fluxbus_common.semver import (
    SemverError,
    highest_match,
    parse_constraints,
    parse_version,
    try_parse_version,
)

TAGS = [
    "v0.9.0",
    "v1.0.0",
    "v1.2.3",
    "v1.2.9",
    "1.3.0",
    "v2.0.0",
    "v2.1.0-rc.1",
    "v3.0.0",
    "latest",
    "v1.4",
    "release-5.0.0",
    "01.2.3",
]


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        pytest.param(">=1.0.0 <2.0.0", "1.3.0", id="and-with-space"),
        pytest.param(">=1.0.0, <1.3.0", "v1.2.9", id="and-with-comma"),
        pytest.param("1.2.x", "v1.2.9", id="x-wildcard"),
        pytest.param("v1.2.x", "v1.2.9", id="v-prefix-in-range"),
        pytest.param("~1.2", "v1.2.9", id="tilde-minor"),
        pytest.param("~1.2.3", "v1.2.9", id="tilde-patch"),
        pytest.param("^1.2.3", "1.3.0", id="caret"),
        pytest.param("^0.9", "v0.9.0", id="caret-zero-major"),
        pytest.param("*", "v3.0.0", id="star"),
        pytest.param("<1.1.0 || >=3.0.0", "v3.0.0", id="or"),
        pytest.param("<1.1.0 || 2.0.x", "v2.0.0", id="or-second-branch"),
        pytest.param("1.0 - 1.2.5", "v1.2.3", id="hyphen-range"),
        pytest.param("=1.2.3", "v1.2.3", id="exact"),
        pytest.param("!=3.0.0", "v2.0.0", id="not-equal"),
        pytest.param(">2.0", "v3.0.0", id="greater-dirty"),
        pytest.param("<=2", "v2.0.0", id="less-equal-major"),
        pytest.param(">=2.1.0-rc.0", "v3.0.0", id="prerelease-range-still-prefers-release"),
        pytest.param("~2.1.0-rc.0", "v2.1.0-rc.1", id="prerelease-only-when-asked"),
        pytest.param(">=2.0.1 <3.0.0", None, id="prerelease-excluded-by-default"),
        pytest.param(">5", None, id="no-match"),
    ],
)
def test_highest_tag_matching_the_range_is_chosen(constraint: str, expected: str | None) -> None:
    assert highest_match(TAGS, constraint) == expected


@pytest.mark.parametrize("tag", ["latest", "v1.4", "release-5.0.0", "01.2.3", "1.2", "v"])
def test_non_semver_tags_are_ignored(tag: str) -> None:
    assert try_parse_version(tag) is None
    assert highest_match([tag], "*") is None


def test_versions_order_by_precedence_with_prereleases_before_releases() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    versions = [parse_version(v) for v in ordered]
    assert sorted(reversed(versions)) == versions


def test_build_metadata_does_not_change_precedence_and_ties_are_deterministic() -> None:
    assert parse_version("1.0.0+a") == parse_version("v1.0.0+b")
    assert highest_match(["v1.0.0+b", "v1.0.0+a"], "1.x") == highest_match(
        ["v1.0.0+a", "v1.0.0+b"], "1.x"
    )


@pytest.mark.parametrize("bad", ["", "not a range", ">=1.0.0 <<2", "1.2.3.4"])
def test_an_improper_constraint_is_an_error(bad: str) -> None:
    with pytest.raises(SemverError, match="improper constraint"):
        parse_constraints(bad)
