"""Reading a HelmRepository's credentials from the store, shared by the HelmRepository
and HelmChart reconcilers (Flux's `GetClientOpts`): the Secrets of `spec.secretRef`
and `spec.certSecretRef`, and for `type: oci` the registry login.

A missing or unusable Secret is `Generic(AuthenticationFailed)`; no message holds a value.
"""

from __future__ import annotations

import structlog

from fluxbus_common.api import Secret
from fluxbus_common.api.helm import HelmRepository
from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic, Stalling
from fluxbus_common.ports import SecretReader
from fluxbus_helmsdk import RegistryAuth
from fluxbus_source.logic.helmauth import (
    CredentialsError,
    HelmCredentials,
    docker_config_login,
    helm_credentials,
)

log = structlog.get_logger("fluxbus.source")


async def secret_data(store: SecretReader, namespace: str, name: str) -> dict[str, bytes]:
    """The decoded data of a Secret; raises Generic(AuthenticationFailed) when absent or invalid."""
    doc = await store.get_secret(namespace, name)
    if doc is None:
        raise Generic(
            f"failed to get authentication secret '{namespace}/{name}': secret not found",
            Reason.AUTHENTICATION_FAILED,
        )
    try:
        return Secret.model_validate(doc).decoded()
    except ValueError:
        raise Generic(
            f"failed to get authentication secret '{namespace}/{name}': invalid Secret",
            Reason.AUTHENTICATION_FAILED,
        ) from None


async def repository_credentials(
    store: SecretReader, repo: HelmRepository
) -> HelmCredentials | None:
    """Basic auth and TLS for an HTTP(S) HelmRepository (None: anonymous, system roots)."""
    ns, spec = repo.metadata.namespace, repo.spec
    auth = certs = None
    if spec.secret_ref is not None:
        auth = await secret_data(store, ns, spec.secret_ref.name)
    if spec.cert_secret_ref is not None:
        certs = await secret_data(store, ns, spec.cert_secret_ref.name)
    try:
        creds = helm_credentials(
            auth,
            spec.secret_ref.name if spec.secret_ref else None,
            certs,
            spec.cert_secret_ref.name if spec.cert_secret_ref else None,
        )
    except CredentialsError as e:
        raise Generic(str(e), Reason.AUTHENTICATION_FAILED) from None
    if creds is not None and creds.deprecated_tls:
        log.info(
            "helmrepository.deprecated_tls_secret",
            hint="specifying TLS data via spec.secretRef is deprecated, use spec.certSecretRef",
        )
    return creds


async def registry_auth(store: SecretReader, repo: HelmRepository) -> RegistryAuth:
    """Registry login of an OCI HelmRepository: `username`/`password` or a Docker config
    Secret's entry for the registry host, TLS material from `certSecretRef`
    (`ca.crt`, `tls.crt`, `tls.key`); `insecure` allows plain HTTP. A cloud
    `provider` stalls: fluxbus has no cloud identities to log in with."""
    spec = repo.spec
    if spec.provider not in (None, "generic"):
        raise Stalling(
            f"HelmRepository '{repo.metadata.name}': spec.provider '{spec.provider}' "
            "(cloud identity) is not supported by fluxbus; use spec.secretRef",
            Reason.AUTHENTICATION_FAILED,
        )
    username = password = None
    if spec.secret_ref is not None:
        name = spec.secret_ref.name
        data = await secret_data(store, repo.metadata.namespace, name)
        try:
            login = docker_config_login(data, spec.url, name)
        except CredentialsError as e:
            raise Generic(str(e), Reason.AUTHENTICATION_FAILED) from None
        if login is not None:
            username, password = login
        elif "username" in data:
            username = data["username"].decode(errors="replace")
            password = data.get("password", b"").decode(errors="replace")
    ca = cert = key = None
    if spec.cert_secret_ref is not None:
        certs_name = spec.cert_secret_ref.name
        certs = await secret_data(store, repo.metadata.namespace, certs_name)
        try:
            tls = helm_credentials(None, None, certs, certs_name)
        except CredentialsError as e:
            raise Generic(str(e), Reason.AUTHENTICATION_FAILED) from None
        if tls is not None:
            ca, cert, key = (_pem(v) for v in (tls.ca, tls.cert, tls.key))
    # Flux's `insecure` for OCI means plain HTTP, not skipping TLS verification
    return RegistryAuth(
        username=username,
        password=password,
        plain_http=spec.insecure,
        ca_pem=ca,
        cert_pem=cert,
        key_pem=key,
    )


def _pem(value: bytes | None) -> str | None:
    return None if value is None else value.decode("ascii", "replace")
