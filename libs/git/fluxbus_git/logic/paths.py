"""Safe relative paths and sparse checkout: which paths of a tree a checkout writes.

Pure: no I/O.

`safe_relpath` is the one validator of user-given relative paths (a
GitRepository's `spec.sparseCheckout` here, `spec.include` paths in the
source service).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from fluxbus_git.errors import InvalidSpecError


def safe_relpath(path: str | None, field: str) -> str:
    """Normalise a user-given path to a relative POSIX path inside the root.

    `""`, `"."`, `"./"` and None mean the root and return `""`. Raises
    `InvalidSpecError` naming `field` when the path is absolute or climbs out
    with `..`.
    """
    if path is None:
        return ""
    text = path.strip().replace("\\", "/")
    if text.startswith("/"):
        raise InvalidSpecError(f"{field}: '{path}' must be a relative path")
    parts: list[str] = []
    for part in PurePosixPath(text).parts:
        if part in ("", "."):
            continue
        if part == "..":
            raise InvalidSpecError(f"{field}: '{path}' must not contain '..'")
        parts.append(part)
    return "/".join(parts)


def sparse_directories(
    directories: Sequence[str] | None, field: str = "spec.sparseCheckout"
) -> list[str] | None:
    """Validate sparse checkout directories; return them normalised, or None for "everything".

    None, an empty list, or any entry naming the root mean the whole tree.
    Raises `InvalidSpecError` (naming `field`) for an absolute or climbing path.
    """
    sparse = [safe_relpath(d, field) for d in directories or ()]
    return None if not sparse or "" in sparse else sparse


def in_sparse_checkout(path: str, directories: Sequence[str] | None) -> bool:
    """Whether `path` lies in one of the `spec.sparseCheckout` directories (all when unset)."""
    if not directories:
        return True
    p = path.strip("/")
    for d in directories:
        d = d.strip().removeprefix("./").strip("/")
        if d in ("", ".") or p == d or p.startswith(d + "/"):
            return True
    return False
