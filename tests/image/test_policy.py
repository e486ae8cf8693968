"""ImagePolicy tag selection, case by case as image-reflector-controller decides
(internal/policy: semver.go, alphabetical.go, numerical.go, filter.go)."""

from __future__ import annotations

import re

import pytest

from fluxbus_common.api.image import ImagePolicyChoice, TagFilter
from fluxbus_image.logic.policy import PolicyError, go_expand, latest_tag, parse_go_float


def semver(r: str) -> ImagePolicyChoice:
    return ImagePolicyChoice.model_validate({"semver": {"range": r}})


def alphabetical(order: str | None = None) -> ImagePolicyChoice:
    return ImagePolicyChoice.model_validate({"alphabetical": {"order": order}})


def numerical(order: str | None = None) -> ImagePolicyChoice:
    return ImagePolicyChoice.model_validate({"numerical": {"order": order}})


@pytest.mark.parametrize(
    ("tags", "choice", "expected"),
    [
        pytest.param(["1.0.0", "1.2.0", "1.10.0", "2.0.0"], semver("1.x"), "1.10.0", id="range"),
        pytest.param(
            ["v1.0.0", "v1.3.0", "1.2.0"], semver(">=1.0.0"), "v1.3.0", id="v-prefix-kept"
        ),
        pytest.param(
            ["1.0", "1.2.3.4", "latest", "1.0.1"], semver("*"), "1.0.1", id="not-semver-ignored"
        ),
        pytest.param(
            ["1.0.0", "1.1.0-rc.1"], semver(">=1.0.0"), "1.0.0", id="pre-release-excluded"
        ),
        pytest.param(
            ["1.0.0", "1.1.0-rc.1"], semver(">=1.0.0-0"), "1.1.0-rc.1", id="pre-release-range"
        ),
        pytest.param(
            ["1.1.0-rc.1", "1.1.0-rc.2", "1.1.0"],
            semver(">=1.0.0-0"),
            "1.1.0",
            id="release-above-rc",
        ),
        pytest.param(
            ["1.0.0+b2", "1.0.0+b1"], semver("1.0.0"), "1.0.0+b2", id="build-tie-first-listed"
        ),
        pytest.param(["v1.0.0", "1.0.0"], semver("1.0.0"), "v1.0.0", id="v-tie-first-listed"),
        pytest.param(["01.2.3", "1.2.3"], semver("*"), "1.2.3", id="leading-zero-not-semver"),
        pytest.param(["a", "c", "b"], alphabetical(), "c", id="alpha-asc"),
        pytest.param(["a", "c", "b"], alphabetical("desc"), "a", id="alpha-desc"),
        pytest.param(
            ["RELEASE.2024", "release.2023"], alphabetical(), "release.2023", id="alpha-bytewise"
        ),
        pytest.param(["1", "10", "9"], numerical(), "10", id="num-asc"),
        pytest.param(["1", "10", "9"], numerical("desc"), "1", id="num-desc"),
        pytest.param(["1.5", "1e1", "2"], numerical(), "1e1", id="num-exponent"),
        pytest.param(["3", "3.0"], numerical(), "3.0", id="num-tie-last-listed"),
    ],
)
def test_the_policy_picks_the_tag_flux_picks(
    tags: list[str], choice: ImagePolicyChoice, expected: str
):
    assert latest_tag(tags, choice) == expected


@pytest.mark.parametrize(
    ("tags", "choice", "message"),
    [
        pytest.param([], semver("*"), "version list argument cannot be empty", id="empty"),
        pytest.param(
            ["1.0.0"], semver("2.x"), "unable to determine latest version", id="none-match"
        ),
        pytest.param(
            ["1", "x2"],
            numerical(),
            "failed to parse invalid numeric value 'x2'",
            id="not-a-number",
        ),
        pytest.param(
            ["1", " 2"], numerical(), "invalid numeric value ' 2'", id="go-refuses-spaces"
        ),
        pytest.param(
            ["1", "1_0"], numerical(), "invalid numeric value '1_0'", id="go-refuses-underscores"
        ),
        pytest.param(["1.0.0"], semver("not a range"), "improper constraint", id="bad-range"),
    ],
)
def test_a_policy_that_cannot_pick_says_why(
    tags: list[str], choice: ImagePolicyChoice, message: str
):
    with pytest.raises(PolicyError, match=re.escape(message)):
        latest_tag(tags, choice)


@pytest.mark.parametrize(
    ("tags", "spec", "choice", "expected"),
    [
        pytest.param(
            ["main-a1b2-100", "main-c3d4-200", "dev-e5f6-300"],
            {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)", "extract": "$ts"},
            numerical(),
            "main-c3d4-200",
            id="extract-named",
        ),
        pytest.param(
            ["rc-1.2.0", "rc-1.10.0", "1.11.0"],
            {"pattern": "^rc-(.*)$", "extract": "$1"},
            semver("*"),
            "rc-1.10.0",
            id="extract-numbered",
        ),
        pytest.param(
            ["app-1.0.0", "app-2.0.0", "db-3.0.0"],
            {"pattern": "app"},
            alphabetical(),
            "app-2.0.0",
            id="pattern-unanchored-search",
        ),
        pytest.param(
            ["x-5", "y-5", "z-4"],
            {"pattern": "-(?P<n>\\d+)", "extract": "${n}"},
            numerical(),
            "y-5",
            id="same-extract-last-tag-kept",
        ),
    ],
)
def test_filter_tags_ranks_the_extracted_value_and_reports_the_original_tag(
    tags: list[str], spec: dict, choice: ImagePolicyChoice, expected: str
):
    assert latest_tag(tags, choice, TagFilter.model_validate(spec)) == expected


def test_a_filter_that_leaves_nothing_fails_as_an_empty_list():
    with pytest.raises(PolicyError, match="cannot be empty"):
        latest_tag(["1.0.0"], semver("*"), TagFilter(pattern="^nope"))


def test_an_invalid_pattern_is_named():
    with pytest.raises(PolicyError, match=r"invalid regular expression pattern '\(unclosed'"):
        latest_tag(["1.0.0"], semver("*"), TagFilter(pattern="(unclosed"))


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("$ts", "200", id="name"),
        pytest.param("${ts}-x", "200-x", id="braced"),
        pytest.param("$tsx", "", id="longest-name-unknown"),
        pytest.param("$1", "c3d4", id="number"),
        pytest.param("$9", "", id="missing-group"),
        pytest.param("$$ts", "$ts", id="dollar-escape"),
        pytest.param("${ts", "${ts", id="unclosed-brace-literal"),
        pytest.param("a$", "a$", id="trailing-dollar"),
    ],
)
def test_extract_expands_as_go_does(template: str, expected: str):
    m = re.search(r"main-([a-f0-9]+)-(?P<ts>[0-9]+)", "main-c3d4-200")
    assert m is not None
    assert go_expand(template, m) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("-2.5", -2.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("0x1p-2", 0.25),
        ("Inf", float("inf")),
    ],
)
def test_numbers_parse_as_go_parsefloat_does(text: str, value: float):
    assert parse_go_float(text) == value
