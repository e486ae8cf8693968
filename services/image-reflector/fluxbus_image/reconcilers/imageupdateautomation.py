"""ImageUpdateAutomationReconciler: image-automation-controller's ImageUpdateAutomation.

1. `reconcile_policies` — the ImagePolicies of the automation's namespace
   selected by `policySelector` that have a latest image (`observedPolicies`);
2. `reconcile_source` — the GitRepository's URL, credentials, proxy, timeout,
   the ref to check out and the branch to push to (`gitsource`); when neither
   the policies nor the remote branch changed since the last run, stop here
   (one ref listing, no clone);
3. `reconcile_update` — clone, apply the policies with the setters strategy
   under `update.path`, commit (author, OpenPGP signature, message from
   `messageTemplate`) and push to the push branch and/or `push.refspec`. A
   push rejected as non-fast-forward (someone pushed meanwhile) is retried
   from a fresh clone; nothing changed means no commit. After a push to the
   branch the GitRepository follows, its reconcile is requested at once.

Idempotent across restarts and replicas: a run always starts from the
remote's current tip, so a commit already pushed changes nothing the next time.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import structlog

from fluxbus_common import subjects
from fluxbus_common.api import ImagePolicy, ImageUpdateAutomation
from fluxbus_common.api.image import ImageRef
from fluxbus_common.conditions import Reason, now_rfc3339
from fluxbus_common.errors import Generic, Stalling
from fluxbus_common.events import EventSink, Severity
from fluxbus_common.ports import BusError
from fluxbus_common.reconcile import DependencyWatch, Result, Step, StepReconciler
from fluxbus_common.reconcile_requests import request_token
from fluxbus_common.selectors import SelectorError, parse_label_selector, selector_string
from fluxbus_git.errors import GitError, GitNonFastForwardError, GitNotFoundError
from fluxbus_git.logic.refs import Checkout, RefKind
from fluxbus_image.errors import (
    GitOperationFailed,
    ImageReason,
    InvalidPolicySelector,
    InvalidUpdateStrategy,
    UpdateFailed,
)
from fluxbus_image.logic.commitmsg import (
    RemovedTemplateFieldError,
    commit_message,
    template_data,
)
from fluxbus_image.logic.gotemplate_parse import TemplateError
from fluxbus_image.ports import GitResolverPort, GitWriterPort, ImageStore, WorkDirPort
from fluxbus_image.reconcilers.gitsource import GitSource, git_source
from fluxbus_image.update import TreeUpdate, update_tree

log = structlog.get_logger("fluxbus.image")

PUSH_ATTEMPTS = 3
"""Clone-update-push rounds when the remote keeps moving under us."""
READY_MESSAGE = "repository up-to-date"
"""Flux's Ready message of an automation with nothing (more) to push."""


def automations_of_policy(
    changed_key: str, _: Any, automations: Mapping[str, dict[str, Any]]
) -> Iterable[str]:
    """Automations in the namespace of the ImagePolicy whose status changed."""
    _, namespace, _name = subjects.split_object_key(changed_key)
    for key, doc in automations.items():
        if (doc.get("metadata") or {}).get("namespace") == namespace:
            yield key


@dataclass
class AutomationState:
    """What the automation steps hand each other during one reconcile."""

    policies: dict[str, ImageRef] = field(default_factory=dict)
    """Latest images by policy name (`observedPolicies`)."""
    setters: dict[str, ImageRef] = field(default_factory=dict)
    """The same keyed `<namespace>:<name>` as setter markers name them."""
    source: GitSource | None = None
    remote_revision: str | None = None
    sync_needed: bool = False


class ImageUpdateAutomationReconciler(StepReconciler[ImageUpdateAutomation, AutomationState]):
    """Writes the latest images chosen by ImagePolicies into Git."""

    kind: ClassVar[str] = "ImageUpdateAutomation"
    watches = (
        DependencyWatch("ImagePolicy", automations_of_policy),
        # labels decide what policySelector picks: a relabelled policy changes no status
        DependencyWatch("ImagePolicy", automations_of_policy, source="objects"),
    )

    def __init__(
        self,
        store: ImageStore,
        git: GitWriterPort,
        resolver: GitResolverPort,
        workdirs: WorkDirPort,
        recorder: EventSink,
    ) -> None:
        self.store = store
        self.git = git
        self.resolver = resolver
        self.workdirs = workdirs
        self.recorder = recorder

    def parse(self, doc: dict[str, Any]) -> ImageUpdateAutomation:
        return ImageUpdateAutomation.model_validate(doc)

    def interval(self, obj: ImageUpdateAutomation) -> float:
        return obj.spec.interval_seconds

    def new_state(self, obj: ImageUpdateAutomation) -> AutomationState:
        return AutomationState()

    def steps(self) -> tuple[Step[ImageUpdateAutomation, AutomationState], ...]:
        return (self.reconcile_policies, self.reconcile_source, self.reconcile_update)

    # -- steps -----------------------------------------------------------

    async def reconcile_policies(self, obj: ImageUpdateAutomation, state: AutomationState) -> None:
        """Select the namespace's ImagePolicies that have a latest image."""
        obj.status.last_automation_run_time = now_rfc3339()
        selector = obj.spec.policy_selector
        try:
            matches = parse_label_selector(
                selector_string(selector.model_dump(by_alias=True, exclude_none=True))
                if selector is not None
                else ""
            )
        except SelectorError as e:
            raise InvalidPolicySelector(f"invalid policy selector: {e}") from None
        namespace = obj.metadata.namespace
        try:
            objects = await self.store.list_objects("imagepolicy")
            statuses = {e.key: e.value for e in await self.store.list_status("imagepolicy")}
        except BusError as e:
            raise Generic(f"failed to list policies: {e}") from e
        for entry in objects:
            meta = entry.value.get("metadata") or {}
            if meta.get("namespace") != namespace or not matches(meta.get("labels") or {}):
                continue
            try:
                policy = ImagePolicy.model_validate(
                    {**entry.value, "status": statuses.get(entry.key) or {}}
                )
            except ValueError:
                continue  # an invalid policy is reported on the policy itself
            latest = policy.status.latest_ref
            if latest is None:
                continue
            state.policies[policy.metadata.name] = latest
            state.setters[f"{namespace}:{policy.metadata.name}"] = latest
        state.sync_needed = (obj.status.observed_policies or {}) != state.policies

    async def reconcile_source(
        self, obj: ImageUpdateAutomation, state: AutomationState
    ) -> Result | None:
        """Gather the Git configuration; skip the clone when nothing can have changed."""
        source = await git_source(self.store, obj)
        state.source = source
        if source.switch_branch or source.refspec:
            state.sync_needed = True  # the push branch may have drifted: always look
        if state.sync_needed or not obj.status.observed_source_revision:
            return None
        try:
            resolved = await self.resolver.resolve(
                source.url, source.checkout, source.auth, timeout=source.timeout, proxy=source.proxy
            )
        except GitError as e:
            raise GitOperationFailed(f"failed to checkout source: {e.message}") from None
        state.remote_revision = resolved.revision
        return None

    async def reconcile_update(self, obj: ImageUpdateAutomation, state: AutomationState) -> Result:
        """Clone, update, commit and push (retrying when the remote moved meanwhile)."""
        source = state.source
        assert source is not None
        status = obj.status
        if (
            not state.sync_needed
            and state.remote_revision is not None
            and state.remote_revision == status.observed_source_revision
        ):
            return Result(ready_message=READY_MESSAGE)
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            try:
                work = await self.workdirs.make()
            except OSError as e:
                raise GitOperationFailed(f"cannot create a work directory: {e}") from None
            try:
                pushed = await self._run_once(obj, state, source, work)
            except GitNonFastForwardError as e:
                log.info("automation.push_rejected", attempt=attempt, error=e.message)
                if attempt == PUSH_ATTEMPTS:
                    raise GitOperationFailed(f"failed to update source: {e.message}") from None
                continue
            finally:
                await self.workdirs.remove(work)
            status.observed_policies = dict(state.policies)
            if pushed is None:
                return Result(ready_message=READY_MESSAGE)
            commit, summary = pushed
            status.last_push_commit = commit
            status.last_push_time = now_rfc3339()
            await self.recorder.event(obj, Severity.INFO, Reason.SUCCEEDED, summary)
            if source.follows_push_branch:
                await self._request_source(obj, source)
            return Result(ready_message=READY_MESSAGE)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- helpers ---------------------------------------------------------

    async def _clone(self, source: GitSource, work: Path) -> str:
        """Clone the push branch when it exists (switching), else the checkout ref.

        Returns the Flux revision of the checkout branch's commit (observedSourceRevision).
        """
        try:
            if source.switch_branch:
                try:
                    cloned = await self.git.clone(
                        source.url,
                        Checkout(RefKind.BRANCH, source.push_branch),
                        work,
                        source.auth,
                        timeout=source.timeout,
                        proxy=source.proxy,
                    )
                    return f"{source.push_branch}@sha1:{cloned.commit}"
                except GitNotFoundError:
                    pass  # a new branch: created from the checkout ref below
            cloned = await self.git.clone(
                source.url,
                source.checkout,
                work,
                source.auth,
                timeout=source.timeout,
                proxy=source.proxy,
            )
        except GitError as e:
            raise GitOperationFailed(f"failed to checkout source: {e.message}") from None
        name = cloned.branch or source.checkout.value
        return f"{name}@sha1:{cloned.commit}"

    async def _run_once(
        self, obj: ImageUpdateAutomation, state: AutomationState, source: GitSource, work: Path
    ) -> tuple[str, str] | None:
        """One clone-update-commit-push round: (commit, event summary), or None (no change)."""
        revision = await self._clone(source, work)
        obj.status.observed_source_revision = revision
        update = obj.spec.effective_update
        try:
            changes = await asyncio.to_thread(update_tree, work, update.path, state.setters)
        except ValueError as e:
            raise InvalidUpdateStrategy(f"spec.update.path: {e}") from None
        except OSError as e:
            raise UpdateFailed(f"failed to apply policies: {e}") from None
        await self._report_skipped(obj, changes)
        if not changes.files:
            return None
        message = self._message(obj, changes)
        git = obj.spec.git
        assert git is not None
        try:
            commit = await self.git.commit(
                work,
                message,
                source.author,
                signing_key=source.signing_key,
                when=datetime.now(UTC),
            )
        except GitError as e:
            raise GitOperationFailed(f"failed to update source: {e.message}") from None
        if commit is None:
            return None
        refspecs = [f"HEAD:refs/heads/{source.push_branch}"]
        try:
            await self.git.push(
                work,
                source.url,
                refspecs,
                source.auth,
                timeout=source.timeout,
                proxy=source.proxy,
                options=git.push.options if git.push is not None else None,
            )
            if source.refspec:
                await self.git.push(
                    work,
                    source.url,
                    [source.refspec],
                    source.auth,
                    timeout=source.timeout,
                    proxy=source.proxy,
                    options=git.push.options if git.push is not None else None,
                )
        except GitNonFastForwardError:
            raise
        except GitError as e:
            raise GitOperationFailed(f"failed to update source: {e.message}") from None
        if not source.switch_branch:
            obj.status.observed_source_revision = f"{source.push_branch}@sha1:{commit}"
        summary = f"pushed commit '{commit[:7]}' to branch '{source.push_branch}'"
        if source.refspec:
            summary += f" and refspecs '{source.refspec}'"
        if message:
            summary += f"\n{message}"
        return commit, summary

    def _message(self, obj: ImageUpdateAutomation, changes: TreeUpdate) -> str:
        git = obj.spec.git
        assert git is not None
        commit = git.commit
        path = posixpath.normpath(obj.spec.effective_update.path or ".")
        data = template_data(
            obj.metadata.name,
            obj.metadata.namespace,
            changes.changes,
            commit.message_template_values,
            update_path="" if path == "." else path,
        )
        try:
            return commit_message(commit.message_template, data)
        except RemovedTemplateFieldError as e:
            raise Stalling(str(e), ImageReason.REMOVED_TEMPLATE_FIELD) from None
        except TemplateError as e:
            raise GitOperationFailed(f"failed to update source: {e}") from None

    async def _report_skipped(self, obj: ImageUpdateAutomation, changes: TreeUpdate) -> None:
        if not changes.skipped:
            return
        files = "; ".join(f"{path}: {reason}" for path, reason in sorted(changes.skipped.items()))
        log.warning("automation.files_skipped", files=files)
        await self.recorder.event(
            obj, Severity.ERROR, ImageReason.UPDATE_FAILED, f"files skipped by the update: {files}"
        )

    async def _request_source(self, obj: ImageUpdateAutomation, source: GitSource) -> None:
        """Ask the GitRepository to fetch the pushed commit now (no wait for its interval)."""
        repo = source.repository
        key = subjects.object_key("GitRepository", repo.metadata.namespace, repo.metadata.name)
        try:
            await self.store.request_reconcile(key, request_token())
        except BusError as e:  # the poll will still get there
            log.warning("automation.request_reconcile_failed", key=key, error=str(e))
