"""ImagePolicyReconciler: image-reflector-controller's ImagePolicy, step by step.

1. `reconcile_repository` — the referenced ImageRepository (namespace defaults
   to the policy's; another namespace must be granted by its `accessFrom`),
   its image name, and its scanned tags from the store (none yet:
   DependencyNotReady, woken by the repository's next scan);
2. `reconcile_latest` — apply `filterTags` and the policy (`logic.policy`): an
   invalid range or pattern stalls (InvalidPolicy); no candidate fails;
3. `reconcile_ref` — `digestReflectionPolicy` (`Never`, `IfNotPresent`,
   `Always`) decides whether the manifest digest is read; `latestRef` and
   `observedPreviousRef` (and v1beta2's `latestImage`) are recorded, with an
   event when the latest image changed.

Re-evaluated whenever its ImageRepository's status changes (a scan), through
the bus — never by polling; `spec.interval` only re-reads digests (`Always`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fluxbus_common import subjects
from fluxbus_common.api import ImagePolicy, ImageRepository
from fluxbus_common.api.image import ImageRef
from fluxbus_common.conditions import ConditionType, Reason, get_condition
from fluxbus_common.errors import Stalling
from fluxbus_common.events import EventSink, Severity
from fluxbus_common.ports import BusError
from fluxbus_common.reconcile import DependencyWatch, Result, Step, StepReconciler
from fluxbus_image.access import registry_access
from fluxbus_image.errors import (
    DependencyNotReady,
    ImageReason,
    PolicyFailed,
    PolicyInvalid,
)
from fluxbus_image.logic.policy import PolicyError, latest_tag, validate_policy
from fluxbus_image.ports import ImageStore, RegistryPort
from fluxbus_image.reconcilers.common import cross_namespace_allowed, read_object
from fluxbus_image.registry.errors import RegistryError
from fluxbus_image.settings import DEPENDENCY_REQUEUE

RESYNC = 600.0
"""Seconds between re-evaluations of a policy that has no interval (a safety net:
tag changes arrive through the bus at once)."""


def policies_of_repository(
    changed_key: str, _: Any, policies: Mapping[str, dict[str, Any]]
) -> Iterable[str]:
    """ImagePolicies referring to the ImageRepository whose status changed."""
    _, namespace, name = subjects.split_object_key(changed_key)
    for key, doc in policies.items():
        own_ns = (doc.get("metadata") or {}).get("namespace")
        ref = (doc.get("spec") or {}).get("imageRepositoryRef") or {}
        if ref.get("name") == name and (ref.get("namespace") or own_ns) == namespace:
            yield key


def ready_message(status: Any) -> str:
    """Flux's Ready message for a resolved policy (with the previous image when it changed)."""
    latest: ImageRef = status.latest_ref
    message = f"Latest image tag for '{latest.name}' resolved to {latest.tag}"
    if latest.digest:
        message += f" with digest {latest.digest}"
    prev: ImageRef | None = status.observed_previous_ref
    if prev is not None and prev != latest:
        message += f" (previously {prev.name}:{prev.tag}"
        if prev.digest:
            message += f"@{prev.digest}"
        message += ")"
    return message


@dataclass
class PolicyState:
    """What the ImagePolicy steps hand each other during one reconcile."""

    repository: ImageRepository | None = None
    tags: list[str] = field(default_factory=list)
    latest: str = ""


class ImagePolicyReconciler(StepReconciler[ImagePolicy, PolicyState]):
    """Picks the latest tag of an ImageRepository by policy."""

    kind: ClassVar[str] = "ImagePolicy"
    watches = (DependencyWatch("ImageRepository", policies_of_repository),)

    def __init__(
        self,
        store: ImageStore,
        registry: RegistryPort,
        recorder: EventSink,
        *,
        dependency_requeue: float = DEPENDENCY_REQUEUE,
    ) -> None:
        self.store = store
        self.registry = registry
        self.recorder = recorder
        self.dependency_requeue = dependency_requeue

    def parse(self, doc: dict[str, Any]) -> ImagePolicy:
        return ImagePolicy.model_validate(doc)

    def interval(self, obj: ImagePolicy) -> float:
        return obj.spec.interval_seconds or RESYNC

    def new_state(self, obj: ImagePolicy) -> PolicyState:
        return PolicyState()

    def steps(self) -> tuple[Step[ImagePolicy, PolicyState], ...]:
        return (self.reconcile_repository, self.reconcile_latest, self.reconcile_ref)

    # -- steps -----------------------------------------------------------

    async def reconcile_repository(self, obj: ImagePolicy, state: PolicyState) -> None:
        """Read the ImageRepository and its tags."""
        spec = obj.spec
        if spec.effective_digest_reflection_policy == "Always" and spec.interval is None:
            raise Stalling(
                "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'",
                ImageReason.INTERVAL_NOT_CONFIGURED,
            )
        ref = spec.image_repository_ref
        namespace = ref.namespace or obj.metadata.namespace
        name = f"ImageRepository '{namespace}/{ref.name}'"
        try:
            repo = await read_object(
                self.store, "ImageRepository", namespace, ref.name, ImageRepository.model_validate
            )
        except ValueError as e:
            raise PolicyFailed(f"failed to get the referred {name}: {e}") from None
        if repo is None:
            raise DependencyNotReady(
                f"failed to get the referred ImageRepository: {name} not found",
                self.dependency_requeue,
            )
        if not cross_namespace_allowed(repo.spec.access_from, obj.metadata.namespace, namespace):
            raise Stalling(
                f"failed to get the referred ImageRepository: cannot access '{name}', "
                "cross-namespace references are not allowed by its spec.accessFrom",
                ImageReason.ACCESS_DENIED,
            )
        state.repository = repo
        try:
            tags = await self.store.get_tags(
                subjects.object_key("ImageRepository", namespace, ref.name)
            )
        except BusError as e:
            raise PolicyFailed(f"failed to read tags from the store: {e}") from e
        if not tags:
            raise DependencyNotReady(
                f"no tags in database for {name} (waiting for its scan)", self.dependency_requeue
            )
        state.tags = tags

    async def reconcile_latest(self, obj: ImagePolicy, state: PolicyState) -> None:
        """Apply filterTags and the policy."""
        spec = obj.spec
        try:
            validate_policy(spec.policy, spec.filter_tags)
        except PolicyError as e:
            raise PolicyInvalid(str(e)) from None
        try:
            state.latest = latest_tag(state.tags, spec.policy, spec.filter_tags)
        except PolicyError as e:
            raise PolicyFailed(f"failed to compute the latest tag: {e}") from None

    async def reconcile_ref(self, obj: ImagePolicy, state: PolicyState) -> Result:
        """Record latestRef (reading the digest when the policy says so); event on change."""
        repo = state.repository
        assert repo is not None
        status = obj.status
        old = status.latest_ref
        latest = ImageRef(name=repo.spec.image, tag=state.latest)
        policy = obj.spec.effective_digest_reflection_policy
        fetch = policy == "Always" or (
            policy == "IfNotPresent"
            and (old is None or old.name != latest.name or old.tag != latest.tag or not old.digest)
        )
        if policy == "IfNotPresent" and not fetch and old is not None:
            latest = ImageRef(name=latest.name, tag=latest.tag, digest=old.digest)
        if fetch:
            access = await registry_access(self.store, repo)
            try:
                digest = await access.digest(self.registry, latest.tag)
            except RegistryError as e:
                raise PolicyFailed(f"failed fetching digest of {latest}: {e}") from None
            latest = ImageRef(name=latest.name, tag=latest.tag, digest=digest)
        changed = old is None or old != latest
        if changed:
            status.observed_previous_ref = old
            status.latest_ref = latest
        status.latest_image = str(latest)
        status.observed_previous_image = (
            str(status.observed_previous_ref) if status.observed_previous_ref else None
        )
        message = ready_message(status)
        ready = get_condition(status.conditions, ConditionType.READY)
        if changed or ready is None or ready.status != "True":
            await self.recorder.event(obj, Severity.INFO, Reason.SUCCEEDED, message)
        return Result(ready_message=message)
