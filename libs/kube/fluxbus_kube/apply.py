"""Staged server-side apply, as kustomize-controller does it (fluxcd/pkg/ssa),
and deletion; `Cluster` is the adapter a service hands its reconcilers as their cluster port.

- applies staged (`logic.ordering`): stage 1 CRDs, Namespaces, ClusterRoles
  (then waits until the CRDs are Established), stage 2 `*Class` kinds, stage 3
  the rest. In each stage every object is first read and *server-side
  dry-run* applied; only when every dry-run passed are the objects whose
  dry-run result differs from the live object applied (field manager
  `fluxbus`, `force=true`). Unchanged objects are not written at all;
- under ssa Override (the default) takes over the fields `kubectl` changed by
  hand, and those Flux's `kustomize-controller` applied before fluxbus
  (`logic.managed_fields`), so the apply removes those not in Git (Merge
  leaves them);
- drift ignore rules: a new object gets the ignored fields from Git, an
  existing one keeps them as they are (`logic.drift.resolve_ignored`);
- honours the per-object policies of `logic.policy` (ssa Override / Merge /
  IfNotPresent / Ignore, `reconcile: disabled`, `force: enabled`): an
  immutable-field error is answered by delete-and-recreate only when forced,
  otherwise it fails naming the object and the field;
- deletes with propagation Background and can wait for objects to be gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from fluxbus_common.conditions import Reason
from fluxbus_kube.client import (
    REQUEST_TIMEOUT,
    load_api_client,
    load_api_client_from_dict,
)
from fluxbus_kube.errors import ApiError, ApplyError, ClusterError
from fluxbus_kube.logic.drift import Ident, ident_of, resolve_ignored
from fluxbus_kube.logic.dryrun import unchanged
from fluxbus_kube.logic.managed_fields import takeover
from fluxbus_kube.logic.ordering import Stage, apply_stages
from fluxbus_kube.logic.policy import Action, apply_policy
from fluxbus_kube.preview import PreviewingClient
from fluxbus_kube.resources import Change, Ref


class Cluster(PreviewingClient):
    """A connection to one Kubernetes cluster. Use `await Cluster.connect()`."""

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, **kwargs: Any) -> Cluster:
        """Connect with `kubeconfig`, else `$KUBECONFIG` / `~/.kube/config`, else the
        in-cluster service account. Raises ClusterError when none works."""
        return cls(await load_api_client(kubeconfig), **kwargs)

    @classmethod
    async def from_kubeconfig(cls, kubeconfig: Mapping[str, Any], **kwargs: Any) -> Cluster:
        """Connect with a parsed kubeconfig (a remote cluster's Secret). Raises ClusterError."""
        return cls(await load_api_client_from_dict(kubeconfig), **kwargs)

    async def take_over_fields(
        self, ref: Ref, live: dict[str, Any], keep: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Make fluxbus (`field_manager`) the owner of what kubectl changed by hand
        (ssa Override).

        The fields of the `kubectl*` and `before-first-apply` managers move into
        the Apply entry of `field_manager`, so the next apply removes those not in Git (a
        label added with `kubectl label`, a key added with client-side
        `kubectl apply`). Fields under the JSON pointers in `keep` (drift
        ignore rules) are left to their manager. Returns the live object
        (patched when needed).
        """
        meta = live.get("metadata") or {}
        managed = takeover(meta.get("managedFields") or [], keep, self.field_manager)
        if managed is None:
            return live
        return await self.replace_managed_fields(
            ref, str(meta.get("resourceVersion") or ""), managed
        )

    # -- staged apply ----------------------------------------------------------

    async def apply_all(
        self,
        objects: Sequence[Mapping[str, Any]],
        *,
        force: bool = False,
        timeout: float = 300.0,
        ignored: Mapping[Ident, Sequence[str]] | None = None,
    ) -> list[Change]:
        """Apply objects in Flux's stages; return one Change per object.

        `force` is the caller's `spec.force` (Kustomization, HelmRelease). `ignored` maps
        (apiVersion, kind, namespace, name) to the JSON pointers of drift
        ignore rules: applied from Git on creation, then left as they are
        and never taken over. Raises ApplyError (Flux's
        reason `ReconciliationFailed`; the message says "dry-run failed" or "apply
        failed") listing every failed object, with the changes made by the stages before.
        """
        changes: list[Change] = []
        for stage, members in apply_stages(objects):
            changes += await self._apply_stage(members, force, changes, ignored or {})
            if stage is Stage.CLUSTER_DEFINITIONS:
                crds = [c for c in changes if c.ref.resource.kind == "CustomResourceDefinition"]
                await self._wait_established(crds, timeout, changes)
        return changes

    async def _apply_stage(
        self,
        members: Sequence[Mapping[str, Any]],
        force: bool,
        before: list[Change],
        ignored: Mapping[Ident, Sequence[str]],
    ) -> list[Change]:
        sem = asyncio.Semaphore(self.concurrency)
        failures: list[str] = []

        async def plan(obj: Mapping[str, Any]) -> tuple[Change, Mapping[str, Any], bool] | None:
            async with sem:
                desc = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
                try:
                    ref = await self.ref_of(obj)
                    desc = ref.describe()
                    live = await self.get(ref)
                    policy = apply_policy(obj, live, force=force)
                    if policy.action is Action.SKIP:
                        return Change(ref, "skipped", live), obj, False
                    keep = ignored.get(ident_of(obj), ())
                    if live is not None and not policy.merge:
                        live = await self.take_over_fields(ref, live, keep)
                    obj = resolve_ignored(obj, live, keep, self.field_manager)
                    try:
                        dry = await self.server_side_apply(ref, obj, dry_run=True)
                    except ApiError as e:
                        if e.immutable and live is not None and policy.force:
                            return Change(ref, "configured", live), obj, True
                        if e.immutable:
                            failures.append(
                                f"{desc} dry-run failed: {e.field_message()} "
                                "(set spec.force or the kustomize.toolkit.fluxcd.io/force: "
                                "enabled annotation to recreate it)"
                            )
                        else:
                            failures.append(f"{desc} dry-run failed: {e.field_message()}")
                        return None
                    if unchanged(dry, live):
                        return Change(ref, "unchanged", live), obj, False
                    action = "created" if live is None else "configured"
                    return Change(ref, action, live), obj, False
                except ClusterError as e:
                    failures.append(f"{desc} dry-run failed: {e}")
                    return None

        planned = await asyncio.gather(*(plan(o) for o in members))
        if failures:
            raise ApplyError("\n".join(sorted(failures)), before, Reason.RECONCILIATION_FAILED)
        results = [p for p in planned if p is not None]

        async def write(change: Change, obj: Mapping[str, Any], recreate: bool) -> None:
            async with sem:
                try:
                    if recreate:
                        await self.delete(change.ref)
                        await self.wait_gone([change.ref], REQUEST_TIMEOUT)
                        change.action = "created"
                    change.object = await self.server_side_apply(change.ref, obj)
                except (ClusterError, TimeoutError) as e:
                    change.action = "failed"
                    failures.append(f"{change.subject} apply failed: {e}")

        await asyncio.gather(
            *(write(c, o, r) for c, o, r in results if c.action in ("created", "configured"))
        )
        stage = [c for c, _, _ in results]
        if failures:
            done = [c for c in stage if c.action != "failed"]
            raise ApplyError(
                "\n".join(sorted(failures)), before + done, Reason.RECONCILIATION_FAILED
            )
        return stage

    async def _wait_established(
        self, crds: list[Change], timeout: float, changes: list[Change]
    ) -> None:
        if not crds:
            return

        def established(_: Ref, obj: Mapping[str, Any] | None) -> bool:
            conds = ((obj or {}).get("status") or {}).get("conditions") or []
            return any(c.get("type") == "Established" and c.get("status") == "True" for c in conds)

        ok, _ = await self.watch_until([c.ref for c in crds], established, timeout)
        for c in crds:
            spec = (c.object or {}).get("spec") or {}
            if spec.get("group"):
                self.forget_group(str(spec["group"]))
        if not ok:
            names = ", ".join(c.subject for c in crds)
            raise ApplyError(
                f"CustomResourceDefinitions not established: {names}",
                changes,
                Reason.RECONCILIATION_FAILED,
            )

    # -- delete --------------------------------------------------------------

    async def delete_all(
        self, refs: Sequence[Ref], propagation: str = "Background"
    ) -> list[Change]:
        """Delete objects (in the given order's spirit, concurrently); return deleted ones.

        Raises ClusterError listing the objects that could not be deleted.
        """
        sem = asyncio.Semaphore(self.concurrency)
        failures: list[str] = []
        deleted: list[Change] = []

        async def one(ref: Ref) -> None:
            async with sem:
                try:
                    if await self.delete(ref, propagation):
                        deleted.append(Change(ref, "deleted"))
                except ClusterError as e:
                    failures.append(f"{ref.describe()} delete failed: {e}")

        await asyncio.gather(*(one(r) for r in refs))
        if failures:
            raise ClusterError("\n".join(sorted(failures)))
        order = {r: i for i, r in enumerate(refs)}
        return sorted(deleted, key=lambda c: order[c.ref])

    async def wait_gone(self, refs: Sequence[Ref], timeout: float) -> None:
        """Wait (watch-driven) until every object is gone; raise TimeoutError naming those left."""
        ok, latest = await self.watch_until(refs, lambda _r, obj: obj is None, timeout)
        if not ok:
            left = ", ".join(r.describe() for r in refs if latest.get(r) is not None)
            raise TimeoutError(f"objects not terminated after {timeout:g}s: {left}")
