"""Workload simulation: rollouts finish, broken images never become ready, switch off."""

from __future__ import annotations

import json
from typing import Any

import yaml
from kubelite_helpers import deployment, wait_until

from fluxbus_kubelite.testing import KubeliteHandle


def apply(kl: KubeliteHandle, ns: str, *objs: dict[str, Any]) -> None:
    kl.kubectl(
        "-n", ns, "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(objs), check=True
    )


def get(kl: KubeliteHandle, ns: str, kind: str, name: str) -> dict[str, Any]:
    return json.loads(kl.kubectl("-n", ns, "get", kind, name, "-o", "json", check=True).stdout)


def available(obj: dict[str, Any]) -> bool:
    st = obj.get("status") or {}
    conds = {c["type"]: c["status"] for c in st.get("conditions", [])}
    return (
        st.get("observedGeneration") == obj["metadata"]["generation"]
        and conds.get("Available") == "True"
    )


def test_deployment_becomes_available_after_each_spec_change(kl: KubeliteHandle, ns: str) -> None:
    apply(kl, ns, deployment("web", replicas=3))
    obj = wait_until(lambda: (o := get(kl, ns, "deploy", "web")) and available(o) and o)
    st = obj["status"]
    assert (
        st["replicas"]
        == st["updatedReplicas"]
        == st["readyReplicas"]
        == st["availableReplicas"]
        == 3
    )
    apply(kl, ns, deployment("web", image="nginx:2", replicas=3))
    obj = wait_until(lambda: (o := get(kl, ns, "deploy", "web")) and available(o) and o)
    assert obj["status"]["observedGeneration"] == 2


def test_kubectl_rollout_status_completes(kl: KubeliteHandle, ns: str) -> None:
    apply(kl, ns, deployment("web"))
    res = kl.kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=20s")
    assert res.returncode == 0, res.stderr
    assert "successfully rolled out" in res.stdout


def test_broken_image_never_becomes_ready(kl: KubeliteHandle, ns: str) -> None:
    apply(kl, ns, deployment("web", image="example.com/app:broken"))
    obj = wait_until(
        lambda: (
            (o := get(kl, ns, "deploy", "web")).get("status", {}).get("observedGeneration") == 1
            and o
        )
    )
    conds = {c["type"]: c for c in obj["status"]["conditions"]}
    assert conds["Available"]["status"] == "False"
    assert obj["status"].get("readyReplicas", 0) == 0
    assert obj["status"]["unavailableReplicas"] == 2
    res = kl.kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=1s")
    assert res.returncode != 0


def test_statefulset_and_daemonset_get_ready_counts(kl: KubeliteHandle, ns: str) -> None:
    sts = deployment("db", replicas=2)
    sts["kind"] = "StatefulSet"
    sts["spec"]["serviceName"] = "db"
    ds = deployment("agent", replicas=None)
    ds["kind"] = "DaemonSet"
    apply(kl, ns, sts, ds)
    s = wait_until(
        lambda: (o := get(kl, ns, "sts", "db")).get("status", {}).get("readyReplicas") == 2 and o
    )
    assert s["status"]["observedGeneration"] == 1
    d = wait_until(
        lambda: (o := get(kl, ns, "ds", "agent")).get("status", {}).get("numberReady") == 1 and o
    )
    assert d["status"]["desiredNumberScheduled"] == 1


def test_simulation_can_be_switched_off(kubelite_factory: Any) -> None:
    h = kubelite_factory(simulate=False)
    apply(h, "default", deployment("web"))
    # nothing is scheduled to write a status, and none has been written
    assert h.call(lambda: len(h.server.controllers._pending)) == 0
    assert not get(h, "default", "deploy", "web").get("status")


def test_job_completes_pvc_binds_run_once_pod_succeeds_and_load_balancer_gets_an_address(
    kl: KubeliteHandle, ns: str
) -> None:
    pod_spec = {"containers": [{"name": "main", "image": "busybox:1"}], "restartPolicy": "Never"}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {"template": {"spec": pod_spec}},
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": pod_spec}
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"app": "x"}},
    }
    apply(kl, ns, job, pvc, pod, svc)

    def conds(o: dict[str, Any]) -> dict[str, str]:
        return {c["type"]: c["status"] for c in (o.get("status") or {}).get("conditions", [])}

    wait_until(lambda: conds(get(kl, ns, "job", "once")).get("Complete") == "True")
    wait_until(lambda: get(kl, ns, "pvc", "data").get("status", {}).get("phase") == "Bound")
    wait_until(lambda: get(kl, ns, "pod", "p").get("status", {}).get("phase") == "Succeeded")
    wait_until(
        lambda: get(kl, ns, "svc", "lb").get("status", {}).get("loadBalancer", {}).get("ingress")
    )
    res = kl.kubectl("-n", ns, "wait", "--for=condition=Complete", "job/once", "--timeout=10s")
    assert res.returncode == 0, res.stderr


def test_default_namespace_may_not_be_deleted(kl: KubeliteHandle) -> None:
    res = kl.kubectl("delete", "ns", "default", "--wait=false")
    assert res.returncode != 0
    assert 'namespaces "default" is forbidden: this namespace may not be deleted' in res.stderr
