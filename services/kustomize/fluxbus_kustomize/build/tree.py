"""The extracted artifact tree: unpacking it privately, reading its kustomizations,
and the sandbox check of every kustomization a build reaches.

The artifact format and its limits are `fluxbus_common.artifact`'s (the source
service refuses at build time what would be refused here); this module wraps
its refusals in `ArtifactRefusedError`. The decisions of the sandbox are
`logic.sandbox`'s; this is the glue that walks the files. `prescan` refuses a
YAML bomb (`fluxbus_common.safeyaml`) among the files kustomize will read,
before kustomize expands it.

Blocking (file I/O): called from `Builder._stage`, which runs in a thread.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path
from typing import Any

import yaml

from fluxbus_common import safeyaml
from fluxbus_common.artifact import ArtifactFormatError, ArtifactLimits, copy_verified, extract
from fluxbus_common.safeyaml import YamlLimitError, YamlLimits
from fluxbus_kustomize.build.errors import ArtifactRefusedError, BuildError
from fluxbus_kustomize.logic.generate import kustomization_file
from fluxbus_kustomize.logic.manifests import load
from fluxbus_kustomize.logic.sandbox import check_kustomization, check_plugin_config


def unpack(
    artifact: Path, copy_path: Path, root: Path, digest: str, limits: ArtifactLimits
) -> None:
    """Copy the artifact to `copy_path` checking its digest, then extract that verified
    copy into `root` within `limits`. Raises ArtifactRefusedError."""
    try:
        copy_verified(artifact, copy_path, digest)
        extract(copy_path, root, limits)
    except ArtifactFormatError as e:
        raise ArtifactRefusedError(str(e)) from e


def rel(root: Path, path: Path) -> str:
    """Return `path` relative to the artifact root, POSIX style (`.` for the root)."""
    return path.relative_to(root).as_posix() or "."


def read_text(root: Path, path: Path) -> str:
    """Return a file of the tree as UTF-8 text. Raises BuildError naming the file."""
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):  # extraction never creates one; belt and braces
            raise BuildError(f"{rel(root, path)}: symlinks are not allowed")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BuildError(f"{rel(root, path)}: not UTF-8 text") from None
    except OSError as e:
        raise BuildError(f"{rel(root, path)}: {e.strerror or e}") from None


def load_kustomization(root: Path, kfile: Path) -> dict[str, Any]:
    """Return a kustomization file's object (`{}` when empty). Raises BuildError."""
    text = read_text(root, kfile)
    try:
        data = load(text)
    except YamlLimitError as e:
        raise BuildError(f"{rel(root, kfile)}: {e}") from None
    except yaml.YAMLError as e:
        raise BuildError(f"{rel(root, kfile)}: invalid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BuildError(f"{rel(root, kfile)}: not a kustomization object")
    return data


def prescan(root: Path, paths: list[str], limits: YamlLimits) -> None:
    """Refuse the build when one of `paths` (files relative to `root`, those kustomize
    will read) holds YAML over `limits` (an alias bomb, nesting too deep). Raises
    BuildError naming the file, the line and the limit.

    Only files with an alias character (`*`) are parsed, as events (linear in their
    size): only aliases make kustomize's work grow faster than its input (depth and
    size are checked again on its output). A file that is not YAML is left to
    kustomize to report.
    """
    for path in paths:
        try:
            data = (root / path).read_bytes()
        except OSError as e:
            raise BuildError(f"{path}: {e.strerror or e}") from None
        if b"*" not in data:
            continue
        try:
            safeyaml.check(data, limits)
        except YamlLimitError as e:
            raise BuildError(f"{path}: {e}: refused before rendering") from None
        except yaml.YAMLError:
            continue  # not YAML: kustomize reports it if it reads it as such


def list_files(base: Path) -> list[str]:
    """Return every file under `base`, relative to it, in walk order (links not followed)."""
    files: list[str] = []
    for dirpath, _dirnames, filenames in os.walk(base, followlinks=False):
        d = Path(dirpath)
        for name in filenames:
            files.append((d / name).relative_to(base).as_posix())
    return files


def sandbox_tree(root: Path, start: str) -> None:
    """Check every kustomization reachable from `start` (relative dir); raise BuildError
    listing every violation.

    Kustomizations reached from `transformers`/`generators`/`validators` are in
    plugin context: the files they list are plugin configs and checked as such.
    """
    errors: list[str] = []
    queue: list[tuple[str, bool]] = [(start, False)]
    seen: set[tuple[str, bool]] = set()
    while queue:
        rel_dir, plugin_context = queue.pop(0)
        if (rel_dir, plugin_context) in seen:
            continue
        seen.add((rel_dir, plugin_context))
        d = root / rel_dir
        name = kustomization_file(p.name for p in d.iterdir() if p.is_file())
        if name is None:
            continue  # kustomize itself reports a directory without a kustomization
        kfile = posixpath.join(rel_dir, name) if rel_dir != "." else name
        report = check_kustomization(load_kustomization(root, root / kfile), kfile)
        errors.extend(report.errors)
        targets = [(ref, plugin_context) for ref in report.follow]
        targets += [(ref, True) for ref in report.plugin_paths]
        for ref, as_plugin in targets:
            assert ref.resolved is not None  # follow/plugin_paths hold resolved references
            target = root / ref.resolved
            if target.is_symlink():
                errors.append(f"{kfile}: {ref.field}: '{ref.value}' is a symlink")
            elif target.is_dir():
                queue.append((ref.resolved, as_plugin))
            elif as_plugin and target.is_file():
                errors.extend(check_plugin_config(ref.resolved, read_text(root, target), rel_dir))
    if errors:
        raise BuildError("; ".join(errors))
