"""Adapter: apply the Setters strategy to a checked-out work tree (Flux's `update.path` walk).

`update_tree(root, sub_path, policies)` walks `root/sub_path` as
image-automation-controller's `ScreeningLocalReader` does: regular files named
`*.yaml`, `*.yml` or `Kustomization`, screened for the `"$imagepolicy"` token,
then updated with `fluxbus_image.logic.setters.update_yaml`. Differences from
Flux, all on the safe side:

- symbolic links are never followed (Flux reads through file links), `.git`
  is never entered, and `sub_path` may not climb out of `root`;
- a file larger than `MAX_FILE_BYTES` is skipped with a reason, like a file
  that does not parse (Flux's "problem files");
- only changed files are written, in place, so they keep their mode;
- the relative paths are POSIX paths relative to `root` (Flux's are relative
  to `update.path`; `logic.commitmsg.template_data` can give Flux's view).

It is blocking: the caller runs it with `asyncio.to_thread`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fluxbus_common.api.image import ImageRef
from fluxbus_git.errors import InvalidSpecError
from fluxbus_git.logic.paths import safe_relpath
from fluxbus_image.logic.setters import (
    MAX_CONTENT_BYTES,
    SETTER_TOKEN,
    Change,
    SetterParseError,
    update_yaml,
)

__all__ = ["MAX_FILE_BYTES", "UPDATE_PATH_FIELD", "TreeUpdate", "is_candidate", "update_tree"]

MAX_FILE_BYTES = MAX_CONTENT_BYTES
"""Files above this size are skipped: the setters refuse them anyway, so do not even read them."""
UPDATE_PATH_FIELD = "spec.update.path"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass
class TreeUpdate:
    """What a walk changed: changes per file, files skipped with the reason, all changes in order."""

    files: dict[str, list[Change]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)


def is_candidate(name: str) -> bool:
    """Whether Flux considers a file of this name: `*.yaml`, `*.yml` or `Kustomization`."""
    return name.endswith((".yaml", ".yml")) or name == "Kustomization"


def update_tree(root: Path, sub_path: str | None, policies: Mapping[str, ImageRef]) -> TreeUpdate:
    """Apply the setters of `policies` to every candidate file under `root/sub_path`.

    Writes the changed files in place and returns the `TreeUpdate`. Raises
    `ValueError` naming `spec.update.path` when `sub_path` is absolute, climbs
    out of `root`, goes through a symbolic link or names no directory; an
    `OSError` when a changed file cannot be written.
    """
    try:
        rel = safe_relpath(sub_path, UPDATE_PATH_FIELD)
    except InvalidSpecError as e:
        raise ValueError(str(e)) from e
    base = root
    for part in rel.split("/") if rel else ():
        base = base / part
        try:
            mode = base.lstat().st_mode
        except FileNotFoundError:
            raise ValueError(f"{UPDATE_PATH_FIELD}: '{sub_path}' does not exist") from None
        if stat.S_ISLNK(mode):
            raise ValueError(f"{UPDATE_PATH_FIELD}: '{sub_path}' goes through a symbolic link")
        if not stat.S_ISDIR(mode):
            raise ValueError(f"{UPDATE_PATH_FIELD}: '{sub_path}' is not a directory")
    result = TreeUpdate()
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        here = Path(dirpath)
        for name in sorted(filenames):
            if is_candidate(name):
                relpath = (here / name).relative_to(root).as_posix()
                _update_file(here / name, relpath, policies, result)
    return result


def _update_file(
    path: Path, relpath: str, policies: Mapping[str, ImageRef], result: TreeUpdate
) -> None:
    """Update one file if it is a regular, readable, marked YAML file; record the outcome."""
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):
            return  # symbolic links and special files are never followed
        if st.st_size > MAX_FILE_BYTES:
            result.skipped[relpath] = f"file larger than {MAX_FILE_BYTES} bytes"
            return
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            content = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        result.skipped[relpath] = f"unreadable: {e.strerror or e}"
        return
    if SETTER_TOKEN not in content:
        return
    try:
        update = update_yaml(content, policies, path=relpath)
    except SetterParseError as e:
        result.skipped[relpath] = str(e)
        return
    if not update.changes:
        return
    # In place (no temporary file and rename): the file keeps its mode and owner.
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | _NOFOLLOW)
    with os.fdopen(fd, "wb") as f:
        f.write(update.content)
    result.files[relpath] = list(update.changes)
    result.changes.extend(update.changes)
