"""The resource types kubelite serves: built-in kinds and those CRDs define.

Pure: no I/O (schemas are loaded lazily through `schema`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .schema import Shape, builtin_shape, crd_shape

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

#: storage keys (group, plural) the API machinery and the controllers single out
NS_KEY = ("", "namespaces")
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")


@dataclass(eq=False)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    status: bool = False
    scale: bool = False
    generation: bool = False
    crd: str | None = None  # name of the defining CRD
    virtual: bool = False  # create-only review resources, never stored
    crd_schema: dict[str, Any] | None = None
    scale_paths: tuple[str, str, str | None] = (".spec.replicas", ".status.replicas", None)
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    _shape: Shape | None = None

    def __post_init__(self) -> None:
        if not self.singular:
            self.singular = self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: every version of a group/resource shares one store."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def present(self, obj: dict[str, Any]) -> dict[str, Any]:
        """obj as served through this version (the versions of a CR share one store)."""
        if obj.get("apiVersion") == self.api_version and obj.get("kind") == self.kind:
            return obj
        return {**obj, "apiVersion": self.api_version, "kind": self.kind}

    def shape(self) -> Shape:
        if self._shape is None:
            if self.crd is not None:
                self._shape = crd_shape(self.crd_schema)
            else:
                self._shape = builtin_shape(self.group, self.version, self.kind) or crd_shape(None)
        return self._shape


def _b(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    scale: bool = False,
    generation: bool = False,
    categories: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        short_names=list(short),
        categories=list(categories),
        status=status,
        scale=scale,
        generation=generation,
    )


def _virtual(group: str, plural: str, kind: str) -> ResourceType:
    return ResourceType(
        group=group, version="v1", plural=plural, kind=kind, namespaced=False, virtual=True
    )


def review_status(rt: ResourceType, body: dict[str, Any]) -> dict[str, Any]:
    """The answer of a review resource: kubelite allows everything to everyone."""
    out = {**body, "apiVersion": rt.api_version, "kind": rt.kind}
    out.setdefault("metadata", {})
    if rt.plural == "selfsubjectreviews":
        out["status"] = {
            "userInfo": {
                "username": "kubelite-admin",
                "groups": ["system:masters", "system:authenticated"],
            }
        }
    elif rt.plural == "selfsubjectrulesreviews":
        out["status"] = {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        }
    else:
        out["status"] = {"allowed": True, "reason": "kubelite allows every request"}
    return out


def builtin_types() -> list[ResourceType]:
    """The built-in kinds kubelite serves."""
    a = ("all",)
    return [
        _b("", "v1", "namespaces", "Namespace", False, ("ns",), status=True),
        _b("", "v1", "configmaps", "ConfigMap", short=("cm",)),
        _b("", "v1", "secrets", "Secret"),
        _b("", "v1", "services", "Service", short=("svc",), status=True, categories=a),
        _b("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
        _b("", "v1", "pods", "Pod", short=("po",), status=True, categories=a),
        _b(
            "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True
        ),
        _b("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",), status=True),
        _b("", "v1", "events", "Event", short=("ev",)),
        _b("", "v1", "endpoints", "Endpoints", short=("ep",)),
        _b("", "v1", "limitranges", "LimitRange", short=("limits",)),
        _b("", "v1", "resourcequotas", "ResourceQuota", short=("quota",), status=True),
        _b("", "v1", "nodes", "Node", False, ("no",), status=True),
        _b(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            short=("deploy",),
            status=True,
            scale=True,
            generation=True,
            categories=a,
        ),
        _b(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            short=("sts",),
            status=True,
            scale=True,
            generation=True,
            categories=a,
        ),
        _b(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            short=("ds",),
            status=True,
            generation=True,
            categories=a,
        ),
        _b(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            short=("rs",),
            status=True,
            scale=True,
            generation=True,
            categories=a,
        ),
        _b("apps", "v1", "controllerrevisions", "ControllerRevision"),
        _b("batch", "v1", "jobs", "Job", status=True, generation=True, categories=a),
        _b(
            "batch",
            "v1",
            "cronjobs",
            "CronJob",
            short=("cj",),
            status=True,
            generation=True,
            categories=a,
        ),
        _b(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            short=("ing",),
            status=True,
            generation=True,
        ),
        _b("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
        _b(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
            short=("netpol",),
            generation=True,
        ),
        _b(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            short=("hpa",),
            status=True,
            generation=True,
            categories=a,
        ),
        _b(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            short=("pdb",),
            status=True,
            generation=True,
        ),
        _b("rbac.authorization.k8s.io", "v1", "roles", "Role"),
        _b("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
        _b("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
        _b("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        _b("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
        _b("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",)),
        _b("coordination.k8s.io", "v1", "leases", "Lease"),
        _b("events.k8s.io", "v1", "events", "Event", short=("ev",)),
        _virtual("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
        _virtual("authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
        _virtual("authorization.k8s.io", "subjectaccessreviews", "SubjectAccessReview"),
        _virtual("authentication.k8s.io", "selfsubjectreviews", "SelfSubjectReview"),
        _b(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            ("crd", "crds"),
            status=True,
            generation=True,
            categories=("api-extensions",),
        ),
    ]


def crd_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types (one per served version) a CRD defines."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        sub = v.get("subresources") or {}
        scale = sub.get("scale")
        rt = ResourceType(
            group=spec.get("group", ""),
            version=v["name"],
            plural=names.get("plural", ""),
            kind=names.get("kind", ""),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular") or names.get("kind", "").lower(),
            short_names=list(names.get("shortNames") or []),
            categories=list(names.get("categories") or []),
            status="status" in sub,
            scale=scale is not None,
            generation=True,
            crd=crd["metadata"]["name"],
            crd_schema=(v.get("schema") or {}).get("openAPIV3Schema"),
            printer_columns=list(v.get("additionalPrinterColumns") or []),
        )
        if scale:
            rt.scale_paths = (
                scale.get("specReplicasPath", ".spec.replicas"),
                scale.get("statusReplicasPath", ".status.replicas"),
                scale.get("labelSelectorPath"),
            )
        out.append(rt)
    return out
