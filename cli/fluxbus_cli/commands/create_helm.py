"""`fluxbus create source helm` and `fluxbus create helmrelease`: Flux's flags,
Flux's checks and the manifests `flux create … --export` prints (storing and
waiting are `commands.create`'s, as for the other kinds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fluxbus_cli.commands.create import DEFAULT_INTERVAL, interval_text, validated
from fluxbus_cli.commands.receiver import split_values
from fluxbus_cli.errors import CliError
from fluxbus_cli.manifests import check_namespace
from fluxbus_common.api import HelmRelease, HelmRepository
from fluxbus_common.api.compat import not_served_message
from fluxbus_common.duration import format_duration, parse_duration
from fluxbus_helm.logic.values import ValuesFormatError, merge_maps
from fluxbus_helm.logic.values import read_values as parse_values

HELM_URL_SCHEMES = ("http", "https", "oci")
CHART_SOURCE_KINDS = ("HelmRepository", "GitRepository", "Bucket")
"""What `flux create hr --source` accepts (fluxbus serves the first two)."""
CHART_REF_KINDS = ("OCIRepository", "HelmChart")
"""What `flux create hr --chart-ref` accepts (fluxbus serves HelmChart)."""
VALUES_FROM_KINDS = ("Secret", "ConfigMap")
RECONCILE_STRATEGIES = ("ChartVersion", "Revision")
CRDS_POLICIES = ("Skip", "Create", "CreateReplace")


@dataclass(frozen=True)
class HelmSourceRequest:
    """`flux create source helm NAME` flags."""

    name: str
    namespace: str
    url: str
    secret_ref: str = ""
    pass_credentials: bool = False
    interval: str = DEFAULT_INTERVAL
    timeout: str = ""


def helm_source_document(req: HelmSourceRequest) -> dict[str, Any]:
    """The HelmRepository manifest; raise CliError as `flux create source helm` refuses
    (no URL, a scheme other than http/https/oci, no host). An `oci://` URL makes an
    OCI HelmRepository (`type: oci`)."""
    check_namespace(req.namespace)
    if not req.url:
        raise CliError("url is required")
    parts = urlsplit(req.url)
    if parts.scheme not in HELM_URL_SCHEMES:
        raise CliError(f"url scheme '{parts.scheme}' not supported, can be: http, https and oci")
    if not parts.hostname:
        raise CliError("url host is required")
    spec: dict[str, Any] = {"interval": interval_text(req.interval)}
    if req.pass_credentials and req.secret_ref:
        spec["passCredentials"] = True
    if req.secret_ref:
        spec["secretRef"] = {"name": req.secret_ref}
    if req.timeout:
        spec["timeout"] = _duration(req.timeout, "--timeout")
    if parts.scheme == "oci":
        spec["type"] = "oci"
    spec["url"] = req.url
    doc = {
        "apiVersion": HelmRepository.model_fields["api_version"].default,
        "kind": "HelmRepository",
        "metadata": {"name": req.name, "namespace": req.namespace},
        "spec": spec,
    }
    return validated(doc, "HelmRepository")


@dataclass(frozen=True)
class HelmReleaseRequest:
    """`flux create helmrelease NAME` flags."""

    name: str
    namespace: str
    source: str = ""
    chart: str = ""
    chart_version: str = ""
    chart_ref: str = ""
    release_name: str = ""
    target_namespace: str = ""
    storage_namespace: str = ""
    create_target_namespace: bool = False
    depends_on: Sequence[str] = field(default_factory=tuple)
    values_files: Sequence[str] = field(default_factory=tuple)
    values_from: Sequence[str] = field(default_factory=tuple)
    service_account: str = ""
    reconcile_strategy: str = "ChartVersion"
    chart_interval: str = ""
    crds: str = ""
    kubeconfig_secret_ref: str = ""
    interval: str = DEFAULT_INTERVAL


def _duration(value: str, flag: str) -> str:
    try:
        return format_duration(parse_duration(value))
    except ValueError as e:
        raise CliError(f"{flag}: {e}") from None


def _kind_name_namespace(value: str) -> tuple[str, str, str]:
    """Flux's `<kind>/<name>[.<namespace>]` (kind "" when no slash)."""
    kind, sep, rest = value.strip().partition("/")
    if not sep:
        kind, rest = "", kind
    name, _, namespace = rest.partition(".")
    return kind, name, namespace


def _one_of(kind: str, allowed: Sequence[str]) -> str | None:
    return next((k for k in allowed if k.lower() == kind.lower()), None)


def chart_source(value: str) -> dict[str, str]:
    """`--source <kind>/<name>[.<namespace>]` of a chart (HelmRepository or GitRepository)."""
    if not value.strip():
        raise CliError(
            "no helm chart source given, please specify a source in the format "
            f"'<kind>/<name>.<namespace>', where kind must be one of: "
            f"({', '.join(CHART_SOURCE_KINDS)})"
        )
    kind, name, namespace = _kind_name_namespace(value)
    if not kind or not name:
        raise CliError(f"invalid helm chart source '{value}', must be in format <kind>/<name>")
    clean = _one_of(kind, CHART_SOURCE_KINDS)
    if clean is None:
        raise CliError(
            f"source kind '{kind}' is not supported, must be one of: "
            f"{', '.join(CHART_SOURCE_KINDS)}"
        )
    if clean == "Bucket":
        raise CliError(not_served_message("Bucket"))
    ref = {"kind": clean, "name": name}
    if namespace:
        ref["namespace"] = namespace
    return ref


def _chart_ref(value: str) -> dict[str, str]:
    kind, name, namespace = _kind_name_namespace(value)
    clean = _one_of(kind, CHART_REF_KINDS)
    if clean is None or not name:
        raise CliError(
            f"chart reference kind '{kind}' is not supported, must be one of: "
            f"{', '.join(CHART_REF_KINDS)}"
        )
    if clean == "OCIRepository":
        raise CliError(not_served_message("OCIRepository"))
    ref = {"kind": clean, "name": name}
    if namespace:
        ref["namespace"] = namespace
    return ref


def read_values(paths: Sequence[str]) -> dict[str, Any]:
    """Merge the local values files in order (`--values a.yaml,b.yaml`), as the helm
    service merges values (maps merge, anything else replaces)."""
    merged: dict[str, Any] = {}
    for path in split_values(paths):
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise CliError(f"reading values from {path} failed: {e.strerror or e}") from None
        try:
            merged = merge_maps(merged, parse_values(text))
        except ValuesFormatError as e:
            raise CliError(f"converting values from {path} failed: {e}") from None
    return merged


def _values_reference(value: str) -> dict[str, str]:
    kind, sep, name = value.partition("/")
    if not sep or not kind or not name:
        raise CliError(
            f"invalid Kubernetes object reference '{value}', must be in format <kind>/<name>"
        )
    clean = _one_of(kind, VALUES_FROM_KINDS)
    if clean is None:
        raise CliError(
            f"reference kind '{kind}' is not supported, must be one of: "
            f"{', '.join(VALUES_FROM_KINDS)}"
        )
    return {"kind": clean, "name": name}


def _dependency(value: str) -> dict[str, str]:
    namespace, sep, name = value.partition("/")
    return {"name": name, "namespace": namespace} if sep else {"name": value}


def _chart_spec(req: HelmReleaseRequest) -> dict[str, Any]:
    if req.reconcile_strategy not in RECONCILE_STRATEGIES:
        raise CliError(
            f"'{req.reconcile_strategy}' is an invalid reconcile strategy"
            f"(valid: {', '.join(RECONCILE_STRATEGIES)})"
        )
    spec: dict[str, Any] = {"chart": req.chart}
    if req.chart_interval:
        spec["interval"] = _duration(req.chart_interval, "--chart-interval")
    spec["reconcileStrategy"] = req.reconcile_strategy
    spec["sourceRef"] = chart_source(req.source)
    if req.chart_version:
        spec["version"] = req.chart_version
    return {"spec": spec}


def helm_release_document(req: HelmReleaseRequest) -> dict[str, Any]:
    """The HelmRelease manifest; raise CliError as `flux create helmrelease` refuses."""
    check_namespace(req.namespace)
    if not req.chart and not req.chart_ref:
        raise CliError("chart or chart-ref is required")
    if req.chart and req.chart_ref:
        raise CliError("cannot use --chart in combination with --chart-ref")
    spec: dict[str, Any] = {}
    if req.chart:
        spec["chart"] = _chart_spec(req)
    else:
        spec["chartRef"] = _chart_ref(req.chart_ref)
    depends = [_dependency(d) for d in split_values(req.depends_on)]
    if depends:
        spec["dependsOn"] = depends
    if req.create_target_namespace or req.crds:
        install: dict[str, Any] = {}
        if req.crds:
            if req.crds not in CRDS_POLICIES:
                raise CliError(f"--crds must be one of: {', '.join(CRDS_POLICIES)}")
            install["crds"] = "Create"
            spec["upgrade"] = {"crds": req.crds}
        if req.create_target_namespace:
            install["createNamespace"] = True
        spec["install"] = install
    spec["interval"] = interval_text(req.interval)
    if req.kubeconfig_secret_ref:
        spec["kubeConfig"] = {"secretRef": {"name": req.kubeconfig_secret_ref}}
    if req.release_name:
        spec["releaseName"] = req.release_name
    if req.service_account:
        spec["serviceAccountName"] = req.service_account
    storage = req.storage_namespace or req.target_namespace
    if storage:
        spec["storageNamespace"] = check_namespace(storage)
    if req.target_namespace:
        spec["targetNamespace"] = check_namespace(req.target_namespace)
    values = read_values(req.values_files)
    if values:
        spec["values"] = values
    values_from = [_values_reference(v) for v in split_values(req.values_from)]
    if values_from:
        spec["valuesFrom"] = values_from
    doc = {
        "apiVersion": HelmRelease.model_fields["api_version"].default,
        "kind": "HelmRelease",
        "metadata": {"name": req.name, "namespace": req.namespace},
        "spec": spec,
    }
    return validated(doc, "HelmRelease")
