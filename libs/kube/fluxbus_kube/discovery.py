"""REST mapping of the target cluster: which resource (plural, scope) serves an
apiVersion/kind, discovered lazily per group-version (`/api/v1`,
`/apis/<g>/<v>`), refreshed once on a miss and forgotten for a group whose
CRDs were just applied."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from fluxbus_common.keys import FIELD_MANAGER
from fluxbus_kube.client import CONCURRENCY, ClusterClient
from fluxbus_kube.errors import ApiError, ClusterError
from fluxbus_kube.logic.ordering import group_of
from fluxbus_kube.resources import Ref, Resource


class DiscoveringClient(ClusterClient):
    """A cluster client that maps apiVersion/kind to resources (cache shared by views)."""

    def __init__(
        self, api: Any, *, concurrency: int = CONCURRENCY, field_manager: str = FIELD_MANAGER
    ) -> None:
        super().__init__(api, concurrency=concurrency, field_manager=field_manager)
        self._discovery: dict[str, dict[str, Resource]] = {}
        self._discovery_locks: dict[str, asyncio.Lock] = {}

    async def _group_version(self, api_version: str, refresh: bool) -> dict[str, Resource]:
        lock = self._discovery_locks.setdefault(api_version, asyncio.Lock())
        async with lock:
            cached = self._discovery.get(api_version)
            if cached is not None and not refresh:
                return cached
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                doc = await self.call("GET", path, what=f"discovery of {api_version}")
            except ApiError as e:
                if e.status != 404:
                    raise
                doc = {}
            group = group_of(api_version)
            version = api_version.rsplit("/", 1)[-1]
            found: dict[str, Resource] = {}
            for r in doc.get("resources") or []:
                name = str(r.get("name") or "")
                if not name or "/" in name:
                    continue  # subresources
                found[str(r.get("kind"))] = Resource(
                    group, version, str(r.get("kind")), name, bool(r.get("namespaced"))
                )
            self._discovery[api_version] = found
            return found

    async def resource_for(self, api_version: str, kind: str) -> Resource:
        """Return the resource of an apiVersion/kind, refreshing discovery once on a miss.

        Raises ClusterError(`no matches for kind "X" in version "Y"`).
        """
        known = await self._group_version(api_version, refresh=False)
        if kind not in known:
            known = await self._group_version(api_version, refresh=True)
        if kind not in known:
            raise ClusterError(f'no matches for kind "{kind}" in version "{api_version}"')
        return known[kind]

    def forget_group(self, group: str) -> None:
        """Drop the discovery of a group (its CRDs changed)."""
        for gv in [gv for gv in self._discovery if group_of(gv) == group]:
            del self._discovery[gv]

    async def ref_of(self, obj: Mapping[str, Any]) -> Ref:
        """Return the Ref of a manifest (namespace dropped for cluster-scoped kinds).

        Raises ClusterError for an unknown kind or a namespaced object without namespace.
        """
        resource = await self.resource_for(str(obj.get("apiVersion")), str(obj.get("kind")))
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        namespace = str(meta.get("namespace") or "") if resource.namespaced else ""
        if resource.namespaced and not namespace:
            raise ClusterError(f"{resource.kind}/{name} namespace not specified")
        return Ref(resource, namespace, name)
