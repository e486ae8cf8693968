"""What an apply would do, without doing it: each object's live state and its
server-side dry-run (`dryRun=All`, the `fluxbus` field manager, forced as the
apply is), for `fluxbus diff` and report-only drift.

An object that cannot be dry-run because what it needs does not exist yet
(its Namespace or its CRD is created by the same apply) is previewed as its
manifest: it would be created. Objects the apply skips (`ssa: Ignore`,
`reconcile: disabled`, `IfNotPresent` when present) are left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from fluxbus_kube.errors import ApiError, ClusterError
from fluxbus_kube.logic.drift import Ident, ident_of, resolve_ignored
from fluxbus_kube.logic.policy import Action, apply_policy
from fluxbus_kube.resources import Preview
from fluxbus_kube.watch import WatchingClient


def _subject(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    name = meta.get("name")
    return f"{obj.get('kind')}/{ns}/{name}" if ns else f"{obj.get('kind')}/{name}"


class PreviewingClient(WatchingClient):
    """Server-side dry-runs of whole object sets."""

    async def preview_all(
        self,
        objects: Sequence[Mapping[str, Any]],
        *,
        force: bool = False,
        ignored: Mapping[Ident, Sequence[str]] | None = None,
    ) -> list[Preview]:
        """Return (subject, ref, live, dry-run result) per object that would be applied.

        Raises ClusterError listing every object whose dry-run failed for another
        reason than a missing namespace or kind.
        """
        sem = asyncio.Semaphore(self.concurrency)
        failures: list[str] = []
        rules = ignored or {}

        async def one(obj: Mapping[str, Any]) -> Preview | None:
            async with sem:
                subject = _subject(obj)
                try:
                    ref = await self.ref_of(obj)
                except ClusterError:
                    return Preview(subject, None, None, dict(obj))  # its CRD comes with it
                try:
                    live = await self.get(ref)
                    if apply_policy(obj, live, force=force).action is Action.SKIP:
                        return None
                    keep = rules.get(ident_of(obj), ())
                    desired = resolve_ignored(obj, live, keep, self.field_manager)
                    try:
                        dry = await self.server_side_apply(ref, desired, dry_run=True)
                    except ApiError as e:
                        if live is None and e.status == 404:
                            return Preview(ref.describe(), ref, None, dict(desired))
                        raise
                except ClusterError as e:
                    failures.append(f"{ref.describe()} dry-run failed: {e}")
                    return None
                return Preview(ref.describe(), ref, live, dry)

        previews = await asyncio.gather(*(one(o) for o in objects))
        if failures:
            raise ClusterError("\n".join(sorted(failures)))
        return [p for p in previews if p is not None]
