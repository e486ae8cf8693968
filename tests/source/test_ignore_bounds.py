"""`.sourceignore` and `spec.ignore` come from the repository and are matched against
every file of a checkout: over their bounds they are refused, naming the file and the
limit, and no artifact is written (issue #11, "Safety")."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxbus_source.artifact import build_tarball
from fluxbus_source.errors import ArchiveError
from fluxbus_source.logic.ignore import (
    MAX_IGNORE_BYTES,
    MAX_PATTERNS,
    IgnoreRulesError,
    build_rules,
)


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param(
            {".sourceignore": "# padding\n" * (MAX_IGNORE_BYTES // 10 + 1)},
            rf"^\.sourceignore: larger than {MAX_IGNORE_BYTES} bytes \(ignore file size limit\)$",
            id="a-huge-file",
        ),
        pytest.param(
            {
                ".sourceignore": "".join(f"a{i}\n" for i in range(MAX_PATTERNS // 2)),
                "apps/.sourceignore": "".join(f"b{i}\n" for i in range(MAX_PATTERNS // 2 + 1)),
            },
            rf"^apps/\.sourceignore: more than {MAX_PATTERNS} ignore patterns in all",
            id="too-many-patterns-together",
        ),
        pytest.param(
            {".sourceignore": "ok.md\n" + "a" * 2000 + "\n"},
            r"^\.sourceignore: pattern 2 is longer than 1024 characters",
            id="a-long-pattern",
        ),
        pytest.param(
            {"apps/.sourceignore": "*a" * 20 + "\n"},
            r"^apps/\.sourceignore: pattern 1 has more than 16 wildcards",
            id="a-backtracking-pattern",
        ),
    ],
)
def test_ignore_files_over_a_bound_are_refused_naming_the_file(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    src = tree(tmp_path / "src", {"cm.yaml": "kind: ConfigMap\n", **files})
    with pytest.raises(ArchiveError, match=message) as info:
        build_tarball(src, tmp_path / "a.tar.gz")
    assert info.value.reason == "ArchiveOperationFailed"
    assert not (tmp_path / "a.tar.gz").exists()


def test_spec_ignore_is_bounded_alike() -> None:
    with pytest.raises(IgnoreRulesError, match=r"^spec\.ignore: pattern 1 has more than 16"):
        build_rules(spec_ignore="?" * 17 + "\n")


def test_ignore_files_within_the_bounds_still_apply(tmp_path: Path) -> None:
    patterns = "".join(f"skip{i}.md\n" for i in range(MAX_PATTERNS - 1)) + "**/a/**/*.y*ml\n"
    src = tree(
        tmp_path / "src",
        {
            "keep.yaml": "k: v\n",
            "x/a/b/c.yaml": "k: v\n",
            "skip7.md": "",
            ".sourceignore": patterns,
        },
    )
    art = build_tarball(src, tmp_path / "a.tar.gz")
    assert art.files == 2  # keep.yaml and .sourceignore
