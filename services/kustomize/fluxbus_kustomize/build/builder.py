"""`Builder`: artifact tarball → rendered, substituted Kubernetes objects.

Steps, each failing with a typed `BuildError` whose message names the file:
verify and extract the artifact (`tree.unpack`), prepare and sandbox-check the
kustomization (`kustomize.prepare`), find what kustomize will read
(`cache.render_inputs`), refuse a YAML bomb among those files (`tree.prescan`),
key them by content (`cache.content_key`), run kustomize within `BuildLimits`
(memory, output, time) unless that render is cached, then post-build substitution and
`commonMetadata`. The work dir is removed afterwards. Blocking work (temp dir,
copy, extraction, preparation, hashing) runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxbus_common.artifact import ArtifactLimits
from fluxbus_common.safeyaml import DEFAULT_LIMITS, YamlLimits
from fluxbus_kustomize.build.cache import Render, RenderCache, content_key, render_inputs
from fluxbus_kustomize.build.errors import PostBuildError
from fluxbus_kustomize.build.kustomize import (
    find_kubectl,
    parse_output,
    post_process,
    prepare,
    run_kustomize,
)
from fluxbus_kustomize.build.process import (
    MEMORY_ENV,
    OUTPUT_ENV,
    TIMEOUT_ENV,
    ProcessLimits,
    parse_bytes,
)
from fluxbus_kustomize.build.tree import prescan, unpack
from fluxbus_kustomize.logic.buildspec import BuildSpec, normalise_path
from fluxbus_kustomize.logic.substitute import (
    SubstitutionError,
    merge_variables,
    substitute_documents,
)


@dataclass(frozen=True)
class BuildLimits:
    """Bounds on one build: what it may extract, what kustomize may read, use and print.

    `from_env` reads FLUXBUS_RENDER_MEMORY, FLUXBUS_RENDER_MAX_OUTPUT (bytes, or with a
    `Ki`/`Mi`/`Gi` suffix; 0 lifts the memory limit), FLUXBUS_RENDER_TIMEOUT (seconds)
    and the artifact limits (`ArtifactLimits.from_env`).
    """

    timeout: float = 120.0
    """Seconds kustomize may run (Flux's default Kustomization timeout is the interval)."""
    max_output_bytes: int = 256 * 1024 * 1024
    """kustomize's stdout: the child is killed as soon as it prints more."""
    memory_bytes: int | None = 1 << 30
    """kustomize's memory (RLIMIT_DATA; None: unlimited). Rendering a large repository
    takes tens of MB; the 447-byte YAML bomb would take GBs."""
    yaml: YamlLimits = DEFAULT_LIMITS
    """What the YAML kustomize reads (pre-scanned) and prints may expand to."""
    artifact: ArtifactLimits = field(default_factory=ArtifactLimits.from_env)
    """What the artifact may hold: the same limits the source service builds within."""

    @property
    def process(self) -> ProcessLimits:
        return ProcessLimits(self.timeout, self.max_output_bytes, self.memory_bytes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BuildLimits:
        """Return the limits of the environment (the defaults where unset). Raises
        ValueError naming the variable of a malformed value."""
        e = os.environ if env is None else env
        d = cls(artifact=ArtifactLimits.from_env(e))
        values: dict[str, Any] = {}
        if raw := (e.get(MEMORY_ENV) or "").strip():
            values["memory_bytes"] = parse_bytes(MEMORY_ENV, raw) or None
        if raw := (e.get(OUTPUT_ENV) or "").strip():
            values["max_output_bytes"] = parse_bytes(OUTPUT_ENV, raw) or d.max_output_bytes
        if raw := (e.get(TIMEOUT_ENV) or "").strip():
            try:
                values["timeout"] = float(raw)
            except ValueError:
                raise ValueError(f"{TIMEOUT_ENV}: not a number of seconds: {raw!r}") from None
        return dataclasses.replace(d, **values)


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
        self.limits = limits or BuildLimits.from_env()
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
        ArtifactRefusedError (digest, unsafe or over-limit tarball), BuildError
        (path, sandbox, kustomize) or PostBuildError (substitution).
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
                    self.renders += 1
                    stdout = await run_kustomize(
                        self.kubectl, kdir, workdir, limits=self.limits.process
                    )
                    documents = await asyncio.to_thread(parse_output, stdout, self.limits.yaml)
                    render = Render(tuple(documents))
                    self.cache.put_render(ckey, render)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        # the render is shared between builds: work on a copy
        documents = [(text, copy.deepcopy(obj)) for text, obj in render.documents]
        always = spec.post_build and spec.substitute_always and not variables
        if always:
            documents = _substitute_without_variables(documents, strict)
        objects, post_processed = post_process(
            documents, spec, variables, strict, self.limits.max_output_bytes
        )
        self.cache.put(key, ckey, objects if post_processed or always else None)
        return objects

    def _stage(self, artifact: Path, digest: str, spec: BuildSpec) -> tuple[Path, Path, str]:
        """Verify, extract and prepare the artifact in a new work dir (blocking: runs in a
        thread). Returns the work dir (the caller removes it), the directory to hand to
        kustomize and its content key. Removes the work dir itself when it fails."""
        workdir = Path(tempfile.mkdtemp(prefix="fluxbus-build-", dir=self.temp_dir))
        try:
            root = workdir / "root"
            for d in (root, workdir / "home", workdir / "plugins"):
                d.mkdir(mode=0o700)
            unpack(artifact, workdir / "artifact.tar.gz", root, digest, self.limits.artifact)
            kdir = prepare(root, spec)
            rel_path = normalise_path(spec.path)
            inputs = render_inputs(root, rel_path)
            prescan(root, inputs.regular_files(), self.limits.yaml)
            return workdir, kdir, content_key(root, rel_path, self.kubectl, inputs)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise


def _substitute_without_variables(
    documents: list[tuple[str, dict[str, Any]]], strict: bool
) -> list[tuple[str, dict[str, Any]]]:
    """Flux's `substituteStrategy: Always` when no variable is defined: substitute
    anyway (defaults apply; strict mode still fails on a variable without one).
    Returns (text, object) pairs for `post_process`. Raises PostBuildError."""
    try:
        objects = substitute_documents(documents, {}, strict=strict, always=True)
    except SubstitutionError as e:
        raise PostBuildError(str(e)) from None
    return [("", obj) for obj in objects]


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
