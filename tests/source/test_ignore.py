"""Flux's exclusion rules: defaults, .sourceignore at any depth, spec.ignore."""

import pytest

from fluxbus_git.logic.paths import in_sparse_checkout
from fluxbus_source.logic.ignore import build_rules, scope_pattern


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".gitignore",
        "sub/.gitmodules",
        ".gitattributes",
        "logo.png",
        "docs/img/a.jpg",
        "release.tar.gz",
        "bundle.zip",
        ".github/workflows/ci.yaml",
        "nested/.github/x.yml",
        ".circleci/config.yml",
        ".travis.yml",
        ".gitlab-ci.yml",
        "appveyor.yml",
        ".drone.yml",
        "cloudbuild.yaml",
        "codeship-services.yml",
        "codeship-steps.yml",
        "deep/.goreleaser.yml",
        "clusters/.sops.yaml",
        ".flux.yaml",
    ],
)
def test_default_exclusions_leave_out_vcs_ci_and_binary_files(path: str) -> None:
    assert build_rules().excluded(path)


@pytest.mark.parametrize(
    "path", ["kustomization.yaml", "apps/podinfo/deployment.yaml", "README.md", "logo.svg"]
)
def test_default_exclusions_keep_manifests(path: str) -> None:
    assert not build_rules().excluded(path)


def test_a_sourceignore_in_a_subdirectory_only_governs_that_subdirectory() -> None:
    rules = build_rules([("", "*.md\n# comment\n\n"), ("apps", "*.txt\n/local.yaml\n")])
    assert rules.excluded("README.md") and rules.excluded("apps/x/notes.md")
    assert rules.excluded("apps/a.txt") and rules.excluded("apps/deep/b.txt")
    assert not rules.excluded("top.txt")
    assert rules.excluded("apps/local.yaml") and not rules.excluded("apps/x/local.yaml")
    assert not rules.excluded("local.yaml")


def test_a_deeper_sourceignore_can_reinclude_what_the_root_excluded() -> None:
    rules = build_rules([("", "*.md\n"), ("docs", "!keep.md\n")])
    assert rules.excluded("a.md")
    assert not rules.excluded("docs/keep.md")


def test_spec_ignore_replaces_the_default_list_but_never_the_vcs_patterns() -> None:
    rules = build_rules(spec_ignore="*.yaml\n")
    assert rules.excluded("a.yaml")
    assert not rules.excluded("logo.png")
    assert not rules.excluded(".github/workflows/ci.yml")
    assert rules.excluded(".git/HEAD")


def test_spec_ignore_may_overrule_sourceignore() -> None:
    rules = build_rules([("", "*.yaml\n")], spec_ignore="!keep.yaml\n")
    assert rules.excluded("a.yaml")
    assert not rules.excluded("keep.yaml")


def test_spec_ignore_example_from_the_flux_docs() -> None:
    rules = build_rules(
        spec_ignore="# exclude all\n/*\n# include deploy dir\n!/deploy\n/deploy/**/*.md\n"
    )
    assert rules.excluded("README.md") and rules.excluded("src/main.go")
    assert not rules.excluded("deploy/app.yaml")
    assert rules.excluded("deploy/docs/a.md") and rules.excluded("deploy/a.md")


def test_like_flux_any_sourceignore_replaces_the_default_list() -> None:
    # source-controller's SourceIgnoreFilter drops the defaults (not the VCS
    # patterns) as soon as any rule exists.
    rules = build_rules([("", "*.md\n")])
    assert not rules.excluded("logo.png")
    assert rules.excluded(".gitignore")


@pytest.mark.parametrize(
    ("pattern", "domain", "scoped"),
    [
        ("*.txt", "a/b", "/a/b/**/*.txt"),
        ("/x.yaml", "a", "/a/x.yaml"),
        ("x/y.yaml", "a", "/a/x/y.yaml"),
        ("!keep", "a", "!/a/**/keep"),
        ("build/", "a", "/a/**/build/"),
        ("*.txt", "", "*.txt"),
    ],
)
def test_patterns_are_scoped_to_the_directory_of_their_file(
    pattern: str, domain: str, scoped: str
) -> None:
    assert scope_pattern(pattern, domain) == scoped


def test_sparse_checkout_keeps_only_the_listed_directories() -> None:
    dirs = ["apps/", "./infra"]
    assert in_sparse_checkout("apps/a.yaml", dirs) and in_sparse_checkout("infra/x/y.yaml", dirs)
    assert not in_sparse_checkout("README.md", dirs) and not in_sparse_checkout(
        "appsx/a.yaml", dirs
    )
    assert in_sparse_checkout("anything", None)
