"""Artifact adapter of the source service: Flux's exclusion rules over the common
artifact format, and `spec.include` copies.

The format itself (deterministic `tar.gz`, digests, safe extraction, limits) is
`fluxbus_common.artifact`'s, shared with the kustomize service: an artifact the
kustomize service would refuse (over `ArtifactLimits`) is refused here, when it
is built. This module adds what is the source's own: `.git` is never walked
into, and Flux's exclusion rules (`logic.ignore`) are applied, including
`.sourceignore` files at any depth.

Blocking work runs in a thread: call the `async` functions from the loop.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import shutil
import stat
import tempfile
from pathlib import Path

from fluxbus_common.artifact import (
    ArtifactFile,
    ArtifactFormatError,
    ArtifactLimits,
    extract,
    file_sha256,
    list_files,
    write_tarball,
)
from fluxbus_source.errors import ArchiveError
from fluxbus_source.logic.ignore import (
    IGNORE_FILE,
    MAX_IGNORE_BYTES,
    ExclusionRules,
    IgnoreRulesError,
    build_rules,
)
from fluxbus_source.logic.paths import safe_relpath

__all__ = [
    "ArtifactFile",
    "archive",
    "build_tarball",
    "copy_include",
    "extract_tarball",
    "file_sha256",
    "include_artifact",
]


def _ignore_files(files: list[tuple[str, Path]]) -> list[tuple[str, str]]:
    """`(directory, text)` of every `.sourceignore`, root first, then deeper directories
    (later, deeper rules override earlier ones). Each is read up to one byte past
    `MAX_IGNORE_BYTES`, enough for `build_rules` to refuse a larger one."""
    ignores = [
        (posixpath.dirname(rel), _read_head(path, MAX_IGNORE_BYTES + 1))
        for rel, path in files
        if posixpath.basename(rel) == IGNORE_FILE
    ]
    ignores.sort(key=lambda d: (d[0].count("/") if d[0] else -1, d[0]))
    return ignores


def _read_head(path: Path, size: int) -> str:
    with path.open("rb") as f:
        return f.read(size).decode("utf-8", "replace")


def build_tarball(
    source_dir: Path | str,
    out_path: Path | str,
    spec_ignore: str | None = None,
    rules: ExclusionRules | None = None,
    limits: ArtifactLimits | None = None,
) -> ArtifactFile:
    """Archive `source_dir` into `out_path` deterministically (blocking).

    `spec_ignore` is the GitRepository's `spec.ignore`; `rules` overrides the
    whole rule set (tests, other kinds); `limits` defaults to
    `ArtifactLimits.from_env()`, the consumers' limits. Returns the `ArtifactFile`.
    Raises `ArchiveError` when the directory cannot be read or written, when the
    ignore rules are over their bounds (`logic.ignore`), or when the artifact would
    exceed the limits (then nothing is written).
    """
    src = Path(source_dir)
    try:
        files = list_files(src)
        rules = rules or build_rules(_ignore_files(files), spec_ignore)
        kept = [(rel, path) for rel, path in files if not rules.excluded(rel)]
        return write_tarball(kept, out_path, limits or ArtifactLimits.from_env())
    except (ArtifactFormatError, IgnoreRulesError) as e:
        raise ArchiveError(str(e)) from None
    except OSError as e:
        raise ArchiveError(f"unable to archive '{src.name}': {e.strerror or e}") from e


async def archive(
    source_dir: Path | str,
    out_path: Path | str,
    spec_ignore: str | None = None,
    rules: ExclusionRules | None = None,
    limits: ArtifactLimits | None = None,
) -> ArtifactFile:
    """`build_tarball` in a worker thread."""
    return await asyncio.to_thread(build_tarball, source_dir, out_path, spec_ignore, rules, limits)


def extract_tarball(
    tar_path: Path | str, dest_dir: Path | str, limits: ArtifactLimits | None = None
) -> int:
    """Unpack an artifact safely into `dest_dir` (blocking); return the file count.

    The common extraction, with `limits` defaulting to `ArtifactLimits.from_env()`:
    only regular files and directories are written; absolute names, `..`, links,
    devices and anything over the limits are refused with `ArchiveError`.
    """
    name = Path(tar_path).name
    try:
        return extract(tar_path, dest_dir, limits or ArtifactLimits.from_env())
    except ArtifactFormatError as e:
        raise ArchiveError(f"included artifact '{name}' refused: {e}") from None
    except OSError as e:
        raise ArchiveError(f"unable to unpack artifact '{name}': {e.strerror or e}") from e


def copy_include(
    source_root: Path | str,
    dest_root: Path | str,
    from_path: str | None,
    to_path: str,
) -> int:
    """Copy `source_root/from_path` into `dest_root/to_path` (blocking); return files copied.

    This is `spec.include[]`: `from_path` defaults to the whole artifact,
    `to_path` is required (the caller defaults it to the repository name).
    Existing files are overwritten; symlinks in the source are skipped;
    nothing is written outside `dest_root` (paths are validated, and a
    symlink in the destination is never followed). Raises `InvalidSpecError`
    for a bad path, `ArchiveError` when `from_path` does not exist.
    """
    src_root = Path(source_root)
    dst_root = Path(dest_root)
    frm = safe_relpath(from_path, "spec.include.fromPath")
    to = safe_relpath(to_path, "spec.include.toPath")
    src = src_root / frm if frm else src_root
    if src.is_symlink() or not src.exists():
        raise ArchiveError(f"spec.include.fromPath: '{from_path}' not found in included artifact")
    dst = dst_root / to if to else dst_root

    def ensure_dir(d: Path) -> None:
        # Refuse to follow a symlink anywhere between dest_root and d.
        cur = dst_root
        for part in d.relative_to(dst_root).parts:
            cur = cur / part
            if cur.is_symlink():
                raise ArchiveError(f"spec.include.toPath: '{to_path}' crosses a symlink; refused")
            if cur.exists() and not cur.is_dir():
                cur.unlink()
            cur.mkdir(exist_ok=True)

    count = 0
    if src.is_file():
        ensure_dir(dst.parent)
        if dst.is_symlink() or dst.is_dir():
            raise ArchiveError(f"spec.include.toPath: '{to_path}' is not a regular file path")
        shutil.copyfile(src, dst)
        return 1
    for dirpath, dirnames, filenames in os.walk(src):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not (d / n).is_symlink() and n != ".git")
        rel = d.relative_to(src)
        target_dir = dst / rel
        ensure_dir(target_dir)
        for name in sorted(filenames):
            s = d / name
            if not stat.S_ISREG(s.lstat().st_mode):
                continue
            t = target_dir / name
            if t.is_symlink() or t.is_dir():
                raise ArchiveError(
                    f"spec.include.toPath: '{to}/{rel / name}' would replace a link or directory"
                )
            shutil.copyfile(s, t)
            os.chmod(t, 0o755 if s.stat().st_mode & 0o111 else 0o644)
            count += 1
    return count


async def include_artifact(
    tar_path: Path | str,
    dest_root: Path | str,
    from_path: str | None,
    to_path: str,
) -> int:
    """Unpack an included artifact to a temp dir and copy `from_path` to `to_path` (in a thread)."""

    def run() -> int:
        with tempfile.TemporaryDirectory(prefix="fluxbus-include-") as tmp:
            extract_tarball(tar_path, tmp)
            return copy_include(tmp, dest_root, from_path, to_path)

    return await asyncio.to_thread(run)
