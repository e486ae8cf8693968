"""ImageRepositoryReconciler: image-reflector-controller's ImageRepository, step by step.

Guard clauses are the runtime's (deleted → finalize, suspended → skip); then:

1. `reconcile_image` — parse `spec.image` into its canonical name (a bad name
   stalls: ImageURLInvalid);
2. `reconcile_scan` — decide whether a scan is due (first scan, reconcile
   request, new name, new exclusion list, nothing stored, interval passed);
   if so gather credentials, list every tag, drop excluded ones, keep the list
   in the store and record `lastScanResult` (tag count, Flux's checksum, scan
   time, the 10 latest tags). A failed scan keeps the previous tags and
   status (Ready=False with Flux's reason, retried with backoff).

ImagePolicies watch this kind's status: a scan whose checksum changed wakes
them through the bus at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import structlog

from fluxbus_common import keys, subjects
from fluxbus_common.api import ImageRepository
from fluxbus_common.api.image import ScanResult
from fluxbus_common.conditions import ConditionType, Reason, get_condition, now_rfc3339
from fluxbus_common.duration import format_duration
from fluxbus_common.errors import Generic
from fluxbus_common.events import EventSink, Severity
from fluxbus_common.ports import BusError
from fluxbus_common.reconcile import Result, Step, StepReconciler
from fluxbus_image.access import RegistryAccess, parse_repository_image, registry_access
from fluxbus_image.errors import ScanAuthFailed, ScanFailed
from fluxbus_image.logic.exclusion import compile_exclusions
from fluxbus_image.logic.reference import ImageName
from fluxbus_image.logic.scan import latest_tags, should_scan, tags_checksum
from fluxbus_image.ports import ImageStore, RegistryPort
from fluxbus_image.registry.errors import RegistryAuthError, RegistryError

log = structlog.get_logger("fluxbus.image")


def parse_time(value: str | None) -> datetime | None:
    """Parse an RFC 3339 time as the store keeps it; None when absent or unparsable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ready(obj: ImageRepository) -> bool:
    ready = get_condition(obj.status.conditions, ConditionType.READY)
    return ready is not None and ready.status == "True"


@dataclass
class ScanState:
    """What the ImageRepository steps hand each other during one reconcile."""

    image: ImageName | None = None
    wait: float = 0.0
    """Seconds until the next scan is due."""
    scanned: bool = False
    previous_revision: str | None = None


class ImageRepositoryReconciler(StepReconciler[ImageRepository, ScanState]):
    """Scans registries into tag lists kept in the fluxbus store."""

    kind: ClassVar[str] = "ImageRepository"

    def __init__(self, store: ImageStore, registry: RegistryPort, recorder: EventSink) -> None:
        self.store = store
        self.registry = registry
        self.recorder = recorder

    # -- runtime hooks ---------------------------------------------------

    def parse(self, doc: dict[str, Any]) -> ImageRepository:
        return ImageRepository.model_validate(doc)

    def interval(self, obj: ImageRepository) -> float:
        return obj.spec.interval_seconds

    def timeout(self, obj: ImageRepository) -> float | None:
        # The scan itself is bounded by spec.timeout (Flux's GetTimeout); the
        # reconcile gets room for the store writes around it.
        return obj.spec.timeout_seconds + 30.0

    def new_state(self, obj: ImageRepository) -> ScanState:
        scan = obj.status.last_scan_result
        return ScanState(previous_revision=scan.revision if scan else None)

    def steps(self) -> tuple[Step[ImageRepository, ScanState], ...]:
        return (self.reconcile_image, self.reconcile_scan)

    async def finalize(self, obj: ImageRepository) -> None:
        """Forget the stored tag list."""
        try:
            await self.store.delete_tags(self.key_of(obj))
        except BusError as e:
            raise Generic(f"deleting the tag list failed: {e}") from e

    @staticmethod
    def key_of(obj: ImageRepository) -> str:
        return subjects.object_key("ImageRepository", obj.metadata.namespace, obj.metadata.name)

    # -- steps -----------------------------------------------------------

    async def reconcile_image(self, obj: ImageRepository, state: ScanState) -> None:
        """Parse `spec.image`; a name that cannot be parsed stalls until the spec changes."""
        state.image = parse_repository_image(obj)

    async def reconcile_scan(self, obj: ImageRepository, state: ScanState) -> Result:
        """Scan when due; record the result; say when the next scan is."""
        assert state.image is not None
        spec, status = obj.spec, obj.status
        exclusions = compile_exclusions(spec.effective_exclusion_list)
        key = self.key_of(obj)
        requested = (obj.metadata.annotations or {}).get(keys.RECONCILE_REQUESTED_AT)
        last = status.last_scan_result
        scanned_at = parse_time(last.scan_time) if last else None
        try:
            # a stat, not a download: the list is only read back by the policies
            stored = await self.store.has_tags(key) if last is not None else False
        except BusError as e:
            raise ScanFailed(f"failed to read tags from the store: {e}") from e
        decision = should_scan(
            interval=spec.interval_seconds,
            last_scan_age=(
                None if scanned_at is None else (datetime.now(UTC) - scanned_at).total_seconds()
            ),
            reconcile_requested=requested is not None
            and requested != status.last_handled_reconcile_at,
            canonical_changed=status.canonical_image_name != state.image.canonical,
            exclusions_changed=status.observed_exclusion_list != spec.effective_exclusion_list,
            tags_stored=stored,
            last_failed=not _ready(obj),
        )
        state.wait = decision.wait
        if decision.scan:
            log.debug("image.scan", reason=decision.reason)
            access = await registry_access(self.store, obj)
            tags = [t for t in await self._list(access) if not any(p.search(t) for p in exclusions)]
            try:
                await self.store.put_tags(key, tags)
            except BusError as e:
                raise ScanFailed(f"failed to store tags: {e}") from e
            status.last_scan_result = ScanResult(
                revision=tags_checksum(tags),
                tag_count=len(tags),
                scan_time=now_rfc3339(),
                latest_tags=latest_tags(tags) or None,
            )
            state.scanned = True
        status.canonical_image_name = state.image.canonical
        status.observed_exclusion_list = list(spec.effective_exclusion_list)
        result = status.last_scan_result or ScanResult()
        message = f"successful scan: found {result.tag_count} tags with checksum {result.revision}"
        await self._notify(obj, state, message)
        return Result(requeue_after=state.wait, ready_message=message)

    async def _list(self, access: RegistryAccess) -> list[str]:
        try:
            listing = await access.list_tags(self.registry)
        except RegistryAuthError as e:
            raise ScanAuthFailed(f"scan failed: {e}") from None
        except RegistryError as e:
            raise ScanFailed(f"scan failed: {e}") from None
        return list(listing.tags)

    async def _notify(self, obj: ImageRepository, state: ScanState, message: str) -> None:
        """An event when the tags changed or the object became Ready again (as Flux)."""
        was_ready = _ready(obj)
        revision = obj.status.last_scan_result.revision if obj.status.last_scan_result else None
        if was_ready and revision == state.previous_revision:
            return
        await self.recorder.event(
            obj,
            Severity.INFO,
            Reason.SUCCEEDED,
            f"{message}, next scan in {format_duration(round(state.wait))}",
        )
