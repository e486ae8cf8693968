"""ImagePolicy tag selection, as image-reflector-controller does it.

Pure: no I/O.

`latest_tag(tags, choice, filter_tags)` applies `spec.filterTags` and then the
one policy of `spec.policy`, and returns the *original* tag to deploy:

- `filterTags.pattern` is searched (not anchored) in each tag; with
  `extract`, the match is expanded as Go's `Regexp.ExpandString` does (`$1`,
  `$name`, `${name}`, `$$`; an unknown group expands to nothing) and the
  extracted value is what the policy ranks. Two tags that extract to the same
  value: the one listed last is kept (Flux keeps them in a map).
- `semver.range`: Masterminds constraints over strict semantic versions with an
  optional `v` prefix (`fluxbus_common.semver`); other tags are ignored; build
  metadata does not count; on a tie the tag listed first wins.
- `alphabetical`: byte-wise order; `asc` (default) picks the last, `desc` the first.
- `numerical`: Go's `strconv.ParseFloat` over every candidate (one that is not
  a number fails the policy and is named); `asc` (default) picks the highest,
  `desc` the lowest; on a tie the tag listed last wins.

Errors (`PolicyError`) carry Flux's messages. Patterns use Python's `re`
(Go's RE2 syntax for everything Flux documents; RE2-only constructs such as
`\\z` and `(?U)` are refused as invalid patterns).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from fluxbus_common.api.image import ImagePolicyChoice, TagFilter
from fluxbus_common.semver import SemverError, Version, parse_constraints, try_parse_version


class PolicyError(ValueError):
    """The policy cannot pick a tag (bad spec, no candidate, a non-numeric tag)."""


EMPTY = "version list argument cannot be empty"
"""Flux's message when no tag is left to choose from."""

_GO_FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_GO_HEX_FLOAT = re.compile(
    r"^[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+$"
)
_GO_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
               "+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan,
               "+nan": math.nan, "-nan": math.nan}  # fmt: skip
_EXPAND_NAME = re.compile(r"[A-Za-z0-9_]+")


def parse_go_float(text: str) -> float:
    """Parse a number as Go's strconv.ParseFloat(s, 64) accepts it.

    Raises ValueError for what Go refuses and Python would take (` 1`, `1_0`).
    """
    special = _GO_SPECIAL.get(text.lower())
    if special is not None:
        return special
    if _GO_FLOAT.match(text):
        return float(text)
    if _GO_HEX_FLOAT.match(text):
        return float.fromhex(text)
    raise ValueError(text)


def go_expand(template: str, match: re.Match[str]) -> str:
    """Expand `template` with `match`'s groups as Go's Regexp.ExpandString does."""
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch != "$" or i + 1 >= len(template):
            out.append(ch)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = template.find("}", i + 2)
            name = template[i + 2 : end] if end != -1 else ""
            if end == -1 or not _EXPAND_NAME.fullmatch(name):
                out.append("$")  # not a valid reference: kept literally
                i += 1
                continue
            i = end + 1
        else:
            m = _EXPAND_NAME.match(template, i + 1)
            if m is None:
                out.append("$")
                i += 1
                continue
            name = m.group(0)
            i = m.end()
        out.append(_group(match, name))
    return "".join(out)


def _group(match: re.Match[str], name: str) -> str:
    """The text of group `name` (a number or a name); "" when it has none."""
    try:
        value = match.group(int(name)) if name.isdigit() else match.group(name)
    except IndexError:  # no such group: Go expands it to nothing
        return ""
    return value or ""


def filter_tags(tags: Sequence[str], spec: TagFilter) -> dict[str, str]:
    """Return {value to rank: original tag} for the tags `spec.pattern` finds.

    Raises PolicyError for a pattern that does not compile.
    """
    pattern = spec.pattern or ""
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise PolicyError(f"invalid regular expression pattern '{pattern}': {e}") from None
    out: dict[str, str] = {}
    for tag in tags:
        m = rx.search(tag)
        if m is None:
            continue
        value = go_expand(spec.extract, m) if spec.extract else tag
        out[value] = tag
    return out


def _order(value: str | None) -> str:
    order = (value or "ASC").upper()
    if order not in ("ASC", "DESC"):
        raise PolicyError(f"invalid order argument provided: '{order}', must be one of: ASC, DESC")
    return order


def latest_semver(candidates: Sequence[str], constraint: str) -> str:
    """The highest version satisfying `constraint` (first listed on a tie)."""
    try:
        cons = parse_constraints(constraint)
    except SemverError as e:
        raise PolicyError(str(e)) from None
    if not candidates:
        raise PolicyError(EMPTY)
    best: tuple[Version, str] | None = None
    for tag in candidates:
        v = try_parse_version(tag)
        if v is not None and cons.check(v) and (best is None or v.compare(best[0]) > 0):
            best = (v, tag)
    if best is None:
        raise PolicyError("unable to determine latest version from provided list")
    return best[1]


def latest_alphabetical(candidates: Sequence[str], order: str | None) -> str:
    """The last (asc) or first (desc) candidate in byte-wise order."""
    direction = _order(order)
    if not candidates:
        raise PolicyError(EMPTY)
    encoded = [(c.encode(), c) for c in candidates]
    return (min(encoded) if direction == "DESC" else max(encoded))[1]


def latest_numerical(candidates: Sequence[str], order: str | None) -> str:
    """The highest (asc) or lowest (desc) number; the last listed on a tie."""
    direction = _order(order)
    if not candidates:
        raise PolicyError(EMPTY)
    latest, best = "", 0.0
    for i, tag in enumerate(candidates):
        try:
            value = parse_go_float(tag)
        except ValueError:
            raise PolicyError(f"failed to parse invalid numeric value '{tag}'") from None
        if i > 0 and (value < best if direction == "ASC" else value > best):
            continue
        latest, best = tag, value
    return latest


def latest_tag(
    tags: Sequence[str], choice: ImagePolicyChoice, filter_spec: TagFilter | None = None
) -> str:
    """The original tag the policy picks from `tags`, after `filterTags`.

    Raises PolicyError with Flux's message when it cannot pick one.
    """
    originals: dict[str, str] | None = None
    candidates: Sequence[str] = tags
    if filter_spec is not None:
        originals = filter_tags(tags, filter_spec)
        candidates = list(originals)
    if choice.semver is not None:
        picked = latest_semver(candidates, choice.semver.range)
    elif choice.alphabetical is not None:
        picked = latest_alphabetical(candidates, choice.alphabetical.order)
    else:
        assert choice.numerical is not None  # the model requires exactly one
        picked = latest_numerical(candidates, choice.numerical.order)
    return originals[picked] if originals is not None else picked


def validate_policy(choice: ImagePolicyChoice, filter_spec: TagFilter | None = None) -> None:
    """Check what does not depend on the tags: the semver range, the order, the pattern.

    Raises PolicyError naming what is invalid (Flux stalls such a policy:
    reason InvalidPolicy), so it is not retried until the spec changes.
    """
    if choice.semver is not None:
        try:
            parse_constraints(choice.semver.range)
        except SemverError as e:
            raise PolicyError(f"invalid policy: spec.policy.semver.range: {e}") from None
    elif choice.alphabetical is not None:
        _order(choice.alphabetical.order)
    elif choice.numerical is not None:
        _order(choice.numerical.order)
    if filter_spec is not None:
        try:
            re.compile(filter_spec.pattern or "")
        except re.error as e:
            raise PolicyError(
                f"invalid policy: spec.filterTags.pattern: invalid regular expression "
                f"'{filter_spec.pattern}': {e}"
            ) from None
