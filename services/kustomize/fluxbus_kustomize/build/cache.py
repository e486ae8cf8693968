"""`RenderCache` and the content key of a render.

kustomize's output (before substitution) is keyed by the hash of what kustomize
reads for the path: every kustomization file of the overlay chain (the root one
as written, overrides included), every file they reference and every file
under a referenced directory, with their paths (the whole extracted tree when
that closure is uncertain, e.g. with plugin configs). Artifacts that differ
only elsewhere (a README, another app of a monorepo) share one render.
Substitution and `commonMetadata` are applied per build. A second map from
(artifact digest, path, spec fields, substitution inputs hash) to the result
lets a repeated build skip even the artifact fetch.

`RenderCache` is in memory and does no I/O; `content_key` reads the extracted
tree (blocking: called from `Builder._stage`, which runs in a thread).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import posixpath
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxbus_common.artifact import file_sha256, normalise_digest
from fluxbus_kustomize.build.errors import BuildError
from fluxbus_kustomize.build.tree import load_kustomization, rel
from fluxbus_kustomize.logic.buildspec import BuildSpec, normalise_path
from fluxbus_kustomize.logic.generate import KUSTOMIZATION_FILES, kustomization_file
from fluxbus_kustomize.logic.sandbox import check_kustomization


@dataclass(frozen=True)
class Render:
    """One kustomize output, before substitution: `(yaml_text, object)` per document."""

    documents: tuple[tuple[str, dict[str, Any]], ...]


@dataclass(frozen=True)
class _Result:
    content_key: str
    objects: list[dict[str, Any]] | None
    """The final objects when post-build processing changed them; None when they are
    exactly the render's (then they are taken from the render, not stored twice)."""


class RenderCache:
    """Two in-memory LRUs: kustomize renders keyed by content, and build results keyed by
    every input of a build.

    - `renders`: content key (a hash of every file kustomize reads for the path, the
      final root kustomization text included) → kustomize's output before substitution.
      Artifacts that differ only in files kustomize does not read share one render.
    - results: `key(digest, spec, variables, strict)` → the content key (and the final
      objects when substitution or `commonMetadata` changed them), so a repeated build
      is answered without fetching or extracting the artifact.
    """

    def __init__(self, max_entries: int = 64, max_renders: int | None = None) -> None:
        self.max_entries = max_entries
        self.max_renders = max_renders if max_renders is not None else max_entries
        self._entries: OrderedDict[tuple[str, ...], _Result] = OrderedDict()
        self._renders: OrderedDict[str, Render] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.render_hits = 0
        self.render_misses = 0

    @staticmethod
    def key(
        digest: str, spec: BuildSpec, variables: Mapping[str, str], strict: bool
    ) -> tuple[str, ...]:
        """Return the result key; variable values are hashed, never stored."""
        subst = hashlib.sha256(
            json.dumps(
                {"vars": dict(variables), "strict": strict}, sort_keys=True, default=str
            ).encode()
        ).hexdigest()
        return (normalise_digest(digest), normalise_path(spec.path), spec.cache_fields(), subst)

    def get(self, key: tuple[str, ...]) -> list[dict[str, Any]] | None:
        """Return a copy of the final objects of a build with this key, or None."""
        result = self._entries.get(key)
        render = None
        if result is not None and result.objects is None:
            render = self.get_render(result.content_key, count=False)
            if render is None:  # its render was evicted: the result is gone too
                del self._entries[key]
                result = None
        if result is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        if result.objects is not None:
            return copy.deepcopy(result.objects)
        assert render is not None
        return [copy.deepcopy(obj) for _, obj in render.documents]

    def put(
        self,
        key: tuple[str, ...],
        content_key: str,
        objects: Sequence[dict[str, Any]] | None,
    ) -> None:
        """Remember a build result: its render's content key and, when they differ from
        the render's objects, the final objects (copied)."""
        stored = copy.deepcopy(list(objects)) if objects is not None else None
        self._entries[key] = _Result(content_key, stored)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get_render(self, content_key: str, *, count: bool = True) -> Render | None:
        """Return the cached render for a content key (shared: callers must not mutate
        it), or None."""
        render = self._renders.get(content_key)
        if count:
            if render is None:
                self.render_misses += 1
            else:
                self.render_hits += 1
        if render is not None:
            self._renders.move_to_end(content_key)
        return render

    def put_render(self, content_key: str, render: Render) -> None:
        """Remember a render, forgetting the least recently used beyond `max_renders`."""
        self._renders[content_key] = render
        self._renders.move_to_end(content_key)
        while len(self._renders) > self.max_renders:
            self._renders.popitem(last=False)

    @property
    def render_count(self) -> int:
        """How many distinct renders are held."""
        return len(self._renders)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._renders.clear()


# --------------------------------------------------------------------------- content key

_CONTENT_KEY_VERSION = "fluxbus-render-v1"
"""Bumped whenever what the content key covers changes, so old keys never match."""
_PLUGIN_FIELDS = ("transformers", "generators", "validators")
"""Plugin configs can name further files in fields the sandbox checks but does not
list as references; a kustomization using them is keyed by the whole tree."""


class _Uncertain(Exception):
    """The closure of a path cannot be determined with certainty."""


def _add_path(root: Path, rel_path: str, entries: dict[str, str]) -> bool:
    """Record a referenced path in `entries` (file → its sha256, directory → every file
    under it, missing → a marker). Returns whether it is a directory."""
    if rel_path in entries:
        return entries[rel_path] == "dir"
    target = root / rel_path
    if target.is_symlink():
        raise _Uncertain(rel_path)
    if target.is_dir():
        entries[rel_path] = "dir"
        for dirpath, dirnames, filenames in os.walk(target, followlinks=False):
            d = Path(dirpath)
            for name in dirnames:
                if (d / name).is_symlink():
                    raise _Uncertain(rel(root, d / name))
            for name in filenames:
                f = d / name
                frel = rel(root, f)
                if frel not in entries:
                    if not f.is_file() or f.is_symlink():
                        raise _Uncertain(frel)
                    entries[frel] = file_sha256(f)
        return True
    if target.is_file():
        entries[rel_path] = file_sha256(target)
    elif target.exists():
        raise _Uncertain(rel_path)  # neither a regular file nor a directory
    else:
        entries[rel_path] = "missing"
    return False


def _closure(root: Path, start: str) -> dict[str, str]:
    """Return `{path: sha256 | "dir" | "missing"}` for every path kustomize can read when
    building `start`: each kustomization file of the overlay chain (whatever its name,
    since kustomize refuses a directory with two) and every path they reference, every
    file under a referenced directory. Raises _Uncertain when that cannot be told."""
    entries: dict[str, str] = {}
    queue = [start]
    seen: set[str] = set()
    while queue:
        rel_dir = queue.pop()
        if rel_dir in seen:
            continue
        seen.add(rel_dir)
        d = root / rel_dir
        if d.is_symlink() or not d.is_dir():
            raise _Uncertain(rel_dir)
        present = []
        for candidate in KUSTOMIZATION_FILES:
            crel = posixpath.join(rel_dir, candidate) if rel_dir != "." else candidate
            if (d / candidate).exists() or (d / candidate).is_symlink():
                if _add_path(root, crel, entries):
                    raise _Uncertain(crel)  # a directory with a kustomization file's name
                present.append(candidate)
        name = kustomization_file(present)
        if name is None:
            continue  # a referenced directory: every file in it is already recorded
        kfile = posixpath.join(rel_dir, name) if rel_dir != "." else name
        try:
            kus = load_kustomization(root, root / kfile)
        except BuildError:
            raise _Uncertain(kfile) from None  # kustomize reports it; the key must not guess
        if any(kus.get(f) for f in _PLUGIN_FIELDS):
            raise _Uncertain(kfile)
        report = check_kustomization(kus, kfile)
        if report.errors:
            raise _Uncertain(kfile)
        for ref in report.references:
            if ref.resolved is None:
                raise _Uncertain(f"{kfile}: {ref.field}")
            if _add_path(root, ref.resolved, entries) and ref.role in ("resource", "component"):
                queue.append(ref.resolved)
    return entries


def _whole_tree(root: Path) -> dict[str, str]:
    """Return `{path: sha256}` for every file of the extracted artifact."""
    entries: dict[str, str] = {}
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        for name in filenames:
            entries[rel(root, d / name)] = file_sha256(d / name)
    return entries


@dataclass(frozen=True)
class RenderInputs:
    """What kustomize reads to build a path: `files` maps each path (relative to the
    artifact root) to its sha256, `"dir"` or `"missing"`; `scope` is `closure`, or `tree`
    when the closure was uncertain and every file of the tree stands in for it."""

    scope: str
    files: dict[str, str]

    def regular_files(self) -> list[str]:
        """Return the paths of the regular files among the inputs, sorted."""
        return sorted(p for p, v in self.files.items() if v not in ("dir", "missing"))


def render_inputs(root: Path, rel_path: str) -> RenderInputs:
    """Return what kustomize reads to build `rel_path` (after `prepare`, so the root
    kustomization holds the spec overrides): the closure of the overlay chain, or the
    whole tree when that closure is uncertain (plugin configs, anything unexpected)."""
    try:
        return RenderInputs("closure", _closure(root, rel_path))
    except _Uncertain:
        return RenderInputs("tree", _whole_tree(root))


def content_key(root: Path, rel_path: str, kubectl: str, inputs: RenderInputs | None = None) -> str:
    """Return the key of what kustomize reads to build `rel_path`: the hash of every
    file of its `render_inputs` (given, or computed here), with its path relative to the
    artifact root."""
    if inputs is None:
        inputs = render_inputs(root, rel_path)
    scope, entries = inputs.scope, inputs.files
    doc = {
        "v": _CONTENT_KEY_VERSION,
        "kubectl": kubectl,
        "path": rel_path,
        "scope": scope,
        "files": sorted(entries.items()),
    }
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()
