"""The target-cluster adapter: the only package of the kustomize service that
imports kubernetes_asyncio (and aiohttp, which it runs on).

- `client`: configuration (`KUBECONFIG`, `~/.kube/config` or in-cluster),
  impersonation views, raw REST with typed errors;
- `discovery`: apiVersion/kind → resource, lazily and refreshed after CRDs;
- `watch`: shared per-type watches and `watch_until`;
- `apply`: staged server-side apply with dry-run, delete, wait for deletion;
  `Cluster`, the class the service connects.
"""

from fluxbus_kustomize.cluster.apply import Cluster
from fluxbus_kustomize.errors import ApiError, ApplyError, ClusterError
from fluxbus_kustomize.ports import Change, Ref, Resource

__all__ = ["ApiError", "ApplyError", "Change", "Cluster", "ClusterError", "Ref", "Resource"]
