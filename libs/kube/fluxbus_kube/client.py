"""The raw connection to the target cluster: kubernetes-asyncio configuration,
impersonation, and REST requests with typed errors.

Requests go through `ApiClient.call_api` (its auth, TLS and connection pool)
with the response read here, so 4xx/5xx become `ApiError` and query booleans
are spelled `true`/`false` as the API server expects. Only this package
imports kubernetes_asyncio and aiohttp.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self, cast

import aiohttp
from kubernetes_asyncio import client, config

from fluxbus_common.keys import FIELD_MANAGER
from fluxbus_kube.errors import ApiError, ClusterError
from fluxbus_kube.resources import Ref

CONCURRENCY = 8
"""Requests one apply or delete batch keeps in flight: enough to hide the
round trip, few enough that one large Kustomization does not starve others."""
REQUEST_TIMEOUT = 60.0
"""Seconds one non-watch request may take."""


def _bool(value: bool) -> str:
    return "true" if value else "false"


async def load_api_client(kubeconfig: str | None = None) -> Any:
    """Return a kubernetes-asyncio ApiClient from `kubeconfig`, else `$KUBECONFIG` /
    `~/.kube/config`, else the in-cluster service account.

    Raises ClusterError when none works.
    """
    cfg = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG") or ""
    path = path.split(os.pathsep)[0] if path else ""
    default = Path.home() / ".kube" / "config"
    try:
        if path or default.exists():
            await config.load_kube_config(
                config_file=path or str(default), client_configuration=cfg
            )
        else:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except Exception as e:  # the loaders raise ConfigException, OSError, yaml errors
        raise ClusterError(f"cannot load the cluster configuration: {e}") from e
    cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize or 0, 128)
    return client.ApiClient(configuration=cfg)


async def load_api_client_from_dict(kubeconfig: Mapping[str, Any]) -> Any:
    """Return a kubernetes-asyncio ApiClient for a parsed kubeconfig (its current
    context). Raises ClusterError when it is unusable (the message names no secret)."""
    cfg = client.Configuration()
    try:
        await config.load_kube_config_from_dict(dict(kubeconfig), client_configuration=cfg)
    except Exception as e:  # ConfigException, KeyError, TypeError on malformed documents
        raise ClusterError(f"invalid kubeconfig: {type(e).__name__}") from None
    cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize or 0, 128)
    return client.ApiClient(configuration=cfg)


class ClusterClient:
    """Requests to one cluster, as the service or as an impersonated user.

    `as_user()` returns a shallow copy sharing the connection pool and every
    cache the subclasses keep (discovery, watches) with the root.
    """

    _root: Self
    """The connection views were made from (itself for the root)."""

    def __init__(
        self, api: Any, *, concurrency: int = CONCURRENCY, field_manager: str = FIELD_MANAGER
    ) -> None:
        self._api = api
        self.concurrency = concurrency
        self.field_manager = field_manager
        """Who server-side applies (`fluxbus`; the helm service corrects drift as the
        manager Helm applies its releases with)."""
        self._root = cast(Self, self)  # mypy types `self` in __init__ as the class, not Self
        self.user: str | None = None
        """The user requests impersonate (None: the service's own identity)."""

    def as_user(self, user: str | None) -> Self:
        """Return a view of this cluster whose requests impersonate `user`
        (`Impersonate-User`), sharing the connection pool and discovery.

        Health watches keep running as the service itself (they only read).
        """
        if not user:
            return self._root
        view = copy.copy(self._root)
        view.user = user
        return view

    async def close(self) -> None:
        """Close the connection pool (of the root cluster; views share it)."""
        if self._root is self:
            await self._api.close()

    # -- raw REST ----------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] | None,
        body: Any,
        content_type: str,
        timeout: Any,
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        if self.user:
            headers["Impersonate-User"] = self.user
        try:
            return await self._api.call_api(
                path,
                method,
                query_params=list(query or []),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
            )
        except (aiohttp.ClientError, OSError) as e:
            raise ClusterError(f"{method} {path}: {e}") from e

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        what: str = "",
    ) -> dict[str, Any]:
        """Send one request and return the decoded answer; raise ApiError on 4xx/5xx."""
        resp = await self._send(method, path, query, body, content_type, REQUEST_TIMEOUT)
        try:
            data = await resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise ClusterError(f"{what or path}: {e}") from e
        finally:
            resp.release()
        try:
            doc = json.loads(data) if data else {}
        except ValueError:
            doc = {"message": data[:200].decode("utf-8", "replace")}
        if resp.status >= 400 or (
            isinstance(doc, dict) and doc.get("kind") == "Status" and doc.get("status") == "Failure"
        ):
            raise ApiError(resp.status, doc if isinstance(doc, dict) else None, what)
        return doc if isinstance(doc, dict) else {}

    async def open_stream(self, path: str, query: Sequence[tuple[str, str]], read: float) -> Any:
        """Open a streaming GET (a watch); the caller reads lines and releases it."""
        timeout = aiohttp.ClientTimeout(sock_connect=10, sock_read=read)
        resp = await self._send("GET", path, query, None, "application/json", timeout)
        if resp.status >= 400:
            try:
                body = json.loads(await resp.read() or b"{}")
            except ValueError:
                body = {}
            finally:
                resp.release()
            raise ApiError(resp.status, body, f"watch {path}")
        return resp

    # -- single objects ------------------------------------------------------

    async def get(self, ref: Ref) -> dict[str, Any] | None:
        """Return the live object, or None when it does not exist."""
        try:
            return await self.call(
                "GET", ref.resource.path(ref.namespace, ref.name), what=ref.describe()
            )
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    async def server_side_apply(
        self, ref: Ref, obj: Mapping[str, Any], *, dry_run: bool = False, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply `obj` as `field_manager`; return the result."""
        body = dict(obj)
        if not ref.resource.namespaced and (body.get("metadata") or {}).get("namespace"):
            body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "namespace"}
        query = [("fieldManager", self.field_manager), ("force", _bool(force))]
        if dry_run:
            query.append(("dryRun", "All"))
        return await self.call(
            "PATCH",
            ref.resource.path(ref.namespace, ref.name),
            query=query,
            body=body,
            content_type="application/apply-patch+yaml",
            what=ref.describe(),
        )

    async def replace_managed_fields(
        self, ref: Ref, resource_version: str, managed: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Replace the object's managedFields (JSON patch guarded by its
        resourceVersion); return the patched object."""
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
            {"op": "replace", "path": "/metadata/managedFields", "value": list(managed)},
        ]
        return await self.call(
            "PATCH",
            ref.resource.path(ref.namespace, ref.name),
            query=[("fieldManager", self.field_manager)],
            body=patch,
            content_type="application/json-patch+json",
            what=f"{ref.describe()} managed fields",
        )

    async def delete(self, ref: Ref, propagation: str = "Background") -> bool:
        """Delete an object; return False when it was already gone."""
        try:
            await self.call(
                "DELETE",
                ref.resource.path(ref.namespace, ref.name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": propagation,
                },
                what=ref.describe(),
            )
        except ApiError as e:
            if e.status == 404:
                return False
            raise
        return True
