"""`notification.toolkit.fluxcd.io` Provider and Alert (v1beta3) and Receiver (v1).

Defaults follow Flux's getters: Provider timeout 15 s, Receiver interval
10 m, Alert eventSeverity `info`.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field

from fluxbus_common.api.meta import (
    CrossNamespaceObjectReference,
    Duration,
    LocalObjectReference,
    ObjectStatus,
    SpecModel,
    ToolkitObject,
    seconds,
)

__all__ = [
    "DEFAULT_PROVIDER_TIMEOUT",
    "DEFAULT_RECEIVER_INTERVAL",
    "NOTIFICATION_GROUP",
    "RECEIVER_WEBHOOK_PATH",
    "Alert",
    "AlertSpec",
    "AlertStatus",
    "Provider",
    "ProviderSpec",
    "ProviderStatus",
    "ProviderType",
    "Receiver",
    "ReceiverSpec",
    "ReceiverStatus",
    "ReceiverType",
    "webhook_path",
]

NOTIFICATION_GROUP = "notification.toolkit.fluxcd.io"
DEFAULT_PROVIDER_TIMEOUT = 15.0
DEFAULT_RECEIVER_INTERVAL = 600.0
RECEIVER_WEBHOOK_PATH = "/hook/"

ProviderType = Literal[
    "slack",
    "discord",
    "msteams",
    "rocket",
    "generic",
    "generic-hmac",
    "github",
    "gitlab",
    "gitea",
    "bitbucketserver",
    "bitbucket",
    "azuredevops",
    "googlechat",
    "googlepubsub",
    "webex",
    "sentry",
    "azureeventhub",
    "telegram",
    "lark",
    "matrix",
    "opsgenie",
    "alertmanager",
    "grafana",
    "githubdispatch",
    "pagerduty",
    "datadog",
    "nats",
]

ReceiverType = Literal[
    "generic",
    "generic-hmac",
    "github",
    "gitlab",
    "bitbucket",
    "harbor",
    "dockerhub",
    "quay",
    "gcr",
    "nexus",
    "acr",
    "cdevents",
]


class ProviderSpec(SpecModel):
    """Where and how to send alerts (notification-controller api/v1beta3).

    `interval` is deprecated and unused in v1beta3 but still accepted.
    """

    type: ProviderType
    interval: Duration | None = None
    channel: str | None = Field(default=None, max_length=2048)
    username: str | None = Field(default=None, max_length=2048)
    address: str | None = Field(default=None, max_length=2048)
    timeout: Duration | None = None
    proxy: str | None = Field(default=None, max_length=2048, pattern=r"^(http|https)://.*$")
    proxy_secret_ref: LocalObjectReference | None = None
    secret_ref: LocalObjectReference | None = None
    service_account_name: str | None = None
    cert_secret_ref: LocalObjectReference | None = None
    suspend: bool = False
    commit_status_expr: str | None = None

    @property
    def timeout_seconds(self) -> float:
        """`spec.timeout` in seconds; Flux's default is 15 s."""
        return seconds(self.timeout, DEFAULT_PROVIDER_TIMEOUT)


class ProviderStatus(ObjectStatus):
    """Flux's v1beta3 Provider has no status; fluxbus keeps the common fields."""


class Provider(ToolkitObject[ProviderSpec, ProviderStatus]):
    """A notification target (Slack, a generic webhook, a Git host's commit status…)."""

    api_version: Literal["notification.toolkit.fluxcd.io/v1beta3"] = (
        "notification.toolkit.fluxcd.io/v1beta3"
    )
    kind: Literal["Provider"] = "Provider"
    spec: ProviderSpec
    status: ProviderStatus = Field(default_factory=ProviderStatus)


class AlertSpec(SpecModel):
    """Which events go to which Provider (notification-controller api/v1beta3)."""

    provider_ref: LocalObjectReference
    event_severity: Literal["info", "error"] | None = None
    event_sources: list[CrossNamespaceObjectReference]
    inclusion_list: list[str] | None = None
    event_metadata: dict[str, str] | None = None
    exclusion_list: list[str] | None = None
    summary: str | None = Field(default=None, max_length=255)
    suspend: bool = False

    @property
    def effective_event_severity(self) -> str:
        """`spec.eventSeverity`, defaulting to `info` (every event)."""
        return self.event_severity or "info"


class AlertStatus(ObjectStatus):
    """Flux's v1beta3 Alert has no status; fluxbus keeps the common fields."""


class Alert(ToolkitObject[AlertSpec, AlertStatus]):
    """An alerting rule: events from some objects, filtered, sent to a Provider."""

    api_version: Literal["notification.toolkit.fluxcd.io/v1beta3"] = (
        "notification.toolkit.fluxcd.io/v1beta3"
    )
    kind: Literal["Alert"] = "Alert"
    spec: AlertSpec
    status: AlertStatus = Field(default_factory=AlertStatus)


class ReceiverSpec(SpecModel):
    """An incoming webhook that requests reconciles (notification-controller api/v1)."""

    type: ReceiverType
    interval: Duration | None = None
    events: list[str] = Field(default_factory=list)
    resources: list[CrossNamespaceObjectReference]
    resource_filter: str | None = None
    secret_ref: LocalObjectReference
    suspend: bool = False

    @property
    def interval_seconds(self) -> float:
        """`spec.interval` in seconds; Flux's default is 10 m."""
        return seconds(self.interval, DEFAULT_RECEIVER_INTERVAL)


class ReceiverStatus(ObjectStatus):
    webhook_path: str | None = None
    """`/hook/<sha256(token + name + namespace)>`."""


def webhook_path(token: str, name: str, namespace: str) -> str:
    """Return `/hook/<hex sha256(token + name + namespace)>` (Flux's GetWebhookPath)."""
    digest = hashlib.sha256(f"{token}{name}{namespace}".encode()).hexdigest()
    return f"{RECEIVER_WEBHOOK_PATH}{digest}"


class Receiver(ToolkitObject[ReceiverSpec, ReceiverStatus]):
    """A webhook receiver (GitHub, GitLab, a registry…)."""

    api_version: Literal["notification.toolkit.fluxcd.io/v1"] = "notification.toolkit.fluxcd.io/v1"
    kind: Literal["Receiver"] = "Receiver"
    spec: ReceiverSpec
    status: ReceiverStatus = Field(default_factory=ReceiverStatus)

    def webhook_path(self, token: str) -> str:
        """The path this Receiver listens on with `token`."""
        return webhook_path(token, self.metadata.name, self.metadata.namespace)
