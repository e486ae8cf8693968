"""Building a HelmChart's chart from its source, as source-controller's chart builders do:
from a HelmRepository's index (HTTP pull), from an OCI HelmRepository (Helm's engine
pulls), or from a GitRepository artifact (Helm's engine packages).

Each builder returns a `ChartBuild`: what the chart is (name, version = artifact
revision) and the archive to store, or no archive when the stored artifact is already
that chart (nothing downloaded or packaged then). Failures are `BuildError`s carrying
Flux's build reason and words ("invalid chart reference: ..."); the reconciler turns
them into conditions and stalls on the persistent ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxbus_common.api.helm import HelmChart, HelmRepository
from fluxbus_common.api.meta import Artifact
from fluxbus_common.artifact import ArtifactFormatError, verify
from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic, ReconcileError
from fluxbus_common.ports import BusError
from fluxbus_common.semver import try_parse_version
from fluxbus_helmsdk import HelmEngineError, HelmUnavailable
from fluxbus_source.errors import HelmFetchError
from fluxbus_source.helmcharts import (
    ChartFileError,
    chart_dir_in,
    read_chart_meta,
    read_values_files,
    unpack,
    unpack_chart_archive,
)
from fluxbus_source.logic.helmchart import (
    BUILD_SUMMARY,
    BuildSummary,
    HelmReason,
    artifact_version,
    pick_oci_version,
)
from fluxbus_source.logic.helmindex import (
    MAX_CHART_SIZE,
    ChartReferenceError,
    pick_version,
    resolve_chart_url,
    safe_url,
    same_host,
)
from fluxbus_source.logic.paths import safe_relpath
from fluxbus_source.logic.values import ValuesFileError, dump_values, merge_files
from fluxbus_source.ports import ChartEnginePort, HelmHTTPPort, HelmStore
from fluxbus_source.reconcilers.helmsecrets import registry_auth, repository_credentials

__all__ = ["BuildError", "ChartBuild", "ChartBuilder"]

INDEX_CACHE = 16
"""Parsed indexes kept in memory, by digest (many HelmCharts share one repository)."""


class BuildError(Exception):
    """A chart build failed; `str()` is Flux's "<summary>: <error>"."""

    def __init__(self, reason: HelmReason, error: str) -> None:
        self.reason = reason
        self.message = f"{BUILD_SUMMARY[reason]}: {error}"
        super().__init__(self.message)


@dataclass
class ChartBuild:
    """A chart ready to store (`path`), or the stored one confirmed (`path` None)."""

    summary: BuildSummary
    path: Path | None = None
    values_files: list[str] = field(default_factory=list)


def _up_to_date(obj: HelmChart, name: str, version: str) -> bool:
    st = obj.status
    return (
        st.artifact is not None
        and st.artifact.revision == version
        and st.observed_chart_name == name
        and obj.metadata.generation == st.observed_generation
    )


class ChartBuilder:
    """Builds charts from the three source kinds through the ports."""

    def __init__(self, store: HelmStore, http: HelmHTTPPort, engine: ChartEnginePort) -> None:
        self.store = store
        self.http = http
        self.engine = engine
        self._indexes: dict[str, dict[str, Any]] = {}

    # -- shared ------------------------------------------------------------

    async def _download_artifact(self, artifact: Artifact, dest: Path, what: str) -> None:
        """Fetch a source artifact and check its digest; raise Generic on failure."""
        try:
            await self.store.get_artifact(artifact.path, dest)
        except KeyError:
            raise Generic(
                f"failed to open source artifact: {what} artifact '{artifact.path}' not found",
                HelmReason.NO_SOURCE_ARTIFACT,
            ) from None
        except BusError as e:
            raise Generic(
                f"failed to open source artifact: {e}", Reason.STORAGE_OPERATION_FAILED
            ) from e
        if artifact.digest:
            try:
                verify(dest, artifact.digest)
            except ArtifactFormatError as e:
                raise Generic(f"{what} artifact failed verification: {e}", Reason.FAILED) from None

    async def _values(self, obj: HelmChart, root: Path) -> tuple[str, list[str]]:
        """The merged `spec.valuesFiles` under `root` as YAML, and the files used."""
        try:
            files = await read_values_files(
                root, obj.spec.values_files, ignore_missing=obj.spec.ignore_missing_values_files
            )
            merged = merge_files(files)
        except (ChartFileError, ValuesFileError) as e:
            raise BuildError(
                HelmReason.VALUES_FILES_ERROR, f"failed to merge chart values: {e}"
            ) from None
        return dump_values(merged), [p for p, _ in files]

    async def _package(
        self, chart_dir: Path, work: Path, version: str | None, values_yaml: str | None, shown: str
    ) -> Path:
        out = work / "package"
        out.mkdir(exist_ok=True)
        try:
            return await self.engine.package(
                chart_dir, out, version=version, values_yaml=values_yaml
            )
        except HelmUnavailable:
            raise
        except HelmEngineError as e:
            raise BuildError(HelmReason.CHART_PACKAGE_ERROR, f"{shown}: {e}") from None

    async def _finish_remote(
        self, obj: HelmChart, data: bytes, summary: BuildSummary, work: Path
    ) -> ChartBuild:
        """Store a pulled archive as is, or repackage it with the merged values files."""
        if not obj.spec.values_files:
            path = work / "chart.tgz"
            await asyncio.to_thread(path.write_bytes, data)
            return ChartBuild(summary, path)
        try:
            chart_dir = await unpack_chart_archive(data, work)
        except ChartFileError as e:
            raise BuildError(
                HelmReason.CHART_PACKAGE_ERROR, f"failed to load downloaded chart: {e}"
            ) from None
        values_yaml, used = await self._values(obj, chart_dir)
        path = await self._package(chart_dir, work, summary.version, values_yaml, summary.name)
        summary = BuildSummary(summary.name, summary.version, True, tuple(used))
        return ChartBuild(summary, path, used)

    def _remote_version(self, obj: HelmChart, version: str) -> str:
        gen = obj.metadata.generation if obj.spec.values_files else None
        return artifact_version(version, values_generation=gen)

    # -- HelmRepository (HTTP) ---------------------------------------------

    async def _index(self, repo_artifact: Artifact, work: Path) -> dict[str, Any]:
        key = repo_artifact.digest or repo_artifact.path
        cached = self._indexes.get(key)
        if cached is not None:
            return cached
        path = work / "index.yaml"
        await self._download_artifact(repo_artifact, path, "HelmRepository")
        try:
            index = await asyncio.to_thread(lambda: json.loads(path.read_bytes()))
        except ValueError as e:
            raise Generic(
                f"failed to load the repository index: {e}", HelmReason.INDEXATION_FAILED
            ) from None
        if len(self._indexes) >= INDEX_CACHE:
            self._indexes.pop(next(iter(self._indexes)))
        self._indexes[key] = index
        return index

    async def from_index(
        self, obj: HelmChart, repo: HelmRepository, repo_artifact: Artifact, work: Path
    ) -> ChartBuild:
        """Pick the version in the repository's index and pull it over HTTP(S)."""
        index = await self._index(repo_artifact, work)
        try:
            cv = pick_version(index, obj.spec.chart, obj.spec.effective_version)
        except ChartReferenceError as e:
            raise BuildError(
                HelmReason.INVALID_CHART_REFERENCE,
                f"failed to get chart version for remote reference: {e}",
            ) from None
        version = self._remote_version(obj, cv.version)
        summary = BuildSummary(cv.name, version, bool(obj.spec.values_files), ())
        if _up_to_date(obj, cv.name, version):
            return ChartBuild(summary, None, list(obj.status.observed_values_files))
        if not cv.urls:
            raise BuildError(
                HelmReason.CHART_PULL_ERROR,
                f"failed to download chart for remote reference: chart '{cv.name}' has no downloadable URLs",
            )
        url = resolve_chart_url(repo.spec.url, cv.urls[0])
        try:
            creds = await repository_credentials(self.store, repo)
        except ReconcileError as e:
            raise Generic(
                f"failed to authenticate with the Helm repository: {e.message}",
                Reason.AUTHENTICATION_FAILED,
            ) from None
        try:
            data = await self.http.get(
                url,
                credentials=creds,
                send_auth=repo.spec.pass_credentials or same_host(repo.spec.url, url),
                timeout=repo.spec.timeout_seconds,
                max_bytes=MAX_CHART_SIZE,
            )
        except HelmFetchError as e:
            raise BuildError(
                HelmReason.CHART_PULL_ERROR,
                f"failed to download chart for remote reference: {e.message}",
            ) from None
        if cv.digest:
            got = hashlib.sha256(data).hexdigest()
            if got != cv.digest.removeprefix("sha256:"):
                raise BuildError(
                    HelmReason.CHART_PULL_ERROR,
                    f"failed to download chart for remote reference: {safe_url(url)}: digest "
                    f"sha256:{got} does not match the index's sha256:{cv.digest}",
                )
        return await self._finish_remote(obj, data, summary, work)

    # -- HelmRepository (OCI) ----------------------------------------------

    async def from_oci(self, obj: HelmChart, repo: HelmRepository, work: Path) -> ChartBuild:
        """Pick a tag of `<url>/<chart>` and pull it with Helm's engine."""
        ref = f"{repo.spec.url.rstrip('/')}/{obj.spec.chart}"
        auth = await registry_auth(self.store, repo)
        wanted = obj.spec.effective_version
        try:
            if try_parse_version(wanted) is not None:
                tag = wanted.replace("+", "_")
            else:
                tags = await self.engine.oci_tags(ref, auth)
                tag = pick_oci_version(tags, obj.spec.chart, wanted)
        except ChartReferenceError as e:
            raise BuildError(
                HelmReason.INVALID_CHART_REFERENCE,
                f"failed to get chart version for remote reference: {e}",
            ) from None
        except HelmUnavailable:
            raise
        except HelmEngineError as e:
            raise BuildError(
                HelmReason.CHART_PULL_ERROR,
                f"failed to get chart version for remote reference: {e}",
            ) from None
        name = obj.spec.chart.rsplit("/", 1)[-1]
        version = self._remote_version(obj, tag.replace("_", "+"))
        summary = BuildSummary(name, version, bool(obj.spec.values_files), ())
        if _up_to_date(obj, name, version):
            return ChartBuild(summary, None, list(obj.status.observed_values_files))
        try:
            data = await self.engine.oci_pull(ref, tag, auth)
        except HelmUnavailable:
            raise
        except HelmEngineError as e:
            raise BuildError(
                HelmReason.CHART_PULL_ERROR, f"failed to download chart for remote reference: {e}"
            ) from None
        if len(data) > MAX_CHART_SIZE:
            raise BuildError(
                HelmReason.CHART_PULL_ERROR, f"size of chart exceeds '{MAX_CHART_SIZE}' bytes limit"
            )
        return await self._finish_remote(obj, data, summary, work)

    # -- GitRepository -------------------------------------------------------

    async def from_git(self, obj: HelmChart, source: Artifact, work: Path) -> ChartBuild:
        """Package the chart at `spec.chart` of the GitRepository's artifact."""
        st, spec = obj.status, obj.spec
        revision = source.revision or ""
        values_gen = obj.metadata.generation if spec.values_files else None
        if (
            st.artifact is not None
            and st.observed_chart_name
            and st.observed_source_artifact_revision == revision
            and obj.metadata.generation == st.observed_generation
        ):
            summary = BuildSummary(
                st.observed_chart_name,
                st.artifact.revision or "",
                True,
                tuple(st.observed_values_files),
            )
            return ChartBuild(summary, None, list(st.observed_values_files))
        tarball = work / "source.tar.gz"
        await self._download_artifact(source, tarball, "GitRepository")
        root = work / "source"
        root.mkdir()
        try:
            await unpack(tarball, root)
        except ChartFileError as e:
            raise Generic(f"artifact untar error: {e}", Reason.FAILED) from None
        chart_rel = safe_relpath(spec.chart, "spec.chart")
        try:
            chart_dir = chart_dir_in(root, spec.chart)
            meta = await read_chart_meta(chart_dir, f"{chart_rel}/Chart.yaml")
        except ChartFileError as e:
            raise BuildError(HelmReason.INVALID_CHART_REFERENCE, str(e)) from None
        strategy_rev = revision if spec.effective_reconcile_strategy == "Revision" else None
        if (strategy_rev or values_gen is not None) and try_parse_version(meta.version) is None:
            raise BuildError(
                HelmReason.METADATA_PATCH_ERROR,
                f"{chart_rel}/Chart.yaml: failed to parse version '{meta.version}' as SemVer",
            )
        version = artifact_version(
            meta.version, source_revision=strategy_rev, values_generation=values_gen
        )
        if _up_to_date(obj, meta.name, version):
            summary = BuildSummary(meta.name, version, True, tuple(st.observed_values_files))
            return ChartBuild(summary, None, list(st.observed_values_files))
        values_yaml: str | None = None
        used: list[str] = []
        if spec.values_files:
            values_yaml, used = await self._values(obj, root)
        path = await self._package(
            chart_dir, work, version if version != meta.version else None, values_yaml, chart_rel
        )
        return ChartBuild(BuildSummary(meta.name, version, True, tuple(used)), path, used)
