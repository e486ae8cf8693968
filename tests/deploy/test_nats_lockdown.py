"""NATS locked down in the deployment files (docs/security.md): in every
Kubernetes overlay each service connects with the credentials of its own
Secret, a Job creates the buckets as the admin, and the NATS servers (the
single-node StatefulSet, the Helm chart's values) take their users and their
JetStream encryption key from Secrets; in compose a one-shot `nats-config`
writes the configuration, NATS starts from it, a one-shot `nats-init` runs
before the services, each service mounts only its own credentials, and the
opt-out file opens the bus again. The compose file's `nats-config` script runs
here against a real nats-server, `fluxbus nats init` and a service's user."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_manifests import (
    CREDS_PATH,
    DEPLOY,
    KUBERNETES,
    OVERLAYS,
    SERVICES,
    Doc,
    documents,
    render_overlays,
)

from fluxbus_common.bus import Bus
from fluxbus_common.ports import BusError
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import NatsServer

COMPOSE = DEPLOY / "docker-compose.yaml"
NO_AUTH = DEPLOY / "docker-compose.no-auth.yaml"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render_overlays()


def workload(docs: list[Doc], kind: str, name: str) -> Doc:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def env_of(container: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def secret_volume(spec: Doc, mount_path: str) -> Doc:
    """The Secret volume mounted at `mount_path` in the first container."""
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == mount_path]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    return volume["secret"]


@pytest.mark.parametrize("overlay", [pytest.param(o, id=o) for o in OVERLAYS])
def test_every_service_container_connects_with_the_credentials_of_its_own_secret(
    overlay: str, rendered: dict[str, str]
):
    docs = documents(rendered[overlay])
    for service in SERVICES:
        spec = workload(docs, "Deployment", f"fluxbus-{service}")["spec"]["template"]["spec"]
        assert env_of(spec["containers"][0])["FLUXBUS_NATS_CREDS"] == CREDS_PATH, service
        secret = secret_volume(spec, CREDS_PATH.rpartition("/")[0])
        assert secret["secretName"] == f"fluxbus-nats-{service}"
        assert secret.get("optional", False) is False, service


@pytest.mark.parametrize("overlay", [pytest.param(o, id=o) for o in OVERLAYS])
def test_a_job_creates_the_buckets_as_the_admin(overlay: str, rendered: dict[str, str]):
    docs = documents(rendered[overlay])
    job = workload(docs, "Job", "fluxbus-nats-init")
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["command"] == ["fluxbus", "nats", "init"]
    assert env_of(container)["FLUXBUS_NATS_CREDS"] == CREDS_PATH
    assert secret_volume(spec, CREDS_PATH.rpartition("/")[0])["secretName"] == "fluxbus-nats-admin"
    # the same NATS URL and replicas as the services (the buckets' replication)
    (config,) = container["envFrom"]
    assert config["configMapRef"]["name"].startswith("fluxbus-config-")
    service = workload(docs, "Deployment", "fluxbus-source")["spec"]["template"]["spec"]
    assert container["image"] == service["containers"][0]["image"]
    assert spec["automountServiceAccountToken"] is False
    # on the NetworkPolicy of every fluxbus pod: DNS and NATS
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/part-of"] == "fluxbus"


@pytest.mark.parametrize("overlay", ["dev", "nats-single"])
def test_the_single_nats_server_takes_its_users_and_encryption_key_from_secrets(
    overlay: str, rendered: dict[str, str]
):
    spec = workload(documents(rendered[overlay]), "StatefulSet", "nats")["spec"]["template"]
    spec = spec["spec"]
    (nats,) = spec["containers"]
    config = nats["args"][nats["args"].index("-c") + 1]
    assert secret_volume(spec, config.rpartition("/")[0])["secretName"] == "nats-config"
    key = env_of(nats)["NATS_JETSTREAM_KEY"]
    assert key == {"secretKeyRef": {"name": "nats-jetstream-key", "key": "key"}}
    assert "-js" not in nats["args"]  # JetStream, its store and cipher: nats.conf


def test_the_helm_values_include_the_users_and_encrypt_jetstream_with_a_secret_key():
    values = yaml.safe_load((KUBERNETES / "nats-helm-values.yaml").read_text())
    jetstream = values["config"]["jetstream"]["merge"]
    assert jetstream == {"cipher": "chachapoly", "key": "<< $NATS_JETSTREAM_KEY >>"}
    key = values["container"]["env"]["NATS_JETSTREAM_KEY"]["valueFrom"]["secretKeyRef"]
    assert key == {"name": "nats-jetstream-key", "key": "key"}
    (include,) = [v for k, v in values["config"]["merge"].items() if k.endswith("$include")]
    (mount,) = [p["value"] for p in values["container"]["patch"] if p["path"] == "/volumeMounts/-"]
    (volume,) = [
        p["value"] for p in values["podTemplate"]["patch"] if p["path"] == "/spec/volumes/-"
    ]
    # includes are relative to the chart's /etc/nats-config
    assert include == f"..{mount['mountPath'].removeprefix('/etc')}/auth.conf"
    assert volume == {**volume, "name": mount["name"]}
    assert volume["secret"]["secretName"] == "nats-auth"


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def mounts(service: Doc) -> dict[str, str]:
    """Container path -> volume of a compose service's named-volume mounts."""
    return {
        v.split(":")[1]: v.split(":")[0]
        for v in service.get("volumes", [])
        if not v.startswith("$")
    }


@pytest.mark.parametrize("service", [pytest.param(s, id=s) for s in SERVICES])
def test_each_compose_service_uses_its_own_credentials_only(service: str):
    services = compose()["services"]
    spec = services[service]
    assert spec["environment"]["FLUXBUS_NATS_CREDS"] == CREDS_PATH
    creds = {path: volume for path, volume in mounts(spec).items() if "nats" in volume}
    assert creds == {CREDS_PATH.rpartition("/")[0]: f"nats-creds-{service}"}
    assert f"nats-creds-{service}:{CREDS_PATH.rpartition('/')[0]}:ro" in spec["volumes"]
    # nobody else mounts it but the step that writes it
    others = {n for n, s in services.items() if f"nats-creds-{service}" in mounts(s).values()}
    assert others == {service, "nats-config"}


def test_compose_creates_the_buckets_as_the_admin_before_any_service_starts():
    services = compose()["services"]
    init = services["nats-init"]
    assert init["command"] == ["fluxbus", "nats", "init"]
    assert init["environment"]["FLUXBUS_NATS_CREDS"] == CREDS_PATH
    assert mounts(init) == {CREDS_PATH.rpartition("/")[0]: "nats-creds-admin"}
    assert init["depends_on"]["nats"]["condition"] == "service_healthy"
    for service in SERVICES:
        wait = services[service]["depends_on"]["nats-init"]
        assert wait["condition"] == "service_completed_successfully", service


def test_compose_nats_starts_locked_from_the_generated_configuration():
    services = compose()["services"]
    nats, config = services["nats"], services["nats-config"]
    assert nats["depends_on"]["nats-config"]["condition"] == "service_completed_successfully"
    conf = nats["command"][nats["command"].index("-c") + 1]
    assert mounts(nats)[conf.rpartition("/")[0]] == "nats-config"
    script = config["command"][-1]
    assert "fluxbus nats config" in script and "--no-encrypt" not in script
    # the store nats.conf names is the data volume
    store = script.split("--store-dir ")[1].split()[0]
    assert mounts(nats)[store] == "nats-data"
    assert config["environment"]["NATS_JETSTREAM_KEY"] == "${FLUXBUS_NATS_JETSTREAM_KEY:-}"
    for one_shot in (config, services["nats-init"]):
        assert one_shot["restart"] == "no"


def test_the_no_auth_file_opens_the_bus_for_every_client():
    override = yaml.safe_load(NO_AUTH.read_text())["services"]
    assert "-c" not in override["nats"]["command"] and "-js" in override["nats"]["command"]
    for service in (*SERVICES, "nats-init"):
        assert override[service]["environment"] == {"FLUXBUS_NATS_CREDS": ""}, service


ROLES = (*SERVICES, "admin")
"""The roles whose seed compose copies into a volume of their own."""


def run_nats_config(root: Path, key: str = "") -> subprocess.CompletedProcess[str]:
    """Run the compose file's `nats-config` script with /var/lib/fluxbus at `root`
    (and the JetStream store at root/data), as the container would."""
    script = compose()["services"]["nats-config"]["command"][-1].replace("$$", "$")
    script = script.replace("/var/lib/fluxbus", str(root))
    script = script.replace("--store-dir /data", f"--store-dir {root / 'data'}")
    # the mount points the image creates (deploy/Dockerfile)
    (root / "nats").mkdir(parents=True, exist_ok=True)
    for role in ROLES:
        (root / "nats-creds" / role).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLUXBUS_", "NATS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NATS_JETSTREAM_KEY"] = key
    return subprocess.run(
        ["sh", "-ec", script], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_nats_config_step_gives_each_role_its_own_seed_and_keeps_them(tmp_path: Path):
    first = run_nats_config(tmp_path)
    assert first.returncode == 0, first.stderr
    seeds = {r: (tmp_path / "nats" / "creds" / f"{r}.nk").read_text() for r in ROLES}
    key = (tmp_path / "nats" / "jetstream.key").read_text()
    assert run_nats_config(tmp_path).returncode == 0
    for role in ROLES:
        copy = tmp_path / "nats-creds" / role / "creds"
        assert copy.read_text() == seeds[role], role
        # the owner, or the kustomize service as your uid in group 65532
        assert stat.S_IMODE(copy.stat().st_mode) == 0o640, role
    assert len(set(seeds.values())) == len(ROLES)
    assert (tmp_path / "nats" / "jetstream.key").read_text() == key


def test_a_chosen_encryption_key_is_used_and_a_different_one_later_refused(tmp_path: Path):
    assert run_nats_config(tmp_path, key="the-chosen-key").returncode == 0
    assert (tmp_path / "nats" / "jetstream.key").read_text().strip() == "the-chosen-key"
    assert '"the-chosen-key"' in (tmp_path / "nats" / "nats.conf").read_text()
    changed = run_nats_config(tmp_path, key="another-key")
    assert changed.returncode != 0
    assert "not the key the data is encrypted with" in changed.stderr
    assert "another-key" not in changed.stderr + changed.stdout


async def test_nats_from_that_configuration_serves_services_once_the_admin_ran_init(
    tmp_path: Path,
):
    assert run_nats_config(tmp_path).returncode == 0
    server = NatsServer(tmp_path / "data", extra_args=["-c", str(tmp_path / "nats" / "nats.conf")])
    server.start()
    try:
        source = BusSettings(
            url=server.url, credentials=str(tmp_path / "nats-creds" / "source" / "creds")
        )
        with pytest.raises(BusError, match="fluxbus nats init"):
            await Bus.connect(source, "source")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLUXBUS_")}
        env["FLUXBUS_NATS_URL"] = server.url
        env["FLUXBUS_NATS_CREDS"] = str(tmp_path / "nats-creds" / "admin" / "creds")
        init = await asyncio.to_thread(
            subprocess.run,
            [str(Path(sys.executable).parent / "fluxbus"), "nats", "init"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert init.returncode == 0, init.stdout + init.stderr
        bus = await Bus.connect(source, "source")
        await bus.close()
        anonymous = BusSettings(url=server.url, connect_timeout=2)
        with pytest.raises(BusError):
            await Bus.connect(anonymous, "anonymous")
    finally:
        server.stop()
