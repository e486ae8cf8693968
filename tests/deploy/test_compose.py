"""deploy/docker-compose.yaml: valid against the compose specification (its JSON
schema, as vendored by check-jsonschema), every command it runs exists in the image,
services wait for healthy dependencies and restart, JetStream keeps its data on a
named volume (the one the generated NATS configuration names), the ports follow the per-service convention, kubelite is the default
cluster and only the kustomize and helm services read a kubeconfig, the image has the
helm extra, and every variable it
reads is documented."""

from __future__ import annotations

import importlib.resources
import json
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from deploy_manifests import CLUSTER_SERVICES, DEPLOY, HTTP_PORTS, RECEIVER_PORT, ROOT, SERVICES

COMPOSE = DEPLOY / "docker-compose.yaml"
KIND_OVERRIDE = DEPLOY / "docker-compose.kind.yaml"
NO_AUTH_OVERRIDE = DEPLOY / "docker-compose.no-auth.yaml"
FLUXBUS_CONTAINERS = (*SERVICES, "kubelite")
ONE_SHOTS = ("nats-config", "nats-init")
"""Steps that run once before the services (the fluxbus image, no healthcheck)."""


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@cache
def compose_schema_validator() -> jsonschema.protocols.Validator:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def console_scripts() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(COMPOSE, id="docker-compose"),
        pytest.param(KIND_OVERRIDE, id="kind-override"),
        pytest.param(NO_AUTH_OVERRIDE, id="no-auth-override"),
    ],
)
def test_the_compose_file_follows_the_compose_specification(path: Path):
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in compose_schema_validator().iter_errors(yaml.safe_load(path.read_text()))
    ]
    assert errors == []


def test_the_schema_check_rejects_what_compose_would_refuse():
    broken = {
        "services": {"source": {"image": "x", "depends_on": {"nats": {"condition": "healthy"}}}}
    }
    assert list(compose_schema_validator().iter_errors(broken))


def test_every_command_it_runs_exists_in_the_image():
    scripts = console_scripts()
    services = compose()["services"]
    for name in FLUXBUS_CONTAINERS:
        service = services[name]
        assert service["image"].startswith("${FLUXBUS_IMAGE:-"), name
        assert service["command"][0] in scripts, name
        # python is the image's interpreter: the healthchecks need no curl
        assert service["healthcheck"]["test"][:2] == ["CMD", "python"], name
    for name in ONE_SHOTS:
        service = services[name]
        assert service["image"].startswith("${FLUXBUS_IMAGE:-"), name
        command = " ".join(service["command"])
        assert "fluxbus nats " in command, name
    assert services["nats"]["image"].startswith("nats:")


def test_services_start_after_healthy_dependencies_and_restart():
    services = compose()["services"]
    for name, service in services.items():
        if name in ONE_SHOTS:
            assert service["restart"] == "no" and service["healthcheck"] == {"disable": True}
        else:
            assert service["restart"] == "unless-stopped", name
            assert service["healthcheck"]["test"], name
        for dependency, how in service.get("depends_on", {}).items():
            if dependency in ONE_SHOTS:
                assert how["condition"] == "service_completed_successfully", (name, dependency)
            else:
                assert how["condition"] == "service_healthy", (name, dependency)
                assert "test" in services[dependency]["healthcheck"], dependency
    for name in SERVICES:
        assert {"nats", "nats-init"} <= set(services[name]["depends_on"]), name
    for name in CLUSTER_SERVICES:
        assert set(services[name]["depends_on"]) == {"nats", "nats-init", "kubelite"}, name


def test_jetstream_keeps_its_data_on_a_named_volume():
    services = compose()["services"]
    # the store of the generated nats.conf, and of the opt-out's flags
    script = services["nats-config"]["command"][-1]
    store = script.split("--store-dir ")[1].split()[0]
    assert f"nats-data:{store}" in services["nats"]["volumes"]
    opened = yaml.safe_load(NO_AUTH_OVERRIDE.read_text())["services"]["nats"]["command"]
    assert opened[opened.index("-sd") + 1] == store
    assert "nats-data" in compose()["volumes"]


def test_the_image_has_every_directory_a_fluxbus_container_mounts_a_volume_on():
    """A new named volume takes the owner of the image's directory: without it,
    root would own it and the non-root services could not write there."""
    created = set((DEPLOY / "Dockerfile").read_text().split())
    for name, service in compose()["services"].items():
        if not service["image"].startswith("${FLUXBUS_IMAGE"):
            continue
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if target.startswith("/var/lib/fluxbus/") and not source.startswith("$"):
                assert target in created, (name, target)


@pytest.mark.parametrize("service", [pytest.param(s, id=s) for s in SERVICES])
def test_each_service_serves_health_on_its_own_port_and_reaches_nats(service: str):
    spec = compose()["services"][service]
    env = spec["environment"]
    port = HTTP_PORTS[service]
    assert env["FLUXBUS_HTTP_ADDR"] == f"0.0.0.0:{port}"
    assert env["FLUXBUS_NATS_URL"] == "nats://nats:4222"
    assert f"127.0.0.1:{port}:{port}" in spec["ports"]
    assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"]


def test_the_notifier_publishes_its_receiver_port():
    notifier = compose()["services"]["notifier"]
    assert notifier["environment"]["FLUXBUS_RECEIVER_ADDR"] == f"0.0.0.0:{RECEIVER_PORT}"
    assert f"${{FLUXBUS_RECEIVER_PORT:-{RECEIVER_PORT}}}:{RECEIVER_PORT}" in notifier["ports"]


def test_kubelite_is_the_default_cluster_and_only_kustomize_and_helm_read_a_kubeconfig():
    services = compose()["services"]
    kubelite = services["kubelite"]
    written = next(a.split("=", 1)[1] for a in kubelite["command"] if a.startswith("--kubeconfig="))
    assert "--host=kubelite" in kubelite["command"] and kubelite["hostname"] == "kubelite"
    mount = f"${{FLUXBUS_KUBECONFIG_DIR:-kubeconfig}}:{Path(written).parent}:ro"
    for name in CLUSTER_SERVICES:
        assert services[name]["environment"]["KUBECONFIG"] == written, name
        assert mount in services[name]["volumes"], name
        # your uid reads your kubeconfig; group 65532 its NATS credentials
        assert services[name]["user"] == "${FLUXBUS_UID:-65532}:${FLUXBUS_GID:-65532}", name
        assert services[name]["group_add"] == ["65532"], name
    assert f"kubeconfig:{Path(written).parent}" in kubelite["volumes"]
    for name in set(SERVICES) - set(CLUSTER_SERVICES):
        assert "KUBECONFIG" not in services[name]["environment"], name
        assert not any("kube" in v for v in services[name]["volumes"]), name


def test_the_kind_override_puts_kustomize_and_helm_on_the_clusters_network():
    override = yaml.safe_load(KIND_OVERRIDE.read_text())
    assert set(override["services"]) == set(CLUSTER_SERVICES)
    for name in CLUSTER_SERVICES:
        assert override["services"][name]["networks"] == ["default", "cluster"], name
    assert override["networks"]["cluster"]["external"] is True


def test_the_image_has_the_helm_extra():
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    (install,) = re.findall(r"pip install [^&\n]*", text)
    assert "'.[helm]'" in install.split()


def test_every_variable_it_reads_is_documented_in_the_file_and_the_readme():
    text = COMPOSE.read_text() + KIND_OVERRIDE.read_text() + NO_AUTH_OVERRIDE.read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    readme = (ROOT / "README.md").read_text()
    variables = set(re.findall(r"\$\{(\w+)", text))
    assert variables
    assert {v for v in variables if v not in header} == set()
    assert {v for v in variables if v not in readme} == set()


def test_every_fluxbus_setting_it_passes_is_one_the_services_read():
    sources = "".join(p.read_text() for d in ("libs", "services") for p in (ROOT / d).rglob("*.py"))
    passed = {
        key
        for service in compose()["services"].values()
        for key in (service.get("environment") or {})
        if key.startswith("FLUXBUS_")
    }
    assert passed and {k for k in passed if k not in sources} == set()
