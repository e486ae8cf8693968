"""The Kubernetes manifests: every overlay renders with kustomize and an API server
accepts it (server-side apply, dry run, against kubelite); every container is
hardened; only the kustomize and helm services can touch the cluster; every service has a
PodDisruptionBudget, NetworkPolicies and a /metrics Service; the image tag carries
an $imagepolicy marker so fluxbus upgrades itself; NATS is locked down: every
service connects with its own credentials Secret, a Job creates the buckets as
the admin, the NATS servers take their users and encryption key from Secrets."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_manifests import (
    CLUSTER_SERVICES,
    HTTP_PORTS,
    KUBERNETES,
    NAMESPACE,
    OVERLAYS,
    RECEIVER_PORT,
    SERVICES,
    Doc,
    containers,
    documents,
    hardening_faults,
    pod_specs,
    render,
    render_overlays,
)

from fluxbus_kubelite.testing import KubeliteHandle

# A minimal ServiceMonitor CRD: the Prometheus Operator's, reduced to what lets
# the API server accept the optional monitoring component.
SERVICEMONITOR_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render_overlays()


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def dry_run_apply(kubelite: KubeliteHandle, manifests: str) -> subprocess.CompletedProcess[str]:
    # the namespace must exist for the namespaced objects of a dry run, as on a real cluster
    kubelite.ensure_namespace(NAMESPACE)
    return kubelite.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", input=manifests
    )


def test_the_overlays_are_dev_production_and_a_single_nats_server():
    assert OVERLAYS == ["dev", "nats-single", "production"]


@pytest.mark.parametrize("overlay", [pytest.param(o, id=o) for o in OVERLAYS])
def test_overlay_renders_and_the_api_server_accepts_it(
    overlay: str, rendered: dict[str, str], kubelite_session: KubeliteHandle
):
    docs = documents(rendered[overlay])
    assert sorted(by_kind(docs, "Deployment")) == [f"fluxbus-{s}" for s in sorted(SERVICES)]
    assert {d["metadata"].get("namespace", NAMESPACE) for d in docs} == {NAMESPACE}
    result = dry_run_apply(kubelite_session, rendered[overlay])
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("serverside-applied (server dry run)") == len(docs)


@pytest.mark.parametrize("overlay", [pytest.param(o, id=o) for o in OVERLAYS])
def test_every_rendered_container_is_hardened(overlay: str, rendered: dict[str, str]):
    faults = {
        workload: found
        for workload, spec in pod_specs(documents(rendered[overlay]))
        if (found := hardening_faults(spec, long_running=not workload.startswith("Job/")))
    }
    assert faults == {}


def test_a_container_without_hardening_is_reported():
    spec = {"containers": [{"name": "app", "image": "app:latest"}]}
    faults = hardening_faults(spec)
    assert "pod: runAsNonRoot is not true" in faults
    assert "app: readOnlyRootFilesystem is not true" in faults
    assert "app: image 'app:latest' has no pinned tag" in faults
    assert "app: no livenessProbe" in faults
    assert "app: no livenessProbe" not in hardening_faults(spec, long_running=False)


@pytest.mark.parametrize("overlay", [pytest.param(o, id=o) for o in OVERLAYS])
def test_only_the_kustomize_and_helm_services_may_touch_the_cluster(
    overlay: str, rendered: dict[str, str]
):
    docs = documents(rendered[overlay])
    bound = {
        (s["kind"], s["name"])
        for d in docs
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
        for s in d["subjects"]
    }
    touching = {f"fluxbus-{s}" for s in CLUSTER_SERVICES}
    assert bound == {("ServiceAccount", name) for name in touching}
    accounts = by_kind(docs, "ServiceAccount")
    for name, deployment in by_kind(docs, "Deployment").items():
        spec = deployment["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == name  # one account per service
        has_token = spec.get("automountServiceAccountToken", True)
        assert has_token == (name in touching), name
        assert accounts[name].get("automountServiceAccountToken", True) == has_token


@pytest.mark.parametrize("overlay", [pytest.param(o, id=o) for o in OVERLAYS])
def test_each_service_has_its_port_a_disruption_budget_network_policies_and_a_metrics_service(
    overlay: str, rendered: dict[str, str]
):
    docs = documents(rendered[overlay])
    budgets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for d in by_kind(docs, "PodDisruptionBudget").values()
    }
    policies = list(by_kind(docs, "NetworkPolicy").values())
    metrics = {
        d["spec"]["selector"]["app.kubernetes.io/name"]: d["spec"]["ports"][0]["port"]
        for d in by_kind(docs, "Service").values()
        if d["metadata"]["labels"].get("fluxbus.io/metrics") == "true"
    }
    for service in SERVICES:
        deployment = by_kind(docs, "Deployment")[f"fluxbus-{service}"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        (container,) = containers(deployment["spec"]["template"]["spec"])
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["FLUXBUS_HTTP_ADDR"] == f"0.0.0.0:{HTTP_PORTS[service]}"
        assert f"fluxbus-{service}" in budgets
        assert metrics[f"fluxbus-{service}"] == HTTP_PORTS[service]
        governing = [p for p in policies if selects(p["spec"]["podSelector"], pod_labels)]
        assert {t for p in governing for t in p["spec"]["policyTypes"]} == {"Ingress", "Egress"}
    receiver = by_kind(docs, "Service")["webhook-receiver"]
    assert receiver["spec"]["selector"] == {"app.kubernetes.io/name": "fluxbus-notifier"}
    notifier = by_kind(docs, "Deployment")["fluxbus-notifier"]["spec"]["template"]["spec"]
    assert RECEIVER_PORT in {p["containerPort"] for p in notifier["containers"][0]["ports"]}


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a NetworkPolicy podSelector selects a pod with these labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        inside = present and labels[expr["key"]] in expr.get("values", [])
        ok = {"In": inside, "NotIn": not inside, "Exists": present, "DoesNotExist": not present}
        if not ok[expr["operator"]]:
            return False
    return True


@pytest.mark.parametrize("overlay", [pytest.param(o, id=o) for o in OVERLAYS])
def test_the_image_tag_carries_an_imagepolicy_marker(overlay: str):
    text = (KUBERNETES / "overlays" / overlay / "kustomization.yaml").read_text()
    images = yaml.safe_load(text)["images"]
    assert [i["name"] for i in images] == ["ghcr.io/fluxbus/fluxbus"]
    marker = re.search(r'newTag: (\S+) # \{"\$imagepolicy": "flux-system:[a-z-]+:tag"\}', text)
    assert marker is not None and marker.group(1) == images[0]["newTag"]


@pytest.mark.parametrize(
    ("overlay", "nats_in_overlay"),
    [
        pytest.param("dev", True, id="dev-runs-its-own-nats"),
        pytest.param("nats-single", True, id="nats-single-runs-its-own-nats"),
        pytest.param("production", False, id="production-uses-the-helm-chart"),
    ],
)
def test_nats_comes_from_a_single_node_statefulset_or_the_helm_chart(
    overlay: str, nats_in_overlay: bool, rendered: dict[str, str]
):
    docs = documents(rendered[overlay])
    config = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("fluxbus-config")
    )
    urls = config["data"]["FLUXBUS_NATS_URL"].split(",")
    assert ("nats" in by_kind(docs, "StatefulSet")) == nats_in_overlay
    if nats_in_overlay:
        assert urls == [f"nats://nats.{NAMESPACE}.svc:4222"]
    else:
        assert len(urls) == 3 and config["data"]["FLUXBUS_NATS_REPLICAS"] == "3"
        values = yaml.safe_load((KUBERNETES / "nats-helm-values.yaml").read_text())
        assert values["config"]["cluster"] == {"enabled": True, "replicas": 3}
        assert values["config"]["jetstream"]["enabled"] is True


@pytest.mark.parametrize(
    "component",
    [
        pytest.param("monitoring", id="monitoring"),
    ],
)
def test_an_optional_component_renders_onto_production_and_is_accepted(
    component: str, tmp_path: Path, kubelite_session: KubeliteHandle
):
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes only relative paths to other kustomizations
                "resources": [os.path.relpath(KUBERNETES / "overlays" / "production", tmp_path)],
                "components": [os.path.relpath(KUBERNETES / "components" / component, tmp_path)],
            }
        )
    )
    docs = documents(render(tmp_path))
    (monitor,) = by_kind(docs, "ServiceMonitor").values()
    assert monitor["spec"]["selector"]["matchLabels"] == {"fluxbus.io/metrics": "true"}
    crd = kubelite_session.kubectl("apply", "-f", "-", input=SERVICEMONITOR_CRD)
    assert crd.returncode == 0, crd.stderr
    result = dry_run_apply(kubelite_session, yaml.safe_dump_all(docs))
    assert result.returncode == 0, result.stderr
