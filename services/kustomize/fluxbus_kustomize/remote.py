"""Remote clusters: `spec.kubeConfig.secretRef` names a Secret (in the
Kustomization's namespace, in the fluxbus store) whose `value` or `value.yaml`
key (or the key named) holds a kubeconfig; the Kustomization is applied there.

Connections are pooled per kubeconfig (its sha256): every Kustomization
naming the same cluster shares one connection pool and its discovery and
watch caches. A connection no reconcile has used for `idle` seconds is closed
at the next lease; all are closed with the pool. Neither the kubeconfig nor
its credentials ever appear in an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from fluxbus_common import safeyaml
from fluxbus_common.api import Kustomization, Secret
from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic
from fluxbus_common.ports import BusError, SecretReader
from fluxbus_kube import Cluster
from fluxbus_kube.errors import ClusterError
from fluxbus_kustomize.ports import ClusterPort

KUBECONFIG_KEYS = ("value", "value.yaml")
"""Where Flux looks for the kubeconfig in the Secret when no key is named."""
IDLE_CLOSE = 300.0
"""Seconds an unused remote connection stays open (reconciles at the usual
intervals of a few minutes keep theirs)."""

Connect = Callable[[Mapping[str, Any]], Awaitable[ClusterPort]]


async def _connect(kubeconfig: Mapping[str, Any]) -> ClusterPort:
    return await Cluster.from_kubeconfig(kubeconfig)


@dataclass
class _Pooled:
    cluster: ClusterPort
    users: int = 0
    last_used: float = 0.0


class ClusterPool:
    """The clusters Kustomizations target: the service's own, or remote ones."""

    def __init__(
        self,
        local: ClusterPort,
        secrets: SecretReader,
        *,
        connect: Connect = _connect,
        idle: float = IDLE_CLOSE,
    ) -> None:
        self.local = local
        self.secrets = secrets
        self._connect = connect
        self.idle = idle
        self._pool: dict[str, _Pooled] = {}
        self._bound: dict[str, ClusterPort] = {}

    def target(self, key: str) -> ClusterPort:
        """Return the cluster bound to an object key (`bound`), else the local one."""
        return self._bound.get(key, self.local)

    @contextlib.asynccontextmanager
    async def bound(self, key: str, obj: Kustomization) -> AsyncIterator[ClusterPort]:
        """Lease the cluster of `obj` and bind it to `key` while the block runs."""
        async with self.lease(obj) as cluster:
            self._bound[key] = cluster
            try:
                yield cluster
            finally:
                self._bound.pop(key, None)

    def __len__(self) -> int:
        """How many remote connections are open."""
        return len(self._pool)

    @contextlib.asynccontextmanager
    async def lease(self, obj: Kustomization) -> AsyncIterator[ClusterPort]:
        """Yield the cluster `obj` targets while the block runs.

        Raises Generic when the kubeconfig Secret is missing or unusable.
        """
        ref = obj.spec.kube_config.secret_ref if obj.spec.kube_config else None
        if ref is None:
            yield self.local
            return
        kubeconfig = await self._kubeconfig(obj.metadata.namespace, ref.name, ref.key)
        digest = hashlib.sha256(yaml.safe_dump(kubeconfig, sort_keys=True).encode()).hexdigest()
        await self._sweep()
        entry = self._pool.get(digest)
        if entry is None:
            try:
                cluster = await self._connect(kubeconfig)
            except ClusterError as e:
                raise Generic(
                    f"spec.kubeConfig: Secret '{ref.name}': {e}", Reason.RECONCILIATION_FAILED
                ) from None
            entry = self._pool.setdefault(digest, _Pooled(cluster))
            if entry.cluster is not cluster:  # another reconcile connected meanwhile
                await _close(cluster)
        entry.users += 1
        try:
            yield entry.cluster
        finally:
            entry.users -= 1
            entry.last_used = time.monotonic()

    async def _kubeconfig(self, namespace: str, name: str, key: str | None) -> dict[str, Any]:
        what = f"spec.kubeConfig.secretRef: Secret '{namespace}/{name}'"
        try:
            doc = await self.secrets.get_secret(namespace, name)
        except BusError as e:
            raise Generic(f"{what}: {e}", Reason.RECONCILIATION_FAILED) from e
        if doc is None:
            raise Generic(f"{what} not found", Reason.RECONCILIATION_FAILED)
        values = Secret.model_validate(doc).text()
        wanted = (key,) if key else KUBECONFIG_KEYS
        text = next((values[k] for k in wanted if k in values), None)
        if text is None:
            raise Generic(f"{what} has no key {' or '.join(wanted)}", Reason.RECONCILIATION_FAILED)
        try:
            parsed = safeyaml.load(text)
        except (yaml.YAMLError, ValueError):
            parsed = None
        if not isinstance(parsed, dict):
            raise Generic(f"{what}: not a kubeconfig", Reason.RECONCILIATION_FAILED)
        return parsed

    async def _sweep(self) -> None:
        """Close the connections nobody used for `idle` seconds."""
        now = time.monotonic()
        for digest, entry in list(self._pool.items()):
            if entry.users == 0 and now - entry.last_used > self.idle:
                del self._pool[digest]
                await _close(entry.cluster)

    async def close(self) -> None:
        """Close every remote connection (the local cluster is its owner's)."""
        pooled, self._pool = list(self._pool.values()), {}
        for entry in pooled:
            await _close(entry.cluster)


async def _close(cluster: ClusterPort) -> None:
    close = getattr(cluster, "close", None)
    if close is not None:
        await close()
