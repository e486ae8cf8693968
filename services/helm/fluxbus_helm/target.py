"""How a HelmRelease reaches its cluster, as a `fluxbus_helmsdk.KubeTarget`: the
service's own cluster (its kubeconfig, else KUBECONFIG, else in-cluster), or
the kubeconfig in the Secret named by `spec.kubeConfig.secretRef` (key
`value` or `value.yaml`, or the key named), impersonating
`system:serviceaccount:<ns>:<serviceAccountName>` when one is named (or the
configured default). The kubeconfig never appears in an error or a log.
"""

from __future__ import annotations

import yaml

from fluxbus_common.api import Secret
from fluxbus_common.api.helm import HelmRelease
from fluxbus_common.errors import Generic
from fluxbus_common.ports import BusError, SecretReader
from fluxbus_common.safeyaml import load as load_yaml
from fluxbus_helm.logic.reasons import HelmReason
from fluxbus_helmsdk import KubeTarget

KUBECONFIG_KEYS = ("value", "value.yaml")
"""Where Flux looks for the kubeconfig in the Secret when no key is named."""


class Targets:
    """Builds the KubeTarget of each HelmRelease."""

    def __init__(
        self,
        secrets: SecretReader,
        *,
        kubeconfig_path: str | None = None,
        default_service_account: str | None = None,
    ) -> None:
        self.secrets = secrets
        self.local = KubeTarget(kubeconfig_path=kubeconfig_path)
        self.default_service_account = default_service_account

    def account(self, obj: HelmRelease) -> str | None:
        """The impersonated user of `obj`, or None (the service's own identity)."""
        name = obj.spec.service_account_name or self.default_service_account
        return f"system:serviceaccount:{obj.metadata.namespace}:{name}" if name else None

    async def target(self, obj: HelmRelease) -> KubeTarget:
        """Return the KubeTarget of `obj`. Raises Generic when the kubeConfig Secret
        is missing or unusable."""
        user = self.account(obj)
        ref = obj.spec.kube_config.secret_ref if obj.spec.kube_config else None
        if ref is None:
            return KubeTarget(kubeconfig_path=self.local.kubeconfig_path, as_user=user)
        ns = obj.metadata.namespace
        what = f"could not get KubeConfig secret '{ns}/{ref.name}'"
        try:
            doc = await self.secrets.get_secret(ns, ref.name)
        except BusError as e:
            raise Generic(f"{what}: {e}", HelmReason.INIT_FAILED) from e
        if doc is None:
            raise Generic(f"{what}: not found", HelmReason.INIT_FAILED)
        values = Secret.model_validate(doc).text()
        wanted = (ref.key,) if ref.key else KUBECONFIG_KEYS
        text = next((values[k] for k in wanted if k in values), None)
        if text is None:
            raise Generic(f"{what}: no key {' or '.join(wanted)}", HelmReason.INIT_FAILED)
        try:
            parsed = load_yaml(text)
        except (yaml.YAMLError, ValueError):
            parsed = None
        if not isinstance(parsed, dict):
            raise Generic(f"{what}: not a kubeconfig", HelmReason.INIT_FAILED)
        return KubeTarget(kubeconfig=text, as_user=user)
