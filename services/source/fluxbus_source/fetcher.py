"""From a GitRepository spec to a stored-ready artifact: poll, fetch, include, archive.

The composition of the Git adapter, the include helpers and the archiver
that a reconciler runs, with no bus or runtime in it:

    builder = SourceBuilder(GitClient())
    request = SourceRequest.from_spec(obj.spec, auth)
    resolved = await builder.check(request)                      # one ref listing
    if rebuild_reason(remote_revision=resolved.revision, ...) is None:
        ...  # ArtifactUpToDate: nothing is cloned
    built = await builder.build(request, out_path, includes)     # shallow fetch + tar.gz

Errors are those of `fluxbus_source.errors` (typed Stalling/Generic).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxbus_source.artifact import archive, include_artifact
from fluxbus_source.git import DEFAULT_TIMEOUT, GitClient
from fluxbus_source.logic.auth import GitAuth, GitProxy
from fluxbus_source.logic.refs import Checkout, RefLike, Resolved, checkout_for


@dataclass(frozen=True)
class IncludedArtifact:
    """Another GitRepository's artifact to map into this one (`spec.include[]`)."""

    tar_path: Path
    to_path: str
    """Defaults, in Flux, to the included repository's name: the caller passes it."""
    from_path: str | None = None


@dataclass(frozen=True, repr=False)
class SourceRequest:
    """What the Git side needs from a GitRepository spec (and its secret)."""

    url: str
    ref: RefLike | None = None
    auth: GitAuth | None = None
    timeout: float = DEFAULT_TIMEOUT
    ignore: str | None = None
    sparse_checkout: tuple[str, ...] = ()
    recurse_submodules: bool = False
    proxy: GitProxy | None = None

    @property
    def checkout(self) -> Checkout:
        """The reference after Flux's precedence (raises `InvalidSpecError`)."""
        return checkout_for(self.ref)

    def __repr__(self) -> str:
        return f"SourceRequest(url={self.url!r}, ref={self.ref!r}, auth={self.auth!r})"

    @classmethod
    def from_spec(
        cls, spec: Any, auth: GitAuth | None = None, proxy: GitProxy | None = None
    ) -> SourceRequest:
        """Build from a `GitRepositorySpec` (fluxbus_common.api) or anything shaped like it."""
        from fluxbus_common.api.meta import seconds

        return cls(
            url=spec.url,
            ref=spec.ref,
            auth=auth,
            timeout=seconds(getattr(spec, "timeout", None), DEFAULT_TIMEOUT),
            ignore=getattr(spec, "ignore", None),
            sparse_checkout=tuple(getattr(spec, "sparse_checkout", None) or ()),
            recurse_submodules=bool(getattr(spec, "recurse_submodules", False)),
            proxy=proxy,
        )


@dataclass(frozen=True)
class BuiltArtifact:
    """An archive ready to upload: `status.artifact` fields plus the event message."""

    revision: str
    commit: str
    path: Path
    sha256: str
    size: int
    files: int
    message: str

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256}"


class SourceBuilder:
    """Runs the Git half of a GitRepository reconcile."""

    def __init__(self, git: GitClient, work_root: Path | str | None = None) -> None:
        self.git = git
        self.work_root = Path(work_root) if work_root else None

    async def check(self, request: SourceRequest) -> Resolved:
        """Resolve the wanted revision with one ref listing (none for a bare commit)."""
        return await self.git.resolve(
            request.url,
            request.checkout,
            request.auth,
            timeout=request.timeout,
            proxy=request.proxy,
        )

    async def build(
        self,
        request: SourceRequest,
        out_path: Path | str,
        includes: Sequence[IncludedArtifact] = (),
    ) -> BuiltArtifact:
        """Shallow-fetch, copy the includes in, and archive to `out_path`.

        The checkout lives in a temp dir removed before returning.
        """
        work = Path(tempfile.mkdtemp(prefix="fluxbus-source-", dir=self.work_root))
        try:
            fetched = await self.git.fetch(
                request.url,
                request.checkout,
                work / "tree",
                request.auth,
                timeout=request.timeout,
                sparse_checkout=request.sparse_checkout or None,
                recurse_submodules=request.recurse_submodules,
                proxy=request.proxy,
            )
            for inc in includes:
                await include_artifact(inc.tar_path, fetched.path, inc.from_path, inc.to_path)
            art = await archive(fetched.path, out_path, request.ignore)
            return BuiltArtifact(
                revision=fetched.resolved.revision,
                commit=fetched.resolved.commit,
                path=art.path,
                sha256=art.sha256,
                size=art.size,
                files=art.files,
                message=fetched.message,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
