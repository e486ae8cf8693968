"""What `build`, `diff`, `tree`, `history` and `rollback` share: a stored
Kustomization (status merged) parsed as the service parses it, its source
artifact, a renderer like the service's, and the cluster it targets (the
kubeconfig given, or the remote cluster of `spec.kubeConfig.secretRef`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from fluxbus_cli import store
from fluxbus_cli.errors import CliError
from fluxbus_common import subjects
from fluxbus_common.api import KindInfo, Kustomization, resolve_kind
from fluxbus_common.api.meta import Artifact
from fluxbus_common.bus import Bus
from fluxbus_common.errors import ReconcileError
from fluxbus_kube import Cluster
from fluxbus_kube.errors import ClusterError
from fluxbus_kustomize.build import Builder, RenderCache
from fluxbus_kustomize.ports import ClusterPort
from fluxbus_kustomize.remote import ClusterPool
from fluxbus_kustomize.render import Renderer

KUSTOMIZATION = resolve_kind("Kustomization")
ERROR = 2
"""Exit code of `diff` (and the others) on an error: 1 means "differences"."""


def check_kind(info: KindInfo, command: str) -> None:
    """Refuse any kind but Kustomization (what these commands operate on)."""
    if info.kind != "Kustomization":
        raise CliError(f"{command} works on kustomizations, not {info.plural}", ERROR)


async def load(bus: Bus, namespace: str, name: str) -> tuple[Kustomization, dict[str, Any]]:
    """Return the Kustomization parsed (status included) and its stored document."""
    doc = await store.get_doc(bus, KUSTOMIZATION, namespace, name)
    if doc is None:
        raise CliError(str(store.not_found(KUSTOMIZATION, namespace, name)), ERROR)
    try:
        return Kustomization.model_validate(doc), doc
    except ValidationError as e:
        raise CliError(f"Kustomization '{namespace}/{name}': {e}", ERROR) from None


async def source_artifact(bus: Bus, obj: Kustomization) -> Artifact:
    """Return the artifact of the Kustomization's source (what the service renders)."""
    ref = obj.spec.source_ref
    ns = ref.namespace or obj.metadata.namespace
    status = await bus.get_status(subjects.object_key(ref.kind, ns, ref.name))
    raw = (status.value if status else {}).get("artifact")
    try:
        artifact = Artifact.model_validate(raw) if raw else None
    except ValidationError:
        artifact = None
    if artifact is None or not artifact.digest:
        raise CliError(f"{ref.kind} '{ns}/{ref.name}' has no artifact yet", ERROR)
    return artifact


def renderer(bus: Bus) -> Renderer:
    """A renderer with the service's defaults (strict substitution)."""
    return Renderer(bus, Builder(cache=RenderCache(16)))


@contextlib.asynccontextmanager
async def target(
    bus: Bus, obj: Kustomization, kubeconfig: str | None
) -> AsyncIterator[ClusterPort]:
    """Yield the cluster `obj` applies to: the remote one of its kubeConfig Secret,
    else the one of `kubeconfig` / `$KUBECONFIG`."""
    try:
        local = await Cluster.connect(kubeconfig)
    except ClusterError as e:
        raise CliError(str(e), ERROR) from None
    pool = ClusterPool(local, bus)
    try:
        async with pool.lease(obj) as cluster:
            account = obj.spec.service_account_name
            ns = obj.metadata.namespace
            yield cluster.as_user(f"system:serviceaccount:{ns}:{account}") if account else cluster
    except ReconcileError as e:
        raise CliError(e.message, ERROR) from None
    finally:
        await pool.close()
        await local.close()
