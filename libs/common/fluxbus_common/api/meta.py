"""Shared pieces of every API object: model bases, ObjectMeta, references,
the `Duration` string type, Artifact, the common status and the object bases.

Field names are snake_case in Python and camelCase on the wire
(`alias_generator=to_camel`); both spellings are accepted on input. Spec
models forbid unknown fields (Flux's API server rejects them); metadata and
status models keep unknown fields so nothing written by another tool is lost.

Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from fluxbus_common.conditions import Condition
from fluxbus_common.duration import parse_duration, parse_duration_ns
from fluxbus_common.subjects import object_key

__all__ = [
    "AccessFrom",
    "Artifact",
    "CrossNamespaceObjectReference",
    "CrossNamespaceSourceReference",
    "Duration",
    "InvalidObject",
    "KubeConfigReference",
    "KubeObject",
    "LabelSelector",
    "LabelSelectorRequirement",
    "LocalObjectReference",
    "LooseModel",
    "NamespaceSelector",
    "NamespacedObjectKindReference",
    "NamespacedObjectReference",
    "ObjectMeta",
    "ObjectStatus",
    "OwnerReference",
    "SecretKeyReference",
    "SpecModel",
    "ToolkitObject",
    "UnknownKind",
    "seconds",
]


class InvalidObject(ValueError):
    """An API object (or a file of them) failed validation.

    `str()` is the user-facing message, e.g.
    `apps.yaml: document 2: spec.interval: invalid duration "5 minutes"`;
    `errors` holds the (field path, reason) pairs behind it.
    """

    def __init__(self, message: str, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors if errors is not None else []

    def __str__(self) -> str:
        return self.message


class UnknownKind(LookupError):
    """A kind name, or an apiVersion/kind pair, that fluxbus does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown kind"


def _check_duration(value: str) -> str:
    # Flux's CRDs only admit non-negative durations (pattern ^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$).
    if parse_duration_ns(value) < 0:
        raise ValueError(f'invalid duration "{value}": must not be negative')
    return value


Duration = Annotated[str, AfterValidator(_check_duration)]
"""A Go duration string (`5m`, `1m30s`), kept as written so round-trips are exact."""


def seconds(value: str | None, default: float) -> float:
    """Return a validated Duration in seconds, or `default` when it is unset."""
    return default if value is None else parse_duration(value)


class SpecModel(BaseModel):
    """Base of desired-state models: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid"
    )


class LooseModel(BaseModel):
    """Base of metadata and status models: camelCase aliases, unknown fields kept."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="allow"
    )


# -- references (fluxcd/pkg/apis/meta and friends) ---------------------------------------------


class LocalObjectReference(SpecModel):
    """A reference to an object in the same namespace."""

    name: str


class NamespacedObjectReference(SpecModel):
    """A reference to an object in any namespace (the referrer's when unset)."""

    name: str
    namespace: str | None = None


class NamespacedObjectKindReference(SpecModel):
    """A typed reference to an object in any namespace (Kustomization healthChecks)."""

    api_version: str | None = None
    kind: str
    name: str
    namespace: str | None = None


class SecretKeyReference(SpecModel):
    """A Secret in the same namespace and optionally one key of it."""

    name: str
    key: str | None = None


class CrossNamespaceSourceReference(SpecModel):
    """A reference to a source object (GitRepository, …), possibly in another namespace."""

    api_version: str | None = None
    kind: Literal["GitRepository", "OCIRepository", "Bucket", "ExternalArtifact"]
    name: str
    namespace: str | None = None


class CrossNamespaceObjectReference(SpecModel):
    """A reference used by Alert event sources and Receiver resources.

    `name` may be `*` (all objects of the kind, optionally narrowed by
    `matchLabels`); `namespace` may be `*` together with name `*`.
    """

    api_version: str | None = None
    kind: Literal[
        "Bucket",
        "GitRepository",
        "Kustomization",
        "HelmRelease",
        "HelmChart",
        "HelmRepository",
        "ImageRepository",
        "ImagePolicy",
        "ImageUpdateAutomation",
        "OCIRepository",
        "ArtifactGenerator",
        "ExternalArtifact",
    ]
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(default=None, min_length=1, max_length=253)
    match_labels: dict[str, str] | None = None


class KubeConfigReference(SpecModel):
    """How to reach a remote cluster: a kubeconfig Secret or a cloud provider."""

    provider: Literal["aws", "azure", "gcp", "generic"] | None = None
    cluster: str | None = None
    address: str | None = None
    service_account_name: str | None = None
    secret_ref: SecretKeyReference | None = None


class LabelSelectorRequirement(SpecModel):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


class LabelSelector(SpecModel):
    """A Kubernetes label selector (matchLabels AND matchExpressions)."""

    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class NamespaceSelector(SpecModel):
    match_labels: dict[str, str] | None = None


class AccessFrom(SpecModel):
    """An ACL of namespaces (by labels) allowed to reference an object."""

    namespace_selectors: list[NamespaceSelector]


# -- metadata ---------------------------------------------------------------------------------

# RFC 1123: names are DNS subdomains (Kubernetes' rule for every kind here), namespaces labels.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_MAX_NAME = 253
_MAX_NAMESPACE = 63


def _check_name(value: str) -> str:
    if len(value) > _MAX_NAME or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            f'invalid name "{value}": must be a lowercase RFC 1123 subdomain '
            "(a-z, 0-9, '-', '.', at most 253 characters)"
        )
    return value


def _check_namespace(value: str) -> str:
    if len(value) > _MAX_NAMESPACE or not _DNS_LABEL.match(value):
        raise ValueError(
            f'invalid namespace "{value}": must be a lowercase RFC 1123 label '
            "(a-z, 0-9, '-', at most 63 characters)"
        )
    return value


class OwnerReference(LooseModel):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(LooseModel):
    """Kubernetes object metadata.

    `namespace` reads as "default" when the manifest leaves it out (as kubectl
    does without a context namespace); it is only dumped when it was given.
    """

    name: Annotated[str, AfterValidator(_check_name)]
    namespace: Annotated[str, AfterValidator(_check_namespace)] = "default"
    generate_name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int = 0
    uid: str | None = None
    resource_version: str | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    finalizers: list[str] = Field(default_factory=list)
    owner_references: list[OwnerReference] = Field(default_factory=list)
    managed_fields: list[dict[str, Any]] | None = None


# -- status -----------------------------------------------------------------------------------


class Artifact(LooseModel):
    """The output of a source reconciliation (fluxcd/pkg/apis/meta Artifact)."""

    path: str
    url: str
    revision: str | None = None
    digest: str | None = None
    last_update_time: str | None = None
    size: int | None = None
    metadata: dict[str, str] | None = None


class ObjectStatus(LooseModel):
    """What every toolkit status has: observedGeneration, conditions and the
    handled reconcile request (Flux's ReconcileRequestStatus)."""

    observed_generation: int = 0
    conditions: list[Condition] = Field(default_factory=list)
    last_handled_reconcile_at: str | None = None


# -- objects ----------------------------------------------------------------------------------


class KubeObject(BaseModel):
    """Base of every API object: apiVersion, kind and metadata."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid"
    )

    api_version: str
    kind: str
    metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def key(self) -> str:
        """The object's key in the objects bucket: `<kind lower>.<namespace>.<name>`."""
        return object_key(self.kind, self.metadata.namespace, self.metadata.name)

    @property
    def store_key(self) -> str:
        """The key under which the object is stored in its bucket (see KindInfo.store)."""
        return self.key


SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=ObjectStatus)


class ToolkitObject(KubeObject, Generic[SpecT, StatusT]):
    """A GitOps Toolkit object: metadata, a spec and a status."""

    spec: SpecT
    status: StatusT

    @property
    def suspended(self) -> bool:
        """Whether `spec.suspend` is true (False for kinds without it)."""
        return bool(getattr(self.spec, "suspend", False))
