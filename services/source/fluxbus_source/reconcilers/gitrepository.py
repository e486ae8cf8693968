"""GitRepositoryReconciler: source-controller's GitRepository, step by step.

Guard clauses are the runtime's (deleted → finalize, suspended → skip); then:

1. `reconcile_storage` — forget a recorded artifact that left the store;
2. `reconcile_source` — credentials, resolve the ref with one ref listing,
   and fetch only when the wanted revision (or what shapes the artifact:
   ignore, include, sparseCheckout, submodules) differs from the stored one;
3. `reconcile_artifact` — archive deterministically, store, record it in
   status, garbage-collect older artifacts.

`summarize()` (shared) derives Ready/Reconciling/Stalled; steps set
`FetchFailed`, `ArtifactInStorage` and `StorageOperationFailed` themselves.

Everything outside goes through ports (`fluxbus_source.ports`): the store
(statuses, secrets, artifacts), Git, work directories and the event sink.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import structlog

from fluxbus_common import subjects
from fluxbus_common.api import GitRepository, GitRepositoryInclude, Secret
from fluxbus_common.api.meta import Artifact
from fluxbus_common.conditions import (
    ConditionType,
    Reason,
    remove_condition,
    set_condition,
)
from fluxbus_common.errors import Generic, ReconcileError, Waiting
from fluxbus_common.events import EventSink, Severity
from fluxbus_common.reconcile import DependencyWatch, Result, Step, StepReconciler
from fluxbus_git.errors import GitAuthError, GitCredentialsError
from fluxbus_git.logic.auth import GitAuth, GitProxy
from fluxbus_git.logic.refs import Resolved, checkout_for
from fluxbus_git.results import FetchResult
from fluxbus_source.artifact import archive, file_sha256, include_artifact
from fluxbus_source.logic.plan import rebuild_reason
from fluxbus_source.ports import GitPort, SourceStore, WorkDirPort
from fluxbus_source.reconcilers import storage
from fluxbus_source.settings import KEEP_ARTIFACTS

log = structlog.get_logger("fluxbus.source")

INCLUDE_RETRY = 10.0
"""Seconds before re-checking an included GitRepository that has no artifact yet."""


def _includes_of(
    changed_key: str, _: Any, repositories: Mapping[str, dict[str, Any]]
) -> Iterable[str]:
    """GitRepositories that include the one whose status changed."""
    _, namespace, name = changed_key.split(".", 2)
    for key, doc in repositories.items():
        if (doc.get("metadata") or {}).get("namespace") != namespace:
            continue
        for inc in (doc.get("spec") or {}).get("include") or []:
            if (inc.get("repository") or {}).get("name") == name:
                yield key
                break


def _observed_include(spec_include: list[GitRepositoryInclude]) -> list[dict[str, Any]]:
    return [i.model_dump(by_alias=True, exclude_none=True) for i in spec_include]


@contextlib.contextmanager
def _fetch_failure_recorded(obj: GitRepository) -> Iterator[None]:
    """Set FetchFailed=True with the error's reason and message when a Git step fails."""
    try:
        yield
    except ReconcileError as e:
        set_condition(
            obj.status.conditions,
            ConditionType.FETCH_FAILED,
            True,
            e.reason,
            e.message,
            obj.metadata.generation,
        )
        raise


@dataclass
class SourceState:
    """What the GitRepository steps hand each other during one reconcile."""

    resolved: Resolved | None = None
    """The remote revision the ref points at (reconcile_source)."""
    includes: list[tuple[GitRepositoryInclude, Artifact]] = field(default_factory=list)
    """The included GitRepositories' current artifacts."""
    up_to_date: bool = False
    """The stored artifact is current: nothing was fetched."""
    tmp: Path | None = None
    """The work directory holding the fetched tree (removed by reconcile_artifact)."""
    fetched: FetchResult | None = None
    """What was fetched into `tmp`."""


class GitRepositoryReconciler(StepReconciler[GitRepository, SourceState]):
    """Reconciles GitRepositories into artifacts in the fluxbus object store."""

    kind: ClassVar[str] = "GitRepository"
    watches = (DependencyWatch(kind="gitrepository", map=_includes_of),)

    def __init__(
        self,
        store: SourceStore,
        git: GitPort,
        recorder: EventSink,
        workdirs: WorkDirPort,
        *,
        keep_artifacts: int = KEEP_ARTIFACTS,
    ) -> None:
        self.store = store
        self.git = git
        self.recorder = recorder
        self.workdirs = workdirs
        self.keep = max(1, keep_artifacts)

    # -- runtime hooks ---------------------------------------------------

    def parse(self, doc: dict[str, Any]) -> GitRepository:
        return GitRepository.model_validate(doc)

    def interval(self, obj: GitRepository) -> float:
        return obj.spec.interval_seconds

    def new_state(self, obj: GitRepository) -> SourceState:
        return SourceState()

    def steps(self) -> tuple[Step[GitRepository, SourceState], ...]:
        return (self.reconcile_storage, self.reconcile_source, self.reconcile_artifact)

    async def finalize(self, obj: GitRepository) -> None:
        """Delete every artifact of the GitRepository."""
        await storage.delete_all(self.store, obj)

    # -- steps -----------------------------------------------------------

    async def reconcile_storage(self, obj: GitRepository, state: SourceState) -> None:
        """Forget a recorded artifact that is no longer in the store (Flux: ArtifactInStorage)."""
        await storage.check_stored(self.store, obj)

    async def _secret_data(self, obj: GitRepository, name: str, field: str) -> dict[str, bytes]:
        doc = await self.store.get_secret(obj.metadata.namespace, name)
        if doc is None:
            raise GitAuthError(f"secret '{obj.metadata.namespace}/{name}' ({field}) not found")
        try:
            return Secret.model_validate(doc).decoded()
        except ValueError as e:
            raise GitCredentialsError(f"secret '{name}' ({field}) is invalid: {e}") from None

    async def _auth(self, obj: GitRepository) -> GitAuth | None:
        ref = obj.spec.secret_ref
        if ref is None:
            return None
        data = await self._secret_data(obj, ref.name, "spec.secretRef")
        return GitAuth.from_secret(data, name=ref.name)

    async def _proxy(self, obj: GitRepository) -> GitProxy | None:
        ref = obj.spec.proxy_secret_ref
        if ref is None:
            return None
        data = await self._secret_data(obj, ref.name, "spec.proxySecretRef")
        return GitProxy.from_secret(data, name=ref.name)

    async def reconcile_source(self, obj: GitRepository, state: SourceState) -> None:
        """Resolve the ref; decide whether a fetch is needed; fetch into `state.tmp`."""
        spec = obj.spec
        conds = obj.status.conditions
        with _fetch_failure_recorded(obj):
            auth = await self._auth(obj)
            proxy = await self._proxy(obj)
            checkout = checkout_for(spec.effective_ref)
            resolved = await self.git.resolve(
                spec.url, checkout, auth, timeout=spec.timeout_seconds, proxy=proxy
            )
        state.resolved = resolved
        includes = await self._included_artifacts(obj)
        state.includes = includes
        reason = self._rebuild_reason(obj, resolved, includes)
        if reason is None:
            remove_condition(conds, ConditionType.FETCH_FAILED)
            state.up_to_date = True
            return
        log.info("artifact.rebuild", reason=reason)
        tmp = await self.workdirs.make()
        state.tmp = tmp
        try:
            with _fetch_failure_recorded(obj):
                result = await self.git.fetch(
                    spec.url,
                    checkout,
                    tmp / "tree",
                    auth,
                    timeout=spec.timeout_seconds,
                    sparse_checkout=list(spec.sparse_checkout) or None,
                    recurse_submodules=spec.recurse_submodules,
                    proxy=proxy,
                )
        except ReconcileError:
            await self.workdirs.remove(tmp)
            raise
        remove_condition(conds, ConditionType.FETCH_FAILED)
        state.fetched = result

    async def _included_artifacts(
        self, obj: GitRepository
    ) -> list[tuple[GitRepositoryInclude, Artifact]]:
        """The current artifact of every included GitRepository (Waiting if one has none)."""
        out: list[tuple[GitRepositoryInclude, Artifact]] = []
        for inc in obj.spec.include:
            key = subjects.object_key("gitrepository", obj.metadata.namespace, inc.repository.name)
            entry = await self.store.get_status(key)
            artifact = (entry.value if entry else {}).get("artifact")
            if not artifact:
                message = f"included GitRepository '{inc.repository.name}' has no artifact yet"
                set_condition(
                    obj.status.conditions,
                    ConditionType.INCLUDE_UNAVAILABLE,
                    True,
                    Reason.INCLUDE_UNAVAILABLE,
                    message,
                    obj.metadata.generation,
                )
                raise Waiting(message, Reason.INCLUDE_UNAVAILABLE, requeue_after=INCLUDE_RETRY)
            out.append((inc, Artifact.model_validate(artifact)))
        remove_condition(obj.status.conditions, ConditionType.INCLUDE_UNAVAILABLE)
        return out

    def _rebuild_reason(
        self,
        obj: GitRepository,
        resolved: Resolved,
        includes: list[tuple[GitRepositoryInclude, Artifact]],
    ) -> str | None:
        """Why the stored artifact is out of date, or None when it is current."""
        status, spec = obj.status, obj.spec
        if _observed_include(status.observed_include) != _observed_include(spec.include):
            return "spec.include changed"
        return rebuild_reason(
            remote_revision=resolved.revision,
            artifact_revision=status.artifact.revision if status.artifact else None,
            ignore=spec.ignore,
            observed_ignore=status.observed_ignore,
            sparse_checkout=spec.sparse_checkout,
            observed_sparse_checkout=status.observed_sparse_checkout,
            recurse_submodules=spec.recurse_submodules,
            observed_recurse_submodules=status.observed_recurse_submodules,
            # digests, not revisions: an include's ignore rules may change its content
            include_revisions=[a.digest or "" for _, a in includes],
            observed_include_revisions=[a.digest or "" for a in status.included_artifacts],
        )

    async def reconcile_artifact(self, obj: GitRepository, state: SourceState) -> Result:
        """Archive, store and record the artifact; collect older ones."""
        resolved = state.resolved
        assert resolved is not None  # set by reconcile_source
        if state.up_to_date:
            message = f"stored artifact for revision '{resolved.revision}'"
            set_condition(
                obj.status.conditions,
                ConditionType.ARTIFACT_IN_STORAGE,
                True,
                Reason.SUCCEEDED,
                message,
                obj.metadata.generation,
            )
            return Result(ready_reason=Reason.SUCCEEDED, ready_message=message)
        tmp, fetched = state.tmp, state.fetched
        assert tmp is not None and fetched is not None  # set by reconcile_source
        try:
            # what was fetched, not what was listed: the branch may have moved in between
            return await self._store(obj, fetched.resolved, fetched, tmp, state.includes)
        finally:
            await self.workdirs.remove(tmp)

    async def _store(
        self,
        obj: GitRepository,
        resolved: Resolved,
        fetched: FetchResult,
        tmp: Path,
        includes: list[tuple[GitRepositoryInclude, Artifact]],
    ) -> Result:
        ns, name = obj.metadata.namespace, obj.metadata.name
        tree = fetched.path
        for inc, artifact in includes:
            tar = tmp / f"include-{inc.repository.name}.tar.gz"
            try:
                await self.store.get_artifact(artifact.path, tar)
            except KeyError:
                raise Waiting(
                    f"artifact of included GitRepository '{inc.repository.name}' is not in storage",
                    Reason.INCLUDE_UNAVAILABLE,
                    requeue_after=INCLUDE_RETRY,
                ) from None
            if artifact.digest and f"sha256:{file_sha256(tar)}" != artifact.digest:
                raise Generic(
                    f"artifact of included GitRepository '{inc.repository.name}' fails its digest check",
                    Reason.INCLUDE_UNAVAILABLE,
                )
            await include_artifact(tar, tree, inc.from_path, inc.effective_to_path)
        out = await archive(tree, tmp / "artifact.tar.gz", spec_ignore=obj.spec.ignore)
        object_name = subjects.artifact_name("gitrepository", ns, name, out.sha256)
        artifact = await storage.put(
            self.store,
            obj,
            object_name,
            out.path,
            revision=resolved.revision,
            digest=f"sha256:{out.sha256}",
            size=out.size,
        )
        previous = obj.status.artifact
        status = obj.status
        status.artifact = artifact
        status.included_artifacts = [a for _, a in includes]
        status.observed_ignore = obj.spec.ignore
        status.observed_recurse_submodules = obj.spec.recurse_submodules
        status.observed_sparse_checkout = list(obj.spec.sparse_checkout)
        status.observed_include = list(obj.spec.include)
        message = f"stored artifact for revision '{resolved.revision}'"
        storage.mark_stored(obj, message)
        await storage.collect_garbage(self.store, obj, object_name, self.keep)
        if (
            previous is None
            or previous.revision != resolved.revision
            or previous.digest != status.artifact.digest
        ):
            subject = fetched.message.splitlines()[0] if fetched.message else resolved.commit[:12]
            await self.recorder.event(
                obj,
                Severity.INFO,
                Reason.NEW_ARTIFACT,
                f"stored artifact for commit '{subject}'",
                {"revision": resolved.revision, "digest": status.artifact.digest or ""},
            )
        return Result(ready_reason=Reason.SUCCEEDED, ready_message=message)
