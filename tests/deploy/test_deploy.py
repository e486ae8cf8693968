"""The deployment files are valid: the compose file names real console
scripts and NATS, and every Kubernetes overlay renders with kustomize and is
accepted by an API server (server-side dry-run against kubelite)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from fluxbus_kubelite.testing import KubeliteHandle, kubectl_binary

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def console_scripts() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["scripts"])


def test_compose_runs_nats_and_every_service_with_a_real_command():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert "-js" in services["nats"]["command"]
    scripts = console_scripts()
    for name in ("source", "kustomize", "image-reflector", "notifier"):
        svc = services[name]
        assert svc["command"][0] in scripts
        assert svc["environment"]["FLUXBUS_NATS_URL"] == "nats://nats:4222"


def test_dockerfile_installs_the_project_and_runs_unprivileged():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "pip install" in text
    assert "USER 65532" in text


@pytest.mark.parametrize("overlay", ["single", "nats-cluster"])
def test_kubernetes_overlay_renders_and_the_api_server_accepts_it(
    overlay: str, kubelite_session: KubeliteHandle
):
    rendered = subprocess.run(
        [kubectl_binary(), "kustomize", str(DEPLOY / "kubernetes" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(rendered) if d]
    assert kinds.count("Deployment") == 4
    # the namespace must exist for the namespaced dry-run, as on a real cluster
    kubelite_session.ensure_namespace("flux-system")
    result = kubelite_session.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", input=rendered
    )
    assert result.returncode == 0, result.stderr
    assert "serverside-applied (server dry run)" in result.stdout
