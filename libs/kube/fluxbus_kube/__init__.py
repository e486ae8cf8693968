"""fluxbus_kube: access to a target Kubernetes cluster, shared by the services
that apply to one (kustomize, helm). Its `client` module is the only importer
of kubernetes_asyncio besides kubelite's test helpers (aiohttp too, which it
runs on).

- `client`: configuration (`KUBECONFIG`, `~/.kube/config` or in-cluster),
  impersonation views, raw REST with typed errors;
- `discovery`: apiVersion/kind → resource, lazily and refreshed after CRDs;
- `watch`: shared per-type watches and `watch_until`;
- `preview`: server-side dry-runs of what an apply would do (drift);
- `apply`: staged server-side apply with dry-run, drift ignore rules,
  managed-fields takeover and per-object policies, delete, wait for deletion;
  `Cluster`, the class a service connects;
- `resources`, `errors`: the types it speaks and raises;
- `logic/`: Flux's pure rules behind it (ordering, policy, drift, dryrun,
  managed_fields).

`Cluster` is loaded on first use, so the pure parts import no HTTP client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fluxbus_kube.errors import ApiError, ApplyError, ClusterError
from fluxbus_kube.logic.drift import Ident
from fluxbus_kube.resources import Change, Judge, Preview, Ref, Resource

if TYPE_CHECKING:
    from fluxbus_kube.apply import Cluster

__all__ = [
    "ApiError",
    "ApplyError",
    "Change",
    "Cluster",
    "ClusterError",
    "Ident",
    "Judge",
    "Preview",
    "Ref",
    "Resource",
]


def __getattr__(name: str) -> Any:
    if name == "Cluster":
        from fluxbus_kube.apply import Cluster

        return Cluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
