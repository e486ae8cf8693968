"""deploy/docker-compose.yaml: valid against the compose specification (its JSON
schema, as vendored by check-jsonschema), every command it runs exists in the image,
services wait for healthy dependencies and restart, JetStream keeps its data on a
named volume, the ports follow the per-service convention, kubelite is the default
cluster and only the kustomize service reads a kubeconfig, and every variable it
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
from deploy_manifests import DEPLOY, HTTP_PORTS, RECEIVER_PORT, ROOT, SERVICES

COMPOSE = DEPLOY / "docker-compose.yaml"
KIND_OVERRIDE = DEPLOY / "docker-compose.kind.yaml"
FLUXBUS_CONTAINERS = (*SERVICES, "kubelite")


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
    [pytest.param(COMPOSE, id="docker-compose"), pytest.param(KIND_OVERRIDE, id="kind-override")],
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
    assert services["nats"]["image"].startswith("nats:")


def test_services_start_after_healthy_dependencies_and_restart():
    services = compose()["services"]
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"], name
        for dependency, how in service.get("depends_on", {}).items():
            assert how["condition"] == "service_healthy", (name, dependency)
            assert "healthcheck" in services[dependency], dependency
    for name in SERVICES:
        assert "nats" in services[name]["depends_on"], name
    assert set(services["kustomize"]["depends_on"]) == {"nats", "kubelite"}


def test_jetstream_keeps_its_data_on_a_named_volume():
    nats = compose()["services"]["nats"]
    assert "-js" in nats["command"]
    store = nats["command"][nats["command"].index("-sd") + 1]
    assert f"nats-data:{store}" in nats["volumes"]
    assert "nats-data" in compose()["volumes"]


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


def test_kubelite_is_the_default_cluster_and_only_kustomize_reads_a_kubeconfig():
    services = compose()["services"]
    kubelite = services["kubelite"]
    written = next(a.split("=", 1)[1] for a in kubelite["command"] if a.startswith("--kubeconfig="))
    assert "--host=kubelite" in kubelite["command"] and kubelite["hostname"] == "kubelite"
    kustomize = services["kustomize"]
    assert kustomize["environment"]["KUBECONFIG"] == written
    mount = f"${{FLUXBUS_KUBECONFIG_DIR:-kubeconfig}}:{Path(written).parent}:ro"
    assert mount in kustomize["volumes"]
    assert f"kubeconfig:{Path(written).parent}" in kubelite["volumes"]
    for name in ("source", "image-reflector", "notifier"):
        assert "KUBECONFIG" not in services[name]["environment"], name
        assert "volumes" not in services[name], name


def test_the_kind_override_puts_kustomize_on_the_clusters_network():
    override = yaml.safe_load(KIND_OVERRIDE.read_text())
    assert override["services"]["kustomize"]["networks"] == ["default", "cluster"]
    assert override["networks"]["cluster"]["external"] is True


def test_every_variable_it_reads_is_documented_in_the_file_and_the_readme():
    text = COMPOSE.read_text() + KIND_OVERRIDE.read_text()
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
