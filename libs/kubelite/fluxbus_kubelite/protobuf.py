"""Decode the protobuf bodies kubectl's generators and typed client-go clients send.

kubectl's generators (`create namespace|configmap|secret|serviceaccount|
deployment|service|job|cronjob|ingress|poddisruptionbudget|priorityclass|quota|
role|clusterrole|rolebinding|clusterrolebinding` and `kubectl autoscale`) post `application/vnd.kubernetes.protobuf`: the magic
`k8s\\0`, then a runtime.Unknown {typeMeta, raw}. Typed client-go clients
(Helm's release storage among them) send their core objects that way too, and
a `DeleteOptions` body with every delete, whatever the group (its
apiVersion is `v1` or the resource's group version). This module knows the
field numbers of those few kinds (from k8s.io/api generated.proto) and turns
them into the JSON form; any other kind raises `Unsupported` (answered with
415).

Pure: no I/O.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from typing import Any

MAGIC = b"k8s\x00"


class Unsupported(Exception):
    """A protobuf body kubelite cannot decode."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise Unsupported("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    i = 0
    val: Any
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            val = buf[i : i + n]
            i += n
        elif wt == 1:
            val = int.from_bytes(buf[i : i + 8], "little")
            i += 8
        elif wt == 5:
            val = int.from_bytes(buf[i : i + 4], "little")
            i += 4
        else:
            raise Unsupported(f"wire type {wt}")
        yield num, wt, val


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


Schema = dict[int, tuple[str, str, Any]]

TIME: Schema = {}
INTSTR: Schema = {}
QUANTITY: Schema = {}

OWNER_REF: Schema = {
    1: ("kind", "str", None),
    3: ("name", "str", None),
    4: ("uid", "str", None),
    5: ("apiVersion", "str", None),
    6: ("controller", "boolp", None),
    7: ("blockOwnerDeletion", "boolp", None),
}
OBJECT_META: Schema = {
    1: ("name", "str", None),
    2: ("generateName", "str", None),
    3: ("namespace", "str", None),
    5: ("uid", "str", None),
    6: ("resourceVersion", "str", None),
    7: ("generation", "int", None),
    8: ("creationTimestamp", "time", None),
    11: ("labels", "map", None),
    12: ("annotations", "map", None),
    13: ("ownerReferences", "rmsg", OWNER_REF),
    14: ("finalizers", "rstr", None),
}
SELECTOR_REQ: Schema = {
    1: ("key", "str", None),
    2: ("operator", "str", None),
    3: ("values", "rstr", None),
}
LABEL_SELECTOR: Schema = {
    1: ("matchLabels", "map", None),
    2: ("matchExpressions", "rmsg", SELECTOR_REQ),
}
CONTAINER_PORT: Schema = {
    1: ("name", "str", None),
    2: ("hostPort", "int", None),
    3: ("containerPort", "int", None),
    4: ("protocol", "str", None),
    5: ("hostIP", "str", None),
}
ENV_VAR: Schema = {1: ("name", "str", None), 2: ("value", "str", None)}
RESOURCES: Schema = {1: ("limits", "mapq", None), 2: ("requests", "mapq", None)}
CONTAINER: Schema = {
    1: ("name", "str", None),
    2: ("image", "str", None),
    3: ("command", "rstr", None),
    4: ("args", "rstr", None),
    5: ("workingDir", "str", None),
    6: ("ports", "rmsg", CONTAINER_PORT),
    7: ("env", "rmsg", ENV_VAR),
    8: ("resources", "msg", RESOURCES),
    13: ("terminationMessagePath", "str", None),
    14: ("imagePullPolicy", "str", None),
    20: ("terminationMessagePolicy", "str", None),
}
POD_SPEC: Schema = {
    2: ("containers", "rmsg", CONTAINER),
    3: ("restartPolicy", "str", None),
    4: ("terminationGracePeriodSeconds", "intp", None),
    6: ("dnsPolicy", "str", None),
    7: ("nodeSelector", "map", None),
    8: ("serviceAccountName", "str", None),
    19: ("schedulerName", "str", None),
    20: ("initContainers", "rmsg", CONTAINER),
}
POD_TEMPLATE: Schema = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", POD_SPEC)}
ROLLING: Schema = {1: ("maxUnavailable", "intstr", None), 2: ("maxSurge", "intstr", None)}
STRATEGY: Schema = {1: ("type", "str", None), 2: ("rollingUpdate", "msg", ROLLING)}
DEPLOYMENT_SPEC: Schema = {
    1: ("replicas", "intp", None),
    2: ("selector", "msg", LABEL_SELECTOR),
    3: ("template", "msg", POD_TEMPLATE),
    4: ("strategy", "msg", STRATEGY),
    5: ("minReadySeconds", "int", None),
    6: ("revisionHistoryLimit", "intp", None),
    7: ("paused", "bool", None),
    9: ("progressDeadlineSeconds", "intp", None),
}
SERVICE_PORT: Schema = {
    1: ("name", "str", None),
    2: ("protocol", "str", None),
    3: ("port", "int", None),
    4: ("targetPort", "intstr", None),
    5: ("nodePort", "int", None),
}
SERVICE_SPEC: Schema = {
    1: ("ports", "rmsg", SERVICE_PORT),
    2: ("selector", "map", None),
    3: ("clusterIP", "str", None),
    4: ("type", "str", None),
    5: ("externalIPs", "rstr", None),
    7: ("sessionAffinity", "str", None),
    11: ("externalName", "str", None),
}
LOCAL_REF: Schema = {1: ("name", "str", None)}
POLICY_RULE: Schema = {
    1: ("verbs", "rstr", None),
    2: ("apiGroups", "rstr", None),
    3: ("resources", "rstr", None),
    4: ("resourceNames", "rstr", None),
    5: ("nonResourceURLs", "rstr", None),
}
SUBJECT: Schema = {
    1: ("kind", "str", None),
    2: ("apiGroup", "str", None),
    3: ("name", "str", None),
    4: ("namespace", "str", None),
}
ROLE_REF: Schema = {
    1: ("apiGroup", "str", None),
    2: ("kind", "str", None),
    3: ("name", "str", None),
}
RBAC = "rbac.authorization.k8s.io/v1"
METRIC_TARGET: Schema = {
    1: ("type", "str", None),
    2: ("value", "qty", None),
    3: ("averageValue", "qty", None),
    4: ("averageUtilization", "intp", None),
}
METRIC_SPEC: Schema = {
    1: ("type", "str", None),
    4: ("resource", "msg", {1: ("name", "str", None), 2: ("target", "msg", METRIC_TARGET)}),
}
HPA_SPEC: Schema = {
    1: (
        "scaleTargetRef",
        "msg",
        {1: ("kind", "str", None), 2: ("name", "str", None), 3: ("apiVersion", "str", None)},
    ),
    2: ("minReplicas", "intp", None),
    3: ("maxReplicas", "int", None),
    4: ("metrics", "rmsg", METRIC_SPEC),
}
JOB_SPEC: Schema = {
    1: ("parallelism", "intp", None),
    2: ("completions", "intp", None),
    3: ("activeDeadlineSeconds", "intp", None),
    4: ("selector", "msg", LABEL_SELECTOR),
    6: ("template", "msg", POD_TEMPLATE),
    7: ("backoffLimit", "intp", None),
    8: ("ttlSecondsAfterFinished", "intp", None),
}
JOB_TEMPLATE: Schema = {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", JOB_SPEC)}
CRONJOB_SPEC: Schema = {
    1: ("schedule", "str", None),
    3: ("concurrencyPolicy", "str", None),
    5: ("jobTemplate", "msg", JOB_TEMPLATE),
}
PDB_SPEC: Schema = {
    1: ("minAvailable", "intstr", None),
    2: ("selector", "msg", LABEL_SELECTOR),
    3: ("maxUnavailable", "intstr", None),
}
SERVICE_BACKEND_PORT: Schema = {1: ("name", "str", None), 2: ("number", "int", None)}
INGRESS_BACKEND: Schema = {
    4: ("service", "msg", {1: ("name", "str", None), 2: ("port", "msg", SERVICE_BACKEND_PORT)})
}
HTTP_PATH: Schema = {
    1: ("path", "str", None),
    2: ("backend", "msg", INGRESS_BACKEND),
    3: ("pathType", "str", None),
}
INGRESS_RULE: Schema = {
    1: ("host", "str", None),
    # IngressRuleValue is inlined in JSON: its `http` sits beside `host`
    2: ("", "inline", {1: ("http", "msg", {1: ("paths", "rmsg", HTTP_PATH)})}),
}
INGRESS_SPEC: Schema = {
    1: ("defaultBackend", "msg", INGRESS_BACKEND),
    2: ("tls", "rmsg", {1: ("hosts", "rstr", None), 2: ("secretName", "str", None)}),
    3: ("rules", "rmsg", INGRESS_RULE),
    4: ("ingressClassName", "str", None),
}

PRECONDITIONS: Schema = {1: ("uid", "str", None), 2: ("resourceVersion", "str", None)}
#: metav1.DeleteOptions, registered in every group version
DELETE_OPTIONS: Schema = {
    1: ("gracePeriodSeconds", "intp", None),
    2: ("preconditions", "msg", PRECONDITIONS),
    3: ("orphanDependents", "boolp", None),
    4: ("propagationPolicy", "str", None),
    5: ("dryRun", "rstr", None),
    6: ("ignoreStoreReadErrorWithClusterBreakingPotential", "boolp", None),
}

KINDS: dict[tuple[str, str], Schema] = {
    ("v1", "Namespace"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", {1: ("finalizers", "rstr", None)}),
    },
    ("v1", "ConfigMap"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("data", "map", None),
        3: ("binaryData", "mapb", None),
        4: ("immutable", "boolp", None),
    },
    ("v1", "Secret"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("data", "mapb", None),
        3: ("type", "str", None),
        4: ("stringData", "map", None),
        5: ("immutable", "boolp", None),
    },
    ("v1", "ServiceAccount"): {
        1: ("metadata", "msg", OBJECT_META),
        3: ("imagePullSecrets", "rmsg", LOCAL_REF),
        4: ("automountServiceAccountToken", "boolp", None),
    },
    ("apps/v1", "Deployment"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", DEPLOYMENT_SPEC),
    },
    ("v1", "Service"): {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", SERVICE_SPEC)},
    ("batch/v1", "Job"): {1: ("metadata", "msg", OBJECT_META), 2: ("spec", "msg", JOB_SPEC)},
    ("batch/v1", "CronJob"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", CRONJOB_SPEC),
    },
    ("policy/v1", "PodDisruptionBudget"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", PDB_SPEC),
    },
    ("scheduling.k8s.io/v1", "PriorityClass"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("value", "int", None),
        3: ("globalDefault", "bool", None),
        4: ("description", "str", None),
        5: ("preemptionPolicy", "str", None),
    },
    ("networking.k8s.io/v1", "Ingress"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", INGRESS_SPEC),
    },
    ("autoscaling/v2", "HorizontalPodAutoscaler"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", HPA_SPEC),
    },
    ("v1", "ResourceQuota"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("spec", "msg", {1: ("hard", "mapq", None), 2: ("scopes", "rstr", None)}),
    },
    (RBAC, "Role"): {1: ("metadata", "msg", OBJECT_META), 2: ("rules", "rmsg", POLICY_RULE)},
    (RBAC, "ClusterRole"): {1: ("metadata", "msg", OBJECT_META), 2: ("rules", "rmsg", POLICY_RULE)},
    (RBAC, "RoleBinding"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("subjects", "rmsg", SUBJECT),
        3: ("roleRef", "msg", ROLE_REF),
    },
    (RBAC, "ClusterRoleBinding"): {
        1: ("metadata", "msg", OBJECT_META),
        2: ("subjects", "rmsg", SUBJECT),
        3: ("roleRef", "msg", ROLE_REF),
    },
}


def _map_entry(buf: bytes) -> tuple[str, bytes]:
    key, val = "", b""
    for num, _, v in _fields(buf):
        if num == 1:
            key = v.decode()
        elif num == 2:
            val = v
    return key, val


def _decode(buf: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for num, _, val in _fields(buf):
        spec = schema.get(num)
        if spec is None:
            continue
        name, kind, sub = spec
        # Go writes zero values of non-pointer fields; JSON (omitempty) would not
        if kind == "str":
            if val:
                out[name] = val.decode()
        elif kind in ("int", "bool"):
            if val:
                out[name] = _signed(val) if kind == "int" else True
        elif kind == "intp":
            out[name] = _signed(val)
        elif kind == "boolp":
            out[name] = bool(val)
        elif kind == "msg":
            out[name] = _decode(val, sub)
        elif kind == "qty":
            out[name] = next((x.decode() for n, _, x in _fields(val) if n == 1), "")
        elif kind == "inline":
            out.update(_decode(val, sub))
        elif kind == "rmsg":
            out.setdefault(name, []).append(_decode(val, sub))
        elif kind == "rstr":
            out.setdefault(name, []).append(val.decode())
        elif kind in ("map", "mapb", "mapq"):
            k, v = _map_entry(val)
            if kind == "map":
                value: Any = v.decode()
            elif kind == "mapb":
                value = base64.b64encode(v).decode()
            else:
                value = next((x.decode() for n, _, x in _fields(v) if n == 1), "")
            out.setdefault(name, {})[k] = value
        elif kind == "time":
            secs = next((_signed(x) for n, _, x in _fields(val) if n == 1), 0)
            if secs:
                out[name] = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif kind == "intstr":
            parts = {n: x for n, _, x in _fields(val)}
            out[name] = parts[3].decode() if parts.get(1) == 1 else _signed(parts.get(2, 0))
    return out


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a Kubernetes protobuf body; raises Unsupported."""
    if not body.startswith(MAGIC):
        raise Unsupported("missing the k8s protobuf magic")
    type_meta: dict[str, str] = {}
    raw = b""
    for num, _, val in _fields(body[len(MAGIC) :]):
        if num == 1:
            type_meta = {
                {1: "apiVersion", 2: "kind"}[n]: x.decode()
                for n, _, x in _fields(val)
                if n in (1, 2)
            }
        elif num == 2:
            raw = val
    key = (type_meta.get("apiVersion", ""), type_meta.get("kind", ""))
    schema = DELETE_OPTIONS if key[1] == "DeleteOptions" else KINDS.get(key)
    if schema is None:
        raise Unsupported(f"protobuf for {key[1] or 'unknown kind'} is not supported")
    obj = _decode(raw, schema)
    return {"apiVersion": key[0], "kind": key[1], **obj}
