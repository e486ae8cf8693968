"""Which Git reference a GitRepository wants, and Flux's revision strings.

Pure: no I/O.

`spec.ref` precedence is Flux's: commit > name > semver > tag > branch, and
no ref at all means the `master` branch. A resolved reference becomes a
Flux revision string:

| spec.ref                  | revision                          |
|---------------------------|-----------------------------------|
| branch `main`             | `main@sha1:<40hex>`               |
| branch `feature/x`        | `feature/x@sha1:<40hex>`          |
| tag / semver `v1.2.3`     | `v1.2.3@sha1:<commit>` (peeled)   |
| name `refs/pull/1/head`   | `refs/pull/1/head@sha1:<40hex>`   |
| commit (alone)            | `sha1:<40hex>`                    |
| commit + branch `main`    | `main@sha1:<40hex>`               |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from fluxbus_common.semver import SemverError, highest_match, parse_constraints
from fluxbus_git.errors import GitNoSemverMatchError, GitNotFoundError, InvalidSpecError

DEFAULT_BRANCH = "master"
"""Flux's default when `spec.ref` is empty (source-controller keeps `master`)."""

HEADS = "refs/heads/"
TAGS = "refs/tags/"
PEELED = "^{}"
"""Suffix of the peeled entry of an annotated tag in a ref advertisement."""

_HEX = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


class RefKind(StrEnum):
    BRANCH = "branch"
    TAG = "tag"
    SEMVER = "semver"
    NAME = "name"
    COMMIT = "commit"


class RefLike(Protocol):
    """Anything shaped like `spec.ref` (`RefSpec`, the API's `GitRepositoryRef`)."""

    @property
    def branch(self) -> str | None: ...
    @property
    def tag(self) -> str | None: ...
    @property
    def semver(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def commit(self) -> str | None: ...


@dataclass(frozen=True)
class RefSpec:
    """`spec.ref` as written (every field optional)."""

    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    name: str | None = None
    commit: str | None = None


@dataclass(frozen=True)
class Checkout:
    """The one reference `spec.ref` asks for after precedence.

    `branch` is set for a COMMIT that must be contained in a branch.
    """

    kind: RefKind
    value: str
    branch: str | None = None

    def describe(self) -> str:
        """Human wording for messages: `branch 'main'`, `semver range '^1.0'`…"""
        word = "semver range" if self.kind is RefKind.SEMVER else str(self.kind)
        return f"{word} '{self.value}'"


@dataclass(frozen=True)
class Resolved:
    """A reference resolved against the remote: what to fetch and how to call it."""

    commit: str
    """Hex id of the commit to check out."""
    revision: str
    """Flux revision string (`main@sha1:…`)."""
    ref: str | None = None
    """Full remote ref name fetched (`refs/heads/main`); None for a bare commit."""

    def with_commit(self, commit: str) -> Resolved:
        """The same reference peeled to `commit` (an annotated tag's target)."""
        if commit == self.commit:
            return self
        name, _ = split_revision(self.revision)
        digest = _hash_digest(commit)
        return Resolved(commit, f"{name}@{digest}" if name else digest, self.ref)


def _hash_digest(sha: str) -> str:
    algo = "sha1" if len(sha) == 40 else "sha256"
    return f"{algo}:{sha}"


def _validate_ref_name(name: str, field: str) -> None:
    if (
        not name
        or name.startswith("/")
        or name.endswith("/")
        or ".." in name
        or any(c in name for c in " ~^:?*[\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or name.endswith(".lock")
        or "@{" in name
        or "//" in name
    ):
        raise InvalidSpecError(
            f"spec.ref.{field}: invalid Git reference {name!r} (see git-check-ref-format)"
        )


def checkout_for(ref: RefLike | None) -> Checkout:
    """Apply Flux's precedence (commit > name > semver > tag > branch; default master).

    Raises `InvalidSpecError` for a malformed commit id, ref name or semver range.
    """
    if ref is None:
        ref = RefSpec()
    if ref.commit:
        commit = ref.commit.strip().lower()
        if not _HEX.match(commit):
            raise InvalidSpecError(
                f"spec.ref.commit: {ref.commit!r} is not a full commit id (40 hex digits)"
            )
        if ref.branch:
            _validate_ref_name(ref.branch, "branch")
        return Checkout(RefKind.COMMIT, commit, ref.branch or None)
    if ref.name:
        _validate_ref_name(ref.name, "name")
        if not ref.name.startswith("refs/"):
            raise InvalidSpecError(
                f"spec.ref.name: {ref.name!r} must be a full reference name such as "
                "'refs/heads/main', 'refs/tags/v1.0.0' or 'refs/pull/1/head'"
            )
        return Checkout(RefKind.NAME, ref.name)
    if ref.semver:
        try:
            parse_constraints(ref.semver)
        except SemverError as e:
            raise InvalidSpecError(f"spec.ref.semver: {e}") from None
        return Checkout(RefKind.SEMVER, ref.semver)
    if ref.tag:
        _validate_ref_name(ref.tag, "tag")
        return Checkout(RefKind.TAG, ref.tag)
    branch = ref.branch or DEFAULT_BRANCH
    _validate_ref_name(branch, "branch")
    return Checkout(RefKind.BRANCH, branch)


def needs_remote_refs(checkout: Checkout) -> bool:
    """Whether resolving `checkout` needs a ref listing (a bare commit does not)."""
    return not (checkout.kind is RefKind.COMMIT and checkout.branch is None)


def ref_prefixes(checkout: Checkout) -> list[str]:
    """The ref names (prefixes) a listing needs to resolve `checkout` (protocol v2 ls-refs)."""
    match checkout.kind:
        case RefKind.BRANCH:
            return [HEADS + checkout.value]
        case RefKind.TAG:
            return [TAGS + checkout.value]
        case RefKind.SEMVER:
            return [TAGS]
        case RefKind.NAME:
            return [checkout.value]
        case RefKind.COMMIT:
            return [HEADS + checkout.branch] if checkout.branch else []
    raise AssertionError(checkout.kind)  # pragma: no cover


def _peeled(refs: Mapping[str, str], name: str) -> str | None:
    """The commit a ref points at: the peeled `^{}` entry for annotated tags."""
    return refs.get(name + PEELED) or refs.get(name)


def resolve(checkout: Checkout, refs: Mapping[str, str], url: str = "") -> Resolved:
    """Resolve `checkout` against a remote ref listing (`{"refs/heads/main": sha, …}`).

    Returns what to fetch and the Flux revision. Raises `GitNotFoundError`
    when the branch, tag or ref does not exist, `GitNoSemverMatchError` when no
    tag satisfies the range.
    """
    where = f" in '{url}'" if url else ""
    match checkout.kind:
        case RefKind.BRANCH:
            sha = refs.get(HEADS + checkout.value)
            if sha is None:
                raise GitNotFoundError(
                    f"branch '{checkout.value}' not found{where}: "
                    f"couldn't find remote ref '{HEADS}{checkout.value}'"
                )
            return Resolved(sha, f"{checkout.value}@{_hash_digest(sha)}", HEADS + checkout.value)
        case RefKind.TAG:
            sha = _peeled(refs, TAGS + checkout.value)
            if sha is None:
                raise GitNotFoundError(
                    f"tag '{checkout.value}' not found{where}: "
                    f"couldn't find remote ref '{TAGS}{checkout.value}'"
                )
            return Resolved(sha, f"{checkout.value}@{_hash_digest(sha)}", TAGS + checkout.value)
        case RefKind.SEMVER:
            tags = [r[len(TAGS) :] for r in refs if r.startswith(TAGS) and not r.endswith(PEELED)]
            tag = highest_match(tags, checkout.value)
            if tag is None:
                raise GitNoSemverMatchError(
                    f"no match found for semver: {checkout.value}{where} ({len(tags)} tags listed)"
                )
            sha = _peeled(refs, TAGS + tag)
            assert sha is not None
            return Resolved(sha, f"{tag}@{_hash_digest(sha)}", TAGS + tag)
        case RefKind.NAME:
            sha = _peeled(refs, checkout.value)
            if sha is None:
                raise GitNotFoundError(
                    f"unable to resolve ref '{checkout.value}' to a specific commit{where}"
                )
            return Resolved(sha, f"{checkout.value}@{_hash_digest(sha)}", checkout.value)
        case RefKind.COMMIT:
            if checkout.branch is None:
                return Resolved(checkout.value, _hash_digest(checkout.value))
            if HEADS + checkout.branch not in refs:
                raise GitNotFoundError(
                    f"branch '{checkout.branch}' not found{where}: "
                    f"couldn't find remote ref '{HEADS}{checkout.branch}'"
                )
            return Resolved(
                checkout.value,
                f"{checkout.branch}@{_hash_digest(checkout.value)}",
                HEADS + checkout.branch,
            )
    raise AssertionError(checkout.kind)  # pragma: no cover


def split_revision(revision: str) -> tuple[str | None, str]:
    """Split a Flux revision into (ref name or None, hex id).

    Accepts `main@sha1:<hex>`, `sha1:<hex>` and the legacy `main/<hex>` form.
    """
    if "@" in revision:
        name, _, digest = revision.rpartition("@")
        return name, digest.partition(":")[2] or digest
    if revision.startswith(("sha1:", "sha256:")):
        return None, revision.partition(":")[2]
    name, _, sha = revision.rpartition("/")
    if _HEX.match(sha):
        return (name or None), sha
    return None, revision


def same_revision(a: str | None, b: str | None) -> bool:
    """Whether two revision strings name the same ref and commit (legacy form accepted)."""
    if not a or not b:
        return False
    return split_revision(a) == split_revision(b)
