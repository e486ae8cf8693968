"""The ports the source reconcilers work through.

The reconciler never names a concrete adapter: the store is anything that
reads statuses and secrets and keeps artifacts (the concrete `Bus` is one),
Git is anything that resolves and fetches like `fluxbus_git.client.GitClient`,
work directories come from `fluxbus_source.workdir.WorkDirs`. `app` wires
the real ones.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from fluxbus_common.ports import ArtifactStore, Entry, SecretReader, StatusReader
from fluxbus_git.logic.auth import GitAuth, GitProxy
from fluxbus_git.logic.refs import Checkout, Resolved
from fluxbus_git.results import FetchResult
from fluxbus_helmsdk import RegistryAuth
from fluxbus_source.logic.helmauth import HelmCredentials


class SourceStore(StatusReader, SecretReader, ArtifactStore, Protocol):
    """Statuses (of included GitRepositories), secrets (credentials) and artifacts."""


class GitPort(Protocol):
    """Resolve a ref and fetch a revision's tree (`fluxbus_git.client.GitClient`)."""

    async def resolve(
        self,
        url: str,
        checkout: Checkout,
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        proxy: GitProxy | None = None,
    ) -> Resolved:
        """Resolve `checkout` on the remote; raise a `fluxbus_git.errors` error."""
        ...

    async def fetch(
        self,
        url: str,
        checkout: Checkout,
        dest: Path | str,
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        sparse_checkout: Sequence[str] | None = None,
        recurse_submodules: bool = False,
        size_limit: int | None = None,
        proxy: GitProxy | None = None,
    ) -> FetchResult:
        """Fetch the revision into `dest`; raise a `fluxbus_git.errors` error."""
        ...


class WorkDirPort(Protocol):
    """Private scratch directories for one reconcile's fetched tree and artifact."""

    async def make(self) -> Path:
        """Create and return a new empty directory."""
        ...

    async def remove(self, path: Path) -> None:
        """Remove a directory made by `make` and everything in it (absent is fine)."""
        ...


class HelmStore(SourceStore, Protocol):
    """What the Helm reconcilers read besides: other sources' objects (a HelmChart's
    HelmRepository spec: URL, credentials, type)."""

    async def get_object(self, key: str) -> Entry | None:
        """Return a desired object (without status) by key."""
        ...


class HelmHTTPPort(Protocol):
    """Download from a Helm repository over HTTP(S) (`fluxbus_source.helmhttp.HelmHTTP`)."""

    async def get(
        self,
        url: str,
        *,
        credentials: HelmCredentials | None,
        send_auth: bool,
        timeout: float,
        max_bytes: int,
    ) -> bytes:
        """Return the body; raise `fluxbus_source.errors.HelmFetchError`."""
        ...


class ChartEnginePort(Protocol):
    """Helm's engine where a chart must be packaged or pulled from OCI
    (`fluxbus_source.helmcharts.ChartEngine`); raises `fluxbus_helmsdk` errors."""

    def available(self) -> bool:
        """Whether the helm extra is installed."""
        ...

    async def package(
        self, chart_dir: Path, dest_dir: Path, *, version: str | None, values_yaml: str | None
    ) -> Path:
        """Package a chart directory; return the archive's path."""
        ...

    async def oci_tags(self, ref: str, auth: RegistryAuth | None) -> list[str]:
        """The tags of an `oci://` chart reference."""
        ...

    async def oci_pull(self, ref: str, version: str, auth: RegistryAuth | None) -> bytes:
        """One version of an `oci://` chart, as `.tgz` bytes."""
        ...
