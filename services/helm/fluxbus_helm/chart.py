"""The chart of a HelmRelease: the generated HelmChart written into the fluxbus
store (`spec.chart`; the source service reconciles it) or the HelmChart named
by `spec.chartRef`, its artifact (the packaged `.tgz`) read from the object
store with its digest verified, and what Helm says the chart is.

Loaded charts are kept in memory by artifact digest, so an unchanged chart is
neither downloaded nor inspected again.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fluxbus_common import subjects
from fluxbus_common.api.helm import HelmRelease
from fluxbus_common.api.meta import Artifact
from fluxbus_common.artifact import ArtifactFormatError, verify
from fluxbus_common.conditions import ConditionType
from fluxbus_common.errors import Generic, Stalling, Waiting
from fluxbus_common.ports import ApplyResult, BusError
from fluxbus_helm.logic.chart import chart_document, chart_ref, owned_by
from fluxbus_helm.logic.reasons import HelmReason
from fluxbus_helm.ports import HelmPort, HelmStore
from fluxbus_helmsdk import ChartInfo, HelmEngineError

MAX_CHART_BYTES = 64 * 2**20
"""A packaged chart larger than this is refused (Helm's own loader caps a chart
archive at about this size too)."""


@dataclass(frozen=True)
class LoadedChart:
    """A chart ready for Helm: its bytes, what Helm says it is, where it came from."""

    data: bytes
    info: ChartInfo
    artifact: Artifact
    helm_chart: str
    """`<namespace>/<name>` of the HelmChart (`status.helmChart`)."""


def _artifact(status: Mapping[str, Any] | None) -> Artifact | None:
    raw = (status or {}).get("artifact")
    if not isinstance(raw, Mapping):
        return None
    try:
        artifact = Artifact.model_validate(raw)
    except ValidationError:
        return None
    return artifact if artifact.revision and artifact.digest else None


def _ready_message(status: Mapping[str, Any]) -> tuple[bool, str]:
    for c in status.get("conditions") or []:
        if c.get("type") == ConditionType.READY:
            return c.get("status") == "True", str(c.get("message") or "")
    return False, ""


class ChartSource:
    """Finds, writes and loads HelmReleases' charts."""

    def __init__(self, store: HelmStore, *, requeue: float = 30.0, cache_size: int = 64) -> None:
        self.store = store
        self.requeue = requeue
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[bytes, ChartInfo]] = OrderedDict()

    def location(self, obj: HelmRelease) -> tuple[str, str, str]:
        """Return (kind, namespace, name) of the chart source of `obj`.

        Raises Stalling for a chartRef kind fluxbus does not serve."""
        if obj.spec.chart is not None:
            ns, name = chart_ref(obj)
            return "HelmChart", ns, name
        ref = obj.spec.chart_ref
        assert ref is not None
        if ref.kind != "HelmChart":
            raise Stalling(
                f"spec.chartRef: kind {ref.kind} is not served by fluxbus yet "
                "(fluxbus serves HelmChart)",
                HelmReason.ARTIFACT_FAILED,
            )
        return "HelmChart", ref.namespace or obj.metadata.namespace, ref.name

    async def write_template(self, obj: HelmRelease) -> ApplyResult | None:
        """Create or update the HelmChart of `spec.chart` in the store (None: no
        template). Raises Generic when the store cannot be written."""
        if obj.spec.chart is None:
            return None
        doc = chart_document(obj)
        meta = doc["metadata"]
        key = subjects.object_key("HelmChart", meta["namespace"], meta["name"])
        try:
            return await self.store.apply_object(key, doc)
        except BusError as e:
            raise Generic(
                f"failed to write HelmChart '{meta['namespace']}/{meta['name']}': {e}",
                HelmReason.ARTIFACT_FAILED,
            ) from e

    async def delete_template(self, obj: HelmRelease, helm_chart: str | None = None) -> bool:
        """Delete the HelmChart `obj` generated (`helm_chart`, default
        `status.helmChart`: `<namespace>/<name>`) when it carries `obj`'s owner
        labels; return whether one was deleted. Raises Generic."""
        ref = helm_chart or obj.status.helm_chart
        if not ref or "/" not in ref:
            return False
        ns, name = ref.split("/", 1)
        key = subjects.object_key("HelmChart", ns, name)
        try:
            doc = await self.store.get_object(key)
            if doc is None or not owned_by(doc.value, obj):
                return False
            return await self.store.request_delete(key)
        except BusError as e:
            raise Generic(f"failed to delete HelmChart '{ns}/{name}': {e}") from e

    async def load(self, obj: HelmRelease, helm: HelmPort) -> LoadedChart:
        """Return the chart of `obj` once its HelmChart has an artifact.

        Raises Waiting(SourceNotReady) while the HelmChart is absent or not ready,
        Generic(ArtifactFailed) when the artifact cannot be read or verified,
        Stalling(ArtifactFailed) when it is not a chart Helm can load."""
        kind, ns, name = self.location(obj)
        key = subjects.object_key(kind, ns, name)
        what = f"{kind} '{ns}/{name}'"
        try:
            doc = await self.store.get_object(key)
            status = await self.store.get_status(key)
        except BusError as e:
            raise Generic(f"could not get Source object: {e}", HelmReason.ARTIFACT_FAILED) from e
        if doc is None:
            raise Waiting(
                f"could not get Source object: {what} not found",
                HelmReason.ARTIFACT_FAILED,
                requeue_after=self.requeue,
            )
        st = status.value if status else {}
        artifact = _artifact(st)
        gen = int((doc.value.get("metadata") or {}).get("generation") or 0)
        ready, message = _ready_message(st)
        if artifact is None or int(st.get("observedGeneration") or 0) != gen or not ready:
            why = (
                "does not have an artifact"
                if artifact is None
                else "latest generation of object has not been reconciled"
                if int(st.get("observedGeneration") or 0) != gen
                else message or "not ready"
            )
            raise Waiting(f"{what} is not ready: {why}", HelmReason.SOURCE_NOT_READY, self.requeue)
        digest = str(artifact.digest)
        cached = self._cache.get(digest)
        if cached is None:
            data = await self._download(kind, ns, name, artifact)
            try:
                info = await helm.chart_info(data)
            except HelmEngineError as e:
                raise Stalling(f"Could not load chart: {e}", HelmReason.ARTIFACT_FAILED) from None
            cached = (data, info)
            self._cache[digest] = cached
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(digest)
        return LoadedChart(cached[0], cached[1], artifact, f"{ns}/{name}")

    async def _download(self, kind: str, ns: str, name: str, artifact: Artifact) -> bytes:
        """Return the artifact's bytes, its digest verified. Raises Generic(ArtifactFailed)."""
        path = artifact.path or subjects.artifact_name(
            kind, ns, name, str(artifact.digest).split(":")[-1]
        )
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="fluxbus-chart-"))
        try:
            target = workdir / "chart.tgz"
            try:
                await self.store.get_artifact(path, target)
            except KeyError:
                raise Generic(
                    f"Source not ready: artifact {path} not found. Retrying in {self.requeue:g}s",
                    HelmReason.ARTIFACT_FAILED,
                    retry_after=self.requeue,
                ) from None
            except BusError as e:
                raise Generic(
                    f"Could not load chart: fetching {path}: {e}", HelmReason.ARTIFACT_FAILED
                ) from e
            return await asyncio.to_thread(_read_verified, target, str(artifact.digest))
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)


def _read_verified(path: Path, digest: str) -> bytes:
    """Read a downloaded chart after checking its size and digest (blocking)."""
    size = path.stat().st_size
    if size > MAX_CHART_BYTES:
        raise Generic(
            f"Could not load chart: artifact of {size} bytes exceeds {MAX_CHART_BYTES}",
            HelmReason.ARTIFACT_FAILED,
        )
    try:
        verify(path, digest)
    except ArtifactFormatError as e:
        raise Generic(f"Could not load chart: {e}", HelmReason.ARTIFACT_FAILED) from None
    return path.read_bytes()
