"""The target cluster as the helm service uses it besides Helm itself (through
`fluxbus_kube`, the apply path the kustomize service uses too): reading the
ConfigMaps and Secrets of `valuesFrom`, unlocking a release stuck pending in
Helm's storage, and detecting and correcting drift of
a release's objects by server-side dry-run and staged server-side apply, the
corrected fields then handed back to Helm's field manager (helm-controller
corrects as Helm itself, so the next upgrade owns them without conflict).

A HelmRelease with `spec.kubeConfig` is compared on its own cluster (a
connection opened for the comparison); impersonation follows its KubeTarget.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fluxbus_common.api.kustomize import DriftIgnoreRule
from fluxbus_common.keys import FIELD_MANAGER
from fluxbus_common.safeyaml import load as load_yaml
from fluxbus_helm.errors import ClusterReadError, DriftError, StorageError
from fluxbus_helm.logic.drift import (
    drift_line,
    hand_back,
    inventory_entry,
    manifest_objects,
    release_objects,
)
from fluxbus_helm.logic.storage import mark_failed, secret_name
from fluxbus_helmsdk import KubeTarget
from fluxbus_kube import ApiError, Cluster, ClusterError, Ref
from fluxbus_kube.logic.drift import ignored_paths

_UNREADABLE = (401, 403)


class ClusterAccess:
    """The service's own cluster connection, used for valuesFrom and drift."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Return a v1 object (ConfigMap/Secret) or None when absent or unreadable
        (the store is looked at next). Raises ClusterReadError."""
        try:
            resource = await self.cluster.resource_for("v1", kind)
            return await self.cluster.get(Ref(resource, namespace, name))
        except ApiError as e:
            if e.status in _UNREADABLE:
                return None
            raise ClusterReadError(f"{kind}/{namespace}/{name}: {e}") from None
        except ClusterError as e:
            raise ClusterReadError(f"{kind}/{namespace}/{name}: {e}") from None

    @asynccontextmanager
    async def _on(self, target: KubeTarget) -> AsyncIterator[Cluster]:
        if target.kubeconfig is None:
            yield self.cluster.as_user(target.as_user)
            return
        try:
            parsed = load_yaml(target.kubeconfig)
            remote = await Cluster.from_kubeconfig(parsed if isinstance(parsed, dict) else {})
        except (ClusterError, ValueError) as e:
            raise DriftError(f"spec.kubeConfig: {e}") from None
        try:
            yield remote.as_user(target.as_user)
        finally:
            await remote.close()

    async def detect(
        self,
        target: KubeTarget,
        manifest: str,
        namespace: str,
        ignore: Sequence[Mapping[str, Any]],
    ) -> list[str]:
        """Return one line per drifted object of the manifest. Raises DriftError."""
        objects, rules = self._inputs(manifest, namespace, ignore)
        async with self._on(target) as cluster:
            try:
                previews = await cluster.preview_all(
                    objects, force=True, ignored=ignored_paths(objects, rules)
                )
            except ClusterError as e:
                raise DriftError(str(e)) from None
        return [
            line
            for p in previews
            if p.ref is not None and (line := drift_line(p.subject, p.live, p.merged)) is not None
        ]

    async def correct(
        self,
        target: KubeTarget,
        manifest: str,
        namespace: str,
        ignore: Sequence[Mapping[str, Any]],
    ) -> list[str]:
        """Re-apply the manifest's objects; return "<subject> <action>" per changed one."""
        objects, rules = self._inputs(manifest, namespace, ignore)
        async with self._on(target) as cluster:
            try:
                changes = await cluster.apply_all(
                    objects, force=True, ignored=ignored_paths(objects, rules)
                )
                done = [c for c in changes if c.action in ("created", "configured")]
                for change in done:
                    await self._hand_back(cluster, change.ref, change.object)
            except ClusterError as e:
                raise DriftError(str(e)) from None
        return [f"{c.subject} {c.action}" for c in done]

    @staticmethod
    async def _hand_back(cluster: Cluster, ref: Ref, obj: Mapping[str, Any] | None) -> None:
        """Give the corrected fields back to Helm's field manager."""
        live = obj if obj is not None else await cluster.get(ref)
        meta = (live or {}).get("metadata") or {}
        managed = hand_back(meta.get("managedFields") or [], FIELD_MANAGER)
        if managed is not None:
            await cluster.replace_managed_fields(
                ref, str(meta.get("resourceVersion") or ""), managed
            )

    async def inventory(
        self, target: KubeTarget, manifest: str, namespace: str
    ) -> list[dict[str, str]]:
        """Flux's `status.inventory` of a release: the manifest's objects (not its
        hooks), namespaced ones in the release namespace, sorted by id. Raises DriftError."""
        try:
            objects = release_objects(manifest, namespace)
        except ValueError as e:
            raise DriftError(str(e)) from None
        entries = []
        async with self._on(target) as cluster:
            for obj in objects:
                try:
                    ref = await cluster.ref_of(obj)
                except ClusterError as e:
                    raise DriftError(str(e)) from None
                res = ref.resource
                entries.append(
                    inventory_entry(ref.namespace, ref.name, res.group, res.kind, res.version)
                )
        return sorted(entries, key=lambda e: e["id"])

    async def unlock(
        self, target: KubeTarget, release: str, namespace: str, revision: int, description: str
    ) -> None:
        """Mark a pending release revision failed in its storage Secret. Raises StorageError."""
        name = secret_name(release, revision)
        try:
            async with self._on(target) as cluster:
                resource = await cluster.resource_for("v1", "Secret")
                ref = Ref(resource, namespace, name)
                live = await cluster.get(ref)
                if live is None:
                    raise StorageError(f"Secret/{namespace}/{name} not found")
                updated = mark_failed(live, description)
                await cluster.call("PUT", resource.path(namespace, name), body=updated, what=name)
        except (ClusterError, DriftError, ValueError) as e:
            raise StorageError(f"Secret/{namespace}/{name}: {e}") from None

    @staticmethod
    def _inputs(
        manifest: str, namespace: str, ignore: Sequence[Mapping[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[DriftIgnoreRule]]:
        try:
            objects = manifest_objects(manifest, namespace)
            rules = [DriftIgnoreRule.model_validate(r) for r in ignore]
        except ValueError as e:
            raise DriftError(str(e)) from None
        return objects, rules
