"""Semantic versions and Masterminds/semver (v3) constraints, as Flux uses them.

Pure: no I/O.

Flux picks `spec.ref.semver` tags with github.com/Masterminds/semver/v3:
tags are parsed strictly (`MAJOR.MINOR.PATCH[-pre][+build]`, an optional
leading `v`; anything else is not a version and is ignored), constraints
with Masterminds' grammar: `>=1.0.0 <2.0.0`, `1.2.x`, `~1.2`, `^1.2.3`, `*`,
`1.0 - 2.0` ranges, `,` or space for AND, `||` for OR, `v` prefixes. A
pre-release version only satisfies a constraint that itself names a
pre-release (Masterminds "issue 21" rule).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import total_ordering

_STRICT = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class SemverError(ValueError):
    """A version or constraint string that cannot be parsed."""


def _compare_prerelease(a: str, b: str) -> int:
    """Compare two pre-release strings by semver §11 rules (empty = release, highest)."""
    if a == b:
        return 0
    if not a:
        return 1
    if not b:
        return -1
    pa, pb = a.split("."), b.split(".")
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        xd, yd = x.isdigit(), y.isdigit()
        if xd and yd:
            return -1 if int(x) < int(y) else 1
        if xd:
            return -1
        if yd:
            return 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


@total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version; build metadata is kept but never compared."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = field(default="", compare=False)
    original: str = field(default="", compare=False)

    def compare(self, other: Version) -> int:
        """Return -1, 0 or 1 as `self` sorts before, with or after `other`."""
        a = (self.major, self.minor, self.patch)
        b = (other.major, other.minor, other.patch)
        if a != b:
            return -1 if a < b else 1
        return _compare_prerelease(self.prerelease, other.prerelease)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.compare(other) == 0

    def __hash__(self) -> int:
        return hash((self.major, self.minor, self.patch, self.prerelease))

    def __lt__(self, other: Version) -> bool:
        return self.compare(other) < 0

    def __str__(self) -> str:
        s = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            s += f"-{self.prerelease}"
        if self.build:
            s += f"+{self.build}"
        return s


def parse_version(text: str) -> Version:
    """Parse a tag as Flux does: strict semver with an optional leading `v`.

    Raises `SemverError` for anything else (`1.2`, `01.2.3`, `release-1`).
    """
    m = _STRICT.match(text[1:] if text.startswith("v") else text)
    if m is None:
        raise SemverError(f"{text!r} is not a semantic version")
    return Version(int(m[1]), int(m[2]), int(m[3]), m[4] or "", m[5] or "", text)


def try_parse_version(text: str) -> Version | None:
    """Return the version a tag names, or None when it names none."""
    try:
        return parse_version(text)
    except SemverError:
        return None


# --- constraints (a port of Masterminds/semver v3 constraints.go) ----------

_CV = (
    r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
_OPS = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^"
_CONSTRAINT = re.compile(rf"^\s*({_OPS})\s*({_CV})\s*$")
_RANGE = re.compile(rf"\s*({_CV})\s+-\s+({_CV})\s*")
_FIND = re.compile(rf"({_OPS})\s*({_CV})")
_VALID = re.compile(rf"^(\s*({_OPS})\s*({_CV})\s*)((?:\s+|,\s*)({_OPS})\s*({_CV})\s*)*$")


def _is_x(s: str) -> bool:
    return s in ("x", "X", "*")


@dataclass(frozen=True)
class _Constraint:
    op: str
    con: Version
    orig: str
    dirty: bool
    minor_dirty: bool
    patch_dirty: bool

    def check(self, v: Version) -> bool:
        # Pre-releases only match constraints that name a pre-release.
        if v.prerelease and not self.con.prerelease:
            return False
        return _OPS_FUNCS[self.op](v, self)


def _not_equal(v: Version, c: _Constraint) -> bool:
    if c.dirty:
        if c.con.major != v.major:
            return True
        if c.con.minor != v.minor and not c.minor_dirty:
            return True
        if c.minor_dirty:
            return False
        if c.con.patch != v.patch and not c.patch_dirty:
            return True
        if c.patch_dirty:
            if v.prerelease or c.con.prerelease:
                return _compare_prerelease(v.prerelease, c.con.prerelease) != 0
            return False
    return v != c.con


def _greater(v: Version, c: _Constraint) -> bool:
    if not c.dirty:
        return v.compare(c.con) == 1
    if v.major > c.con.major:
        return True
    if v.major < c.con.major or c.minor_dirty:
        return False
    if c.patch_dirty:
        return v.minor > c.con.minor
    return v.compare(c.con) == 1


def _less(v: Version, c: _Constraint) -> bool:
    return v.compare(c.con) < 0


def _greater_equal(v: Version, c: _Constraint) -> bool:
    return v.compare(c.con) >= 0


def _less_equal(v: Version, c: _Constraint) -> bool:
    if not c.dirty:
        return v.compare(c.con) <= 0
    if v.major > c.con.major:
        return False
    return not (v.major == c.con.major and v.minor > c.con.minor and not c.minor_dirty)


def _tilde(v: Version, c: _Constraint) -> bool:
    if v < c.con:
        return False
    if (c.con.major, c.con.minor, c.con.patch) == (0, 0, 0) and not (
        c.minor_dirty or c.patch_dirty
    ):
        return True
    if v.major != c.con.major:
        return False
    return not (v.minor != c.con.minor and not c.minor_dirty)


def _tilde_or_equal(v: Version, c: _Constraint) -> bool:
    if c.dirty:
        return _tilde(v, c)
    return v == c.con


def _caret(v: Version, c: _Constraint) -> bool:
    if v < c.con:
        return False
    if c.con.major > 0 or c.minor_dirty:
        return v.major == c.con.major
    if c.con.major == 0 and v.major > 0:
        return False
    if c.con.minor > 0 or c.patch_dirty:
        return v.minor == c.con.minor
    if c.con.minor == 0 and v.minor > 0:
        return False
    return c.con.patch == v.patch


_OPS_FUNCS = {
    "": _tilde_or_equal,
    "=": _tilde_or_equal,
    "!=": _not_equal,
    ">": _greater,
    "<": _less,
    ">=": _greater_equal,
    "=>": _greater_equal,
    "<=": _less_equal,
    "=<": _less_equal,
    "~": _tilde,
    "~>": _tilde,
    "^": _caret,
}


def _parse_one(text: str) -> _Constraint:
    m = _CONSTRAINT.match(text)
    if m is None:
        raise SemverError(f"improper constraint: {text}")
    op, orig, major, minor, patch, pre = m[1], m[2], m[3], m[4] or "", m[5] or "", m[7] or ""
    minor_dirty = patch_dirty = dirty = False
    if _is_x(major):
        ver, dirty = (0, 0, 0), True
    elif minor == "" or _is_x(minor[1:]):
        ver, dirty, minor_dirty = (int(major), 0, 0), True, True
    elif patch == "" or _is_x(patch[1:]):
        ver, dirty, patch_dirty = (int(major), int(minor[1:]), 0), True, True
    else:
        ver = (int(major), int(minor[1:]), int(patch[1:]))
    return _Constraint(op, Version(*ver, pre), orig, dirty, minor_dirty, patch_dirty)


@dataclass(frozen=True)
class Constraints:
    """A parsed Masterminds constraint: OR of ANDs."""

    text: str
    groups: tuple[tuple[_Constraint, ...], ...]

    def check(self, v: Version) -> bool:
        """Return whether `v` satisfies the constraint."""
        return any(all(c.check(v) for c in group) for group in self.groups)


def parse_constraints(text: str) -> Constraints:
    """Parse a Masterminds/semver v3 constraint string.

    Raises `SemverError` with Masterminds' wording ("improper constraint: ...").
    """

    def rewrite(m: re.Match[str]) -> str:
        return f">= {m[1]}, <= {m[11]}"

    rewritten = _RANGE.sub(rewrite, text)
    groups = []
    for part in rewritten.split("||"):
        if not _VALID.match(part):
            raise SemverError(f"improper constraint: {part.strip() or text!r}")
        found = [m.group(0) for m in _FIND.finditer(part)] or [part]
        groups.append(tuple(_parse_one(s) for s in found))
    return Constraints(text, tuple(groups))


def highest_match(tags: Iterable[str], constraint: str) -> str | None:
    """Return the tag whose version is the highest satisfying `constraint`, or None.

    Tags that are not semantic versions are ignored. Versions that compare
    equal (differing only in build metadata, or `v1.0.0` vs `1.0.0`) are
    tie-broken by tag name so the choice is deterministic (Flux uses the
    commit time, which a ref listing does not carry).
    Raises `SemverError` when `constraint` cannot be parsed.
    """
    cons = parse_constraints(constraint)
    best: tuple[Version, str] | None = None
    for tag in tags:
        v = try_parse_version(tag)
        if v is None or not cons.check(v):
            continue
        if best is None or v.compare(best[0]) > 0 or (v == best[0] and tag > best[1]):
            best = (v, tag)
    return best[1] if best else None
