"""Admission: what the API server checks and fills in before it stores an object.

Type-meta checks, field validation (Strict / Warn / Ignore), defaulting,
object validation (names, labels, workload selectors, CRD schemas) and the
fields an existing object may not change.

Pure: no I/O.
"""

from __future__ import annotations

import base64
from typing import Any

from fluxbus_common.selectors import parse_label_selector, selector_string

from . import errors
from .crdvalidation import default_object
from .crdvalidation import validate_object as validate_custom_resource
from .registry import Registry
from .resources import CRD_KEY, NS_KEY, ResourceType
from .schema import drop_unknown, type_errors, unknown_fields
from .validation import Causes, validate_annotations, validate_labels, validate_name

APPS_WORKLOADS = {
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
}

#: StatefulSet spec fields an update may change (all others are forbidden)
STATEFULSET_MUTABLE = {
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
}


def check_type_meta(registry: Registry, rt: ResourceType, body: dict[str, Any]) -> None:
    """Refuse a body whose apiVersion or kind is not rt's (another served version of the
    group passes).

    Raises ApiError (400).
    """
    av, kind = body.get("apiVersion"), body.get("kind")
    if av and av != rt.api_version:
        if registry.type_for_kind(av, kind or "") is None or av.rpartition("/")[0] != rt.group:
            raise errors.bad_request(
                f"the API version in the data ({av}) does not match the expected API "
                f"version ({rt.api_version})"
            )
    if kind and kind != rt.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )


def check_fields(
    rt: ResourceType,
    obj: dict[str, Any],
    field_validation: str,
    warnings: list[str],
    apply: bool,
) -> dict[str, Any]:
    """obj without the fields rt's schema does not declare.

    fieldValidation Strict rejects unknown fields, Warn appends to warnings, Ignore
    drops them silently. Raises ApiError (400) for a wrong type or, under Strict,
    an unknown field; apply picks the server-side apply wording.
    """
    shape = rt.shape()
    if rt.crd is None:
        wrong = type_errors(obj, shape)
        if wrong:
            if apply:
                gvk = f"{rt.api_version}, Kind={rt.kind}"
                if not rt.group:
                    gvk = f"/{gvk}"
                raise errors.bad_request(
                    f"failed to create typed patch object ({gvk}): " + "; ".join(wrong)
                )
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                + "; ".join(wrong)
            )
    unknown = unknown_fields(obj, shape)
    if not unknown:
        return obj
    if field_validation == "Strict":
        if apply:
            gvk = f"{rt.api_version}, Kind={rt.kind}"
            if not rt.group:
                gvk = f"/{gvk}"
            msg = "; ".join(f".{u}: field not declared in schema" for u in unknown)
            raise errors.bad_request(f"failed to create typed patch object ({gvk}): {msg}")
        raise errors.bad_request(
            "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
        )
    if field_validation == "Warn":
        warnings.extend(f'unknown field "{u}"' for u in unknown)
    # drop_unknown maps an object to an object
    pruned: dict[str, Any] = drop_unknown(obj, shape)
    return pruned


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Admit obj (replacing old, None on create) or raise ApiError (422 Invalid)."""
    md = obj.get("metadata") or {}
    name = md.get("name", "")
    causes: list[tuple[str, str]] = []
    if old is None:
        causes.extend(validate_name(name, rt.kind))
    causes.extend(validate_labels(md.get("labels")))
    causes.extend(validate_annotations(md.get("annotations")))
    if (rt.group, rt.kind) in APPS_WORKLOADS:
        causes.extend(_validate_workload(obj, old))
    if rt.crd is not None:
        causes.extend(validate_custom_resource(obj, rt.crd_schema))
    if old is not None:
        causes.extend(immutable_fields(rt, obj, old))
    if rt.key == CRD_KEY:
        spec = obj.get("spec") or {}
        want = f"{(spec.get('names') or {}).get('plural', '')}.{spec.get('group', '')}"
        if name != want:
            causes.append(
                (
                    "metadata.name",
                    f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                )
            )
    if causes:
        raise errors.invalid(rt.kind, rt.group, name, causes)


def _validate_workload(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    causes: Causes = []
    spec = obj.get("spec") or {}
    sel = spec.get("selector")
    if not sel:
        causes.append(("spec.selector", "Required value"))
    else:
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not parse_label_selector(selector_string(sel))(labels):
            causes.append(
                (
                    "spec.template.metadata.labels",
                    f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`",
                )
            )
    if old is not None:
        old_sel = (old.get("spec") or {}).get("selector")
        if old_sel != sel:
            causes.append(
                ("spec.selector", f"Invalid value: {_go_selector(sel)}: field is immutable")
            )
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers")
    if isinstance(containers, list):
        for i, c in enumerate(containers):
            if isinstance(c, dict) and not c.get("image"):
                causes.append((f"spec.template.spec.containers[{i}].image", "Required value"))
    return causes


def immutable_fields(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any]) -> Causes:
    """Changes the API server refuses once an object exists (what Flux's force recreates)."""
    spec, ospec = obj.get("spec") or {}, old.get("spec") or {}
    if rt.key in (("", "configmaps"), ("", "secrets")) and old.get("immutable"):
        out: Causes = []
        for f in ("data", "binaryData"):
            if obj.get(f) != old.get(f):
                out.append((f, "Forbidden: field is immutable when `immutable` is set"))
        if not obj.get("immutable"):
            out.append(("immutable", "Forbidden: field is immutable when `immutable` is set"))
        return out
    if rt.key == ("batch", "jobs") and spec.get("template") != ospec.get("template"):
        return [("spec.template", "Invalid value: core.PodTemplateSpec{...}: field is immutable")]
    if rt.key == ("apps", "statefulsets"):
        changed = {k for k in {**spec, **ospec} if spec.get(k) != ospec.get(k)}
        if changed - STATEFULSET_MUTABLE:
            return [
                (
                    "spec",
                    "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                    "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
                    "and 'minReadySeconds' are forbidden",
                )
            ]
    if rt.key == ("", "persistentvolumeclaims"):
        a = {k: v for k, v in spec.items() if k not in ("resources", "volumeAttributesClassName")}
        b = {k: v for k, v in ospec.items() if k not in ("resources", "volumeAttributesClassName")}
        if a != b:
            return [
                (
                    "spec",
                    "Forbidden: spec is immutable after creation except resources.requests and "
                    "volumeAttributesClassName for bound claims",
                )
            ]
    if rt.key == ("", "services"):
        old_ip, new_ip = ospec.get("clusterIP"), spec.get("clusterIP")
        if old_ip and new_ip and old_ip != new_ip:
            return [
                (
                    "spec.clusterIPs[0]",
                    f'Invalid value: []string{{"{new_ip}"}}: may not change once set',
                )
            ]
    return []


def set_defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Fill in, in place, the defaults the API server gives obj."""
    if rt.crd is not None and rt.crd_schema:
        obj.update(default_object(obj, rt.crd_schema))
    spec = obj.get("spec")
    if (rt.group, rt.kind) in APPS_WORKLOADS and rt.kind != "DaemonSet":
        if isinstance(spec, dict) and "replicas" not in spec:
            spec["replicas"] = 1
    if rt.key == ("", "secrets") and "stringData" in obj:
        data = dict(obj.get("data") or {})
        for k, v in (obj.pop("stringData") or {}).items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data
    if rt.key == ("", "secrets"):
        obj.setdefault("type", "Opaque")
    if rt.key == ("", "services") and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
    if rt.key == NS_KEY:
        md = obj["metadata"]
        md["labels"] = {**(md.get("labels") or {}), "kubernetes.io/metadata.name": md["name"]}
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    if rt.key == ("", "services") and isinstance(spec, dict):
        for p in spec.get("ports") or []:
            if isinstance(p, dict) and "port" in p:
                p.setdefault("targetPort", p["port"])
    if rt.key == ("apps", "deployments") and isinstance(spec, dict):
        strategy = spec.setdefault("strategy", {})
        if isinstance(strategy, dict):
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                ru = strategy.setdefault("rollingUpdate", {})
                if isinstance(ru, dict):
                    ru.setdefault("maxUnavailable", "25%")
                    ru.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
    if isinstance(spec, dict):
        pod = (spec.get("template") or {}).get("spec") if "template" in spec else None
        if rt.key == ("", "pods"):
            pod = spec
        if rt.key == ("batch", "cronjobs"):
            job = (spec.get("jobTemplate") or {}).get("spec") or {}
            pod = (job.get("template") or {}).get("spec")
        if isinstance(pod, dict):
            _pod_defaults(pod, batch=rt.group == "batch")


def _pod_defaults(pod: dict[str, Any], batch: bool) -> None:
    """The defaults the API server gives a pod spec and its containers."""
    if not batch:
        pod.setdefault("restartPolicy", "Always")
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("schedulerName", "default-scheduler")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("securityContext", {})
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        if not isinstance(c, dict):
            continue
        image = str(c.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")


def _go_map(m: dict[str, Any]) -> str:
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(m.items()))
    return "map[string]string{" + inner + "}"


def _go_selector(sel: Any) -> str:
    sel = sel or {}
    ml = sel.get("matchLabels")
    mls = _go_map(ml) if ml else "map[string]string(nil)"
    return f"v1.LabelSelector{{MatchLabels:{mls}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}"
