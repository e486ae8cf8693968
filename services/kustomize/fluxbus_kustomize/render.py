"""Rendering a Kustomization: exactly the manifests the service applies, from the
source artifact in the object store or from a local directory (`fluxbus build`,
`fluxbus diff --path`).

`substituteFrom` values come from the cluster, else the store (`variables`);
a render for the same (artifact digest, spec, substitution inputs) is taken
from the builder's cache without fetching the artifact. `owned()` adds the
owner labels the apply adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from fluxbus_common import artifact as artifact_format
from fluxbus_common import keys, subjects
from fluxbus_common.api import Kustomization
from fluxbus_common.api.meta import Artifact
from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic
from fluxbus_common.ports import BusError
from fluxbus_kustomize.build import Builder, BuildError, BuildSpec, RenderCache
from fluxbus_kustomize.logic.substitute import merge_variables
from fluxbus_kustomize.not_served import FileLoader, manifest_files
from fluxbus_kustomize.ports import ClusterPort, KustomizeStore
from fluxbus_kustomize.variables import load_variables


def owned(obj: Kustomization, doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of `doc` carrying the owner labels of `obj`."""
    out = dict(doc)
    meta = dict(out.get("metadata") or {})
    meta["labels"] = {
        **(meta.get("labels") or {}),
        keys.KUSTOMIZE_NAME_LABEL: obj.metadata.name,
        keys.KUSTOMIZE_NAMESPACE_LABEL: obj.metadata.namespace,
    }
    out["metadata"] = meta
    return out


class Renderer:
    """Renders Kustomizations with one `Builder` (and its cache)."""

    def __init__(self, store: KustomizeStore, builder: Builder, *, strict: bool = True) -> None:
        self.store = store
        self.builder = builder
        self.strict = strict

    async def render(
        self, obj: Kustomization, artifact: Artifact, cluster: ClusterPort
    ) -> list[dict[str, Any]]:
        """Return the rendered, substituted objects of `obj` at `artifact`.

        Raises Generic (ArtifactFailed, BuildFailed, PostBuildSubstitutionFailed…).
        """
        spec = BuildSpec.from_kustomization(obj.spec)
        variables = await load_variables(obj, self.store, cluster)
        digest = str(artifact.digest)
        merged = merge_variables([variables], spec.substitute) if spec.post_build else {}
        objects = self.builder.cache.get(RenderCache.key(digest, spec, merged, self.strict))
        if objects is not None:
            return objects
        async with self.fetched(obj, artifact) as tarball:
            return await self._build(tarball, digest, spec, variables)

    async def render_local(
        self, obj: Kustomization, directory: Path, cluster: ClusterPort
    ) -> list[dict[str, Any]]:
        """Return the objects `obj` would apply with `directory` in place of `spec.path`
        (packed as an artifact first, with the same limits). Raises Generic."""
        spec = BuildSpec.from_kustomization(obj.spec.model_copy(update={"path": "./"}))
        variables = await load_variables(obj, self.store, cluster)
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="fluxbus-local-"))
        try:
            tarball = workdir / "local.tar.gz"
            try:
                packed = await asyncio.to_thread(_pack, directory, tarball)
            except (OSError, artifact_format.ArtifactFormatError) as e:
                raise Generic(f"{directory}: {e}", Reason.ARTIFACT_FAILED) from None
            return await self._build(tarball, packed.digest, spec, variables)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _build(
        self, tarball: Path, digest: str, spec: BuildSpec, variables: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        try:
            return await self.builder.build(tarball, digest, spec, variables, strict=self.strict)
        except BuildError as e:
            raise Generic(e.message, e.reason) from None

    @contextlib.asynccontextmanager
    async def fetched(self, obj: Kustomization, artifact: Artifact) -> AsyncIterator[Path]:
        """Fetch the source artifact into a temporary file, removed afterwards.

        Raises Generic(ArtifactFailed) when it is missing or cannot be read.
        """
        name = artifact.path
        if not name:
            ref = obj.spec.source_ref
            digest = str(artifact.digest).split(":")[-1]
            ns = ref.namespace or obj.metadata.namespace
            name = subjects.artifact_name(ref.kind, ns, ref.name, digest)
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="fluxbus-artifact-"))
        try:
            tarball = workdir / "artifact.tar.gz"
            try:
                await self.store.get_artifact(name, tarball)
            except KeyError:
                raise Generic(
                    f"artifact {name} (revision {artifact.revision}) not found in storage",
                    Reason.ARTIFACT_FAILED,
                ) from None
            except BusError as e:
                raise Generic(f"fetching artifact {name}: {e}", Reason.ARTIFACT_FAILED) from e
            yield tarball
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    def artifact_files(self, obj: Kustomization, artifact: Artifact | None) -> FileLoader:
        """Return a loader of the artifact's manifest files (fetched only if called)."""

        async def load() -> Mapping[str, str]:
            if artifact is None:
                return {}
            async with self.fetched(obj, artifact) as tarball:
                return await manifest_files(tarball)

        return load


def _pack(directory: Path, out: Path) -> artifact_format.ArtifactFile:
    """Pack a local directory as a source artifact (blocking: run in a thread)."""
    if not directory.is_dir():
        raise OSError(f"not a directory: {directory}")
    limits = artifact_format.ArtifactLimits.from_env()
    return artifact_format.write_tarball(artifact_format.list_files(directory), out, limits)
