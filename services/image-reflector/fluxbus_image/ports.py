"""The ports the image reconcilers work through.

The reconcilers never name a concrete adapter: the store is anything that
reads objects, statuses and secrets, keeps tag lists and can request a
reconcile (the concrete `Bus`, wrapped by `fluxbus_image.tags.BusImageStore`);
the registry is anything that lists tags and reads digests like
`fluxbus_image.registry.RegistryClient`; Git writes are
`fluxbus_git.writer.GitWriter`'s. `app` wires the real ones.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from fluxbus_common.ports import Entry, SecretReader, StatusReader
from fluxbus_git.logic.auth import GitAuth, GitProxy
from fluxbus_git.logic.refs import Checkout, Resolved
from fluxbus_git.results import CloneResult, CommitAuthor, PushResult, SigningKey
from fluxbus_image.logic.credentials import RegistryCredentials, RegistryTLS
from fluxbus_image.logic.listing import TagListing
from fluxbus_image.logic.reference import ImageName


class ImageStore(StatusReader, SecretReader, Protocol):
    """Objects, statuses and secrets of the store, tag lists, reconcile requests."""

    async def get_object(self, key: str) -> Entry | None:
        """Return a stored object (without status), or None."""
        ...

    async def list_objects(self, kind: str | None = None) -> list[Entry]:
        """Return every stored object of a kind (lower-case)."""
        ...

    async def list_status(self, kind: str | None = None) -> list[Entry]:
        """Return every status of a kind (lower-case)."""
        ...

    async def put_tags(self, key: str, tags: Sequence[str]) -> None:
        """Keep the full tag list of an ImageRepository (any size)."""
        ...

    async def get_tags(self, key: str) -> list[str] | None:
        """Return the kept tag list of an ImageRepository, or None when there is none."""
        ...

    async def has_tags(self, key: str) -> bool:
        """Whether a non-empty tag list is kept for an ImageRepository (without reading it)."""
        ...

    async def delete_tags(self, key: str) -> None:
        """Forget the tag list of an ImageRepository (absent is fine)."""
        ...

    async def request_reconcile(self, key: str, token: str) -> bool:
        """Set `reconcile.fluxcd.io/requestedAt: token` on an object; False when absent."""
        ...


class RegistryPort(Protocol):
    """List tags and read manifest digests (`fluxbus_image.registry.RegistryClient`)."""

    async def list_tags(
        self,
        image: ImageName,
        *,
        credentials: RegistryCredentials | None = None,
        tls: RegistryTLS | None = None,
        insecure: bool = False,
        proxy: GitProxy | None = None,
        timeout: float = 30.0,
        page_size: int = 1000,
    ) -> TagListing:
        """List every tag; raise a `fluxbus_image.registry` error."""
        ...

    async def manifest_digest(
        self,
        image: ImageName,
        tag: str,
        *,
        credentials: RegistryCredentials | None = None,
        tls: RegistryTLS | None = None,
        insecure: bool = False,
        proxy: GitProxy | None = None,
        timeout: float = 30.0,
    ) -> str:
        """Return the manifest digest of a tag; raise a `fluxbus_image.registry` error."""
        ...


class GitWriterPort(Protocol):
    """Clone, commit and push (`fluxbus_git.writer.GitWriter`)."""

    async def clone(
        self,
        url: str,
        checkout: Checkout,
        dest: Path,
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        proxy: GitProxy | None = None,
    ) -> CloneResult:
        """Clone `checkout` into the empty work tree `dest`."""
        ...

    async def commit(
        self,
        dest: Path,
        message: str,
        author: CommitAuthor,
        *,
        signing_key: SigningKey | None = None,
        when: datetime | None = None,
    ) -> str | None:
        """Commit every change in `dest`; None when nothing changed."""
        ...

    async def push(
        self,
        dest: Path,
        url: str,
        refspecs: Sequence[str],
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        proxy: GitProxy | None = None,
        options: Mapping[str, str] | None = None,
    ) -> PushResult:
        """Push without force; raise `GitNonFastForwardError` when the remote moved."""
        ...


class GitResolverPort(Protocol):
    """Resolve a ref with one ref listing (`fluxbus_git.client.GitClient`)."""

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


class WorkDirPort(Protocol):
    """Private scratch directories for one automation run's clone."""

    async def make(self) -> Path:
        """Create and return a new empty directory."""
        ...

    async def remove(self, path: Path) -> None:
        """Remove a directory made by `make` and everything in it (absent is fine)."""
        ...
