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

The rules come from the repository, and every file of a checkout is matched
against every pattern, so they are bounded (Flux sets no bound): an ignore
text of at most `MAX_IGNORE_BYTES`, `MAX_PATTERNS` patterns in all, each at
most `MAX_PATTERN_LENGTH` long with at most `MAX_WILDCARDS` wildcards (each
one multiplies the backtracking of its regular expression). Over a bound,
`build_rules` raises `IgnoreRulesError` naming the file and the limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pathspec

IGNORE_FILE = ".sourceignore"

MAX_IGNORE_BYTES = 64 * 1024
"""One `.sourceignore` (or `spec.ignore`): a long hand-written one is a few KB."""
MAX_PATTERNS = 1_000
"""Patterns of all ignore files together: matching costs files × patterns."""
MAX_PATTERN_LENGTH = 1_024
"""Characters of one pattern: longer than any path worth naming."""
MAX_WILDCARDS = 16
"""`*`, `?` and `[` in one pattern (`**/a/**/*.y*ml` has 6)."""


class IgnoreRulesError(ValueError):
    """Ignore rules over a bound; the message names the file and the limit."""


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
    Raises IgnoreRulesError when the rules are over a bound (see the module doc).
    """
    rules: list[str] = []
    for domain, text in sourceignores:
        where = f"{domain.strip('/')}/{IGNORE_FILE}" if domain.strip("/") else IGNORE_FILE
        rules.extend(scope_pattern(p, domain) for p in _bounded_patterns(where, text, len(rules)))
    if spec_ignore is not None:
        rules.extend(_bounded_patterns("spec.ignore", spec_ignore, len(rules)))
    if rules:
        patterns = (*VCS_PATTERNS, *rules)
    else:
        patterns = (*VCS_PATTERNS, *DEFAULT_PATTERNS)
    return ExclusionRules(patterns, pathspec.GitIgnoreSpec.from_lines(patterns))


def _bounded_patterns(where: str, text: str, before: int) -> list[str]:
    """Return the patterns of one ignore text, `before` patterns having been read already.
    Raises IgnoreRulesError naming `where` and the limit."""
    if len(text.encode("utf-8", "replace")) > MAX_IGNORE_BYTES:
        raise IgnoreRulesError(
            f"{where}: larger than {MAX_IGNORE_BYTES} bytes (ignore file size limit)"
        )
    patterns = read_patterns(text)
    if before + len(patterns) > MAX_PATTERNS:
        raise IgnoreRulesError(
            f"{where}: more than {MAX_PATTERNS} ignore patterns in all (ignore pattern limit)"
        )
    for number, pattern in enumerate(patterns, 1):
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise IgnoreRulesError(
                f"{where}: pattern {number} is longer than {MAX_PATTERN_LENGTH} characters "
                "(ignore pattern length limit)"
            )
        if sum(pattern.count(c) for c in "*?[") > MAX_WILDCARDS:
            raise IgnoreRulesError(
                f"{where}: pattern {number} has more than {MAX_WILDCARDS} wildcards "
                "(ignore pattern wildcard limit)"
            )
    return patterns
