"""Safe relative paths and sparse checkout directories (`fluxbus_git.logic.paths`)."""

from __future__ import annotations

import pytest

from fluxbus_git.errors import InvalidSpecError
from fluxbus_git.logic.paths import safe_relpath, sparse_directories


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(None, "", id="unset-is-root"),
        pytest.param("./", "", id="dot-slash-is-root"),
        pytest.param("./apps//dev/", "apps/dev", id="normalised"),
        pytest.param("apps\\dev", "apps/dev", id="backslashes"),
    ],
)
def test_relative_paths_are_normalised(given: str | None, expected: str) -> None:
    assert safe_relpath(given, "spec.include.toPath") == expected


@pytest.mark.parametrize(
    "given",
    [pytest.param("/etc", id="absolute"), pytest.param("apps/../../x", id="climbs-out")],
)
def test_paths_outside_the_root_are_refused_naming_the_field(given: str) -> None:
    with pytest.raises(InvalidSpecError, match=r"^spec\.sparseCheckout: "):
        safe_relpath(given, "spec.sparseCheckout")


def test_sparse_checkout_of_nothing_or_the_root_means_the_whole_tree() -> None:
    assert sparse_directories(None) is None
    assert sparse_directories([]) is None
    assert sparse_directories(["apps", "./"]) is None
    assert sparse_directories(["./apps/", "infra"]) == ["apps", "infra"]


def test_a_climbing_sparse_directory_is_refused() -> None:
    with pytest.raises(InvalidSpecError, match=r"spec\.sparseCheckout: '\.\./x'"):
        sparse_directories(["../x"])
