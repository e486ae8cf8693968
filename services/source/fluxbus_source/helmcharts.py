"""Chart adapter of the source service: Helm's engine (`fluxbus_helmsdk`, the optional
`helm` extra) behind one lazily started `ChartEngine`, and the file work around it:
unpacking chart archives and Git artifacts safely, confining `spec.chart` and values
file paths to their root, reading `Chart.yaml`.

The engine's worker processes start on first use, only when the extra is installed
(`fluxbus_helmsdk.available()`); without it every engine call raises `HelmUnavailable`
and the service keeps serving everything that needs no engine.

Blocking work runs in threads; the functions here are `async`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fluxbus_helmsdk
from fluxbus_common import safeyaml
from fluxbus_common.artifact import ArtifactFormatError, ArtifactLimits, extract
from fluxbus_git.errors import InvalidSpecError
from fluxbus_helmsdk import HelmEngine, HelmUnavailable, RegistryAuth, WorkerLimits
from fluxbus_source.logic.paths import safe_relpath

__all__ = [
    "ChartEngine",
    "ChartFileError",
    "ChartMeta",
    "chart_dir_in",
    "read_chart_meta",
    "read_values_files",
    "unpack",
    "unpack_chart_archive",
]


class ChartFileError(Exception):
    """A chart or values file is missing, unreadable or malformed (the message names it)."""


@dataclass(frozen=True)
class ChartMeta:
    """What `Chart.yaml` says: the chart's name and version."""

    name: str
    version: str


class ChartEngine:
    """Helm's engine, started on first use and closed with the service."""

    def __init__(self, limits: WorkerLimits | None = None) -> None:
        self._limits = limits or WorkerLimits()
        self._stack = contextlib.AsyncExitStack()
        self._engine: HelmEngine | None = None
        self._lock = asyncio.Lock()

    @staticmethod
    def available() -> bool:
        """Whether the helm extra is installed."""
        return fluxbus_helmsdk.available()

    async def engine(self) -> HelmEngine:
        """The running engine; raises `HelmUnavailable` without the helm extra."""
        if self._engine is not None:
            return self._engine
        if not self.available():
            raise HelmUnavailable()
        async with self._lock:
            if self._engine is None:
                self._engine = await self._stack.enter_async_context(HelmEngine(self._limits))
        return self._engine

    async def aclose(self) -> None:
        """Stop the engine's workers (a no-op when it never started)."""
        self._engine = None
        await self._stack.aclose()

    async def package(
        self, chart_dir: Path, dest_dir: Path, *, version: str | None, values_yaml: str | None
    ) -> Path:
        """Package `chart_dir` into `dest_dir`; return the archive's path."""
        engine = await self.engine()
        out = await engine.package(
            str(chart_dir), str(dest_dir), version=version, values_yaml=values_yaml
        )
        return Path(out)

    async def oci_tags(self, ref: str, auth: RegistryAuth | None) -> list[str]:
        """The tags of an `oci://` chart reference."""
        return await (await self.engine()).oci_tags(ref, auth=auth)

    async def oci_pull(self, ref: str, version: str, auth: RegistryAuth | None) -> bytes:
        """The `.tgz` of one version of an `oci://` chart."""
        return await (await self.engine()).oci_pull(ref, version, auth=auth)


def _unpack(archive: Path, dest: Path) -> None:
    try:
        extract(archive, dest, ArtifactLimits.from_env())
    except ArtifactFormatError as e:
        raise ChartFileError(f"unable to unpack '{archive.name}': {e}") from None
    except OSError as e:
        raise ChartFileError(f"unable to unpack '{archive.name}': {e.strerror or e}") from None


async def unpack(archive: Path, dest: Path) -> None:
    """Unpack an artifact or chart archive safely (no links, no escapes, within the
    artifact limits). Raises `ChartFileError`."""
    await asyncio.to_thread(_unpack, archive, dest)


async def unpack_chart_archive(data: bytes, work: Path) -> Path:
    """Write a chart `.tgz`, unpack it under `work` and return the chart's directory
    (the archive's single top directory). Raises `ChartFileError`."""

    def run() -> Path:
        archive = work / "chart.tgz"
        archive.write_bytes(data)
        root = work / "unpacked"
        root.mkdir()
        _unpack(archive, root)
        tops = [p for p in root.iterdir() if p.is_dir()]
        if len(tops) != 1 or not (tops[0] / "Chart.yaml").is_file():
            raise ChartFileError("chart archive has no single chart directory with a Chart.yaml")
        return tops[0]

    return await asyncio.to_thread(run)


def _confined(root: Path, rel: str, field: str) -> Path:
    """`root/rel` when it stays inside `root` once symlinks are resolved."""
    clean = safe_relpath(rel, field)
    target = (root / clean).resolve()
    base = root.resolve()
    if target != base and base not in target.parents:
        raise InvalidSpecError(f"{field}: '{rel}' leaves the artifact")
    return target


def chart_dir_in(root: Path, chart: str) -> Path:
    """The chart directory `spec.chart` names inside an unpacked Git artifact.

    Raises `InvalidSpecError` for an absolute or climbing path, `ChartFileError`
    when there is no chart directory there.
    """
    path = _confined(root, chart, "spec.chart")
    if not path.is_dir():
        raise ChartFileError(f"spec.chart: path '{chart}' not found in the source artifact")
    if not (path / "Chart.yaml").is_file():
        raise ChartFileError(
            f"spec.chart: '{safe_relpath(chart, 'spec.chart')}/Chart.yaml' not found"
        )
    return path


def _read_chart_meta(chart_dir: Path, shown: str) -> ChartMeta:
    try:
        doc: Any = safeyaml.load((chart_dir / "Chart.yaml").read_bytes())
    except OSError as e:
        raise ChartFileError(f"{shown}: {e.strerror or e}") from None
    except Exception as e:  # yaml.YAMLError or a limit: the first line names the position
        raise ChartFileError(f"{shown}: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise ChartFileError(f"{shown}: not a YAML mapping")
    name, version = doc.get("name"), doc.get("version")
    if not name or not isinstance(name, str):
        raise ChartFileError(f"{shown}: 'name' is required")
    if version is None or not str(version).strip():
        raise ChartFileError(f"{shown}: 'version' is required")
    return ChartMeta(name=name, version=str(version))


async def read_chart_meta(chart_dir: Path, shown: str) -> ChartMeta:
    """Read `Chart.yaml` of a chart directory; `shown` is its path in messages.

    Raises `ChartFileError` naming `shown` when it is missing or malformed."""
    return await asyncio.to_thread(_read_chart_meta, chart_dir, shown)


async def read_values_files(
    root: Path, paths: list[str], *, ignore_missing: bool
) -> list[tuple[str, bytes]]:
    """The `(path, bytes)` of each values file under `root`, in order; a missing file is
    skipped when `ignore_missing`, else `ChartFileError` ("no values file found at path").
    Raises `InvalidSpecError` for a path leaving `root`."""

    def run() -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for rel in paths:
            path = _confined(root, rel, "spec.valuesFiles")
            if not path.is_file():
                if ignore_missing:
                    continue
                raise ChartFileError(f"no values file found at path '{rel}'")
            out.append((rel, path.read_bytes()))
        return out

    return await asyncio.to_thread(run)


async def remove_tree(path: Path) -> None:
    """Remove a directory tree (absent is fine)."""
    await asyncio.to_thread(shutil.rmtree, path, True)


def file_size(path: Path) -> int:
    """Size of a file in bytes."""
    return os.stat(path).st_size
