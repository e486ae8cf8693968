"""Builders shared by the notifier tests: Providers, Alerts and events as Flux writes them."""

from __future__ import annotations

from typing import Any

from fluxbus_common.api.notification import Alert, Provider
from fluxbus_common.events import Event


def make_provider(type_: str, address: str | None = None, **spec: Any) -> Provider:
    """A Provider `notify` in `flux-system` (uid `0c9c2e41-…`) of `type_`."""
    doc: dict[str, Any] = {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Provider",
        "metadata": {
            "name": "notify",
            "namespace": "flux-system",
            "uid": "0c9c2e41-1f2b-4c3d-9e8f-a0b1c2d3e4f5",
        },
        "spec": {"type": type_, **spec},
    }
    if address is not None:
        doc["spec"]["address"] = address
    return Provider.model_validate(doc)


def make_alert(**spec: Any) -> Alert:
    """An Alert `on-call` in `flux-system`; `spec` in camelCase, eventSources defaulted."""
    spec.setdefault("providerRef", {"name": "notify"})
    spec.setdefault("eventSources", [{"kind": "Kustomization", "name": "*"}])
    return Alert.model_validate(
        {
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
            "kind": "Alert",
            "metadata": {"name": "on-call", "namespace": "flux-system"},
            "spec": spec,
        }
    )


def make_event(
    *,
    kind: str = "Kustomization",
    name: str = "apps",
    namespace: str = "flux-system",
    severity: str = "info",
    reason: str = "ReconciliationSucceeded",
    message: str = "Applied revision: main@sha1:5394cb7f48332b2de7c17dd8b8384bbc84b7e738",
    metadata: dict[str, str] | None = None,
    api_version: str | None = "kustomize.toolkit.fluxcd.io/v1",
) -> Event:
    """An event about `kind/namespace/name` from kustomize-controller."""
    return Event.model_validate(
        {
            "involvedObject": {
                "kind": kind,
                "namespace": namespace,
                "name": name,
                "apiVersion": api_version,
                "uid": "7d0cdc51-ddcf-4743-b223-83ca5c699632",
            },
            "severity": severity,
            "timestamp": "2024-10-28T07:26:19Z",
            "message": message,
            "reason": reason,
            "metadata": metadata or {},
            "reportingController": "kustomize-controller",
            "reportingInstance": "kustomize-controller-7c7b47f5f-8bhrp",
        }
    )
