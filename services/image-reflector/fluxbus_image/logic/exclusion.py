"""`spec.exclusionList`: tags matching any of these regular expressions are not stored.

Pure: no I/O.

As Flux: every pattern is searched (not anchored) in each tag; an empty or
absent list means the default `^.*\\.sig$` (cosign signatures), which
`ImageRepositorySpec.effective_exclusion_list` already supplies. Patterns use
Python's `re`, which reads everything Go's RE2 syntax offers for this use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from fluxbus_common.api.image import DEFAULT_EXCLUSION_LIST
from fluxbus_image.logic.errors import ExclusionListError

__all__ = ["compile_exclusions", "exclude_tags"]


def compile_exclusions(patterns: Sequence[str] | None) -> list[re.Pattern[str]]:
    """Compile the patterns (the default list when None or empty).

    Raises `ExclusionListError` naming the first invalid pattern and why.
    """
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns or DEFAULT_EXCLUSION_LIST:
        try:
            compiled.append(re.compile(pattern))
        except re.error as e:
            raise ExclusionListError(
                f"spec.exclusionList: invalid regular expression '{pattern}': {e}"
            ) from None
    return compiled


def exclude_tags(tags: Iterable[str], patterns: Sequence[str] | None) -> list[str]:
    """The tags none of the patterns match, in their original order.

    Raises `ExclusionListError` for an invalid pattern.
    """
    compiled = compile_exclusions(patterns)
    return [t for t in tags if not any(rx.search(t) for rx in compiled)]
