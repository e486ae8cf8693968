"""Which files of a checkout go into the artifact: Flux's exclusion rules.

Pure: no I/O. The caller reads the `.sourceignore` files and passes their text.

Semantics follow source-controller (`SourceIgnoreFilter`, fluxcd/pkg
`sourceignore`), with gitignore syntax (via `pathspec`), last match wins:

1. The VCS patterns (`.git/`, `.gitignore`, `.gitmodules`, `.gitattributes`)
   always apply.
2. When there are no other rules, Flux's default exclusions apply (images,
   archives, CI configs, `.goreleaser.yml`, `.sops.yaml`, `.flux.yaml`).
3. Otherwise the rules are the `.sourceignore` files (a file in directory
   `d/` only governs paths under `d/`), then `spec.ignore`, which may
   overrule them. As in Flux, *any* rules (a `.sourceignore` anywhere, or
   `spec.ignore`) replace the default list; the VCS patterns stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pathspec

IGNORE_FILE = ".sourceignore"

VCS_PATTERNS: tuple[str, ...] = (".git/", ".gitignore", ".gitmodules", ".gitattributes")
"""fluxcd/pkg sourceignore.ExcludeVCS."""

DEFAULT_PATTERNS: tuple[str, ...] = (
    # ExcludeExt
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
    # ExcludeCI
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    # ExcludeExtra
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
)
"""fluxcd/pkg sourceignore.ExcludeExt + ExcludeCI + ExcludeExtra."""


def read_patterns(text: str) -> list[str]:
    """Pattern lines of an ignore file: comments and blank lines dropped."""
    return [
        line.rstrip("\r") for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]


def scope_pattern(pattern: str, domain: str) -> str:
    """Rewrite a pattern read in directory `domain` (`a/b`, or `` for the root)
    into an equivalent pattern relative to the root.

    gitignore rule: a pattern with a slash before its end is anchored to its
    directory; one without matches at any depth below it.
    """
    domain = domain.strip("/")
    if not domain:
        return pattern
    negate = pattern.startswith("!")
    body = pattern[1:] if negate else pattern
    anchored = "/" in body.rstrip("/")
    body = body.lstrip("/")
    scoped = f"/{domain}/{body}" if anchored else f"/{domain}/**/{body}"
    return ("!" if negate else "") + scoped


@dataclass(frozen=True)
class ExclusionRules:
    """A compiled exclusion matcher; `excluded(path)` takes a `/`-separated relative path."""

    patterns: tuple[str, ...]
    _spec: pathspec.GitIgnoreSpec

    def excluded(self, path: str, is_dir: bool = False) -> bool:
        """Return whether the file (or directory, with `is_dir`) is left out of the artifact."""
        p = path.strip("/")
        return self._spec.match_file(p + "/" if is_dir else p)

    def filter(self, paths: Iterable[str]) -> list[str]:
        """Return the paths that are kept, in the given order."""
        return [p for p in paths if not self.excluded(p)]


def build_rules(
    sourceignores: Sequence[tuple[str, str]] = (), spec_ignore: str | None = None
) -> ExclusionRules:
    """Compile Flux's exclusion rules.

    `sourceignores`: (directory relative to the root, file text) for every
    `.sourceignore` found, root first then subdirectories in sorted order;
    `spec_ignore`: the GitRepository's `spec.ignore` (None when unset).
    """
    rules: list[str] = []
    for domain, text in sourceignores:
        rules.extend(scope_pattern(p, domain) for p in read_patterns(text))
    if spec_ignore is not None:
        rules.extend(read_patterns(spec_ignore))
    if rules:
        patterns = (*VCS_PATTERNS, *rules)
    else:
        patterns = (*VCS_PATTERNS, *DEFAULT_PATTERNS)
    return ExclusionRules(patterns, pathspec.GitIgnoreSpec.from_lines(patterns))
