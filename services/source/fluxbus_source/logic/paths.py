"""Safe relative paths for `spec.include` and `spec.sparseCheckout`.

Pure: no I/O.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from fluxbus_source.errors import InvalidSpecError


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
