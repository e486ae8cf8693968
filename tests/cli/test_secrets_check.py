"""`fluxbus create secret` (Flux's keys), `fluxbus check` and `fluxbus version`,
and the clear error every command gives when NATS is unreachable."""

from __future__ import annotations

import base64
import json
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from cli_helpers import Cli, run_fluxbus

from fluxbus_common.api import Secret
from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import free_port


async def stored(bus: Bus, name: str) -> Secret:
    doc = await bus.get_secret("flux-system", name)
    assert doc is not None, f"secret {name} not stored"
    return Secret.model_validate(doc)


async def test_generic_secret_from_literals_and_files(cli: Cli, bus: Bus, tmp_path: Path):
    (tmp_path / "ca.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    result = await cli(
        "create",
        "secret",
        "generic",
        "vars",
        "--from-literal",
        "region=eu-central-1",
        "--from-literal",
        "token=abc=def",
        "--from-file",
        str(tmp_path / "ca.pem"),
        "--from-file",
        f"ca.crt={tmp_path / 'ca.pem'}",
    )
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "secret/flux-system/vars created"
    assert (await stored(bus, "vars")).decoded() == {
        "region": b"eu-central-1",
        "token": b"abc=def",
        "ca.pem": b"-----BEGIN CERTIFICATE-----\n",
        "ca.crt": b"-----BEGIN CERTIFICATE-----\n",
    }
    assert "abc=def" not in result.output


@pytest.mark.parametrize(
    ("flags", "files", "expected"),
    [
        pytest.param(
            ["--url", "https://github.com/org/repo", "--username", "git", "--password", "pw"],
            {},
            {"username": b"git", "password": b"pw"},
            id="https-basic-auth",
        ),
        pytest.param(
            ["--url", "https://github.com/org/repo", "--bearer-token", "tok"],
            {"ca.pem": b"CA"},
            {"bearerToken": b"tok", "ca.crt": b"CA"},
            id="https-bearer-token-with-ca",
        ),
        pytest.param(
            ["--url", "https://git.example.com/repo"],
            {"ca.pem": b"CA", "tls.crt": b"CERT", "tls.key": b"KEY"},
            {"ca.crt": b"CA", "tls.crt": b"CERT", "tls.key": b"KEY"},
            id="https-client-certificate",
        ),
        pytest.param(
            ["--url", "ssh://git@github.com/org/repo", "--password", "passphrase"],
            {"id_ed25519": b"PRIVATE", "known_hosts": b"github.com ssh-ed25519 AAAA"},
            {
                "identity": b"PRIVATE",
                "known_hosts": b"github.com ssh-ed25519 AAAA",
                "password": b"passphrase",
            },
            id="ssh-key",
        ),
    ],
)
async def test_git_secret_uses_fluxs_keys(
    cli: Cli, bus: Bus, tmp_path: Path, flags: list[str], files: dict, expected: dict
):
    file_flags = {
        "ca.pem": "--ca-file",
        "tls.crt": "--cert-file",
        "tls.key": "--key-file",
        "id_ed25519": "--private-key-file",
        "known_hosts": "--known-hosts-file",
    }
    args = list(flags)
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        args += [file_flags[name], str(tmp_path / name)]
    result = await cli("create", "secret", "git", "git-auth", *args)
    assert result.code == 0, result.stderr
    assert (await stored(bus, "git-auth")).decoded() == expected


async def test_git_secret_for_ssh_needs_a_key_and_known_hosts(cli: Cli, bus: Bus):
    result = await cli(
        "create", "secret", "git", "x", "--url", "ssh://git@github.com/o/r", "--password", "pw1"
    )
    assert result.code == 1
    assert "--private-key-file and --known-hosts-file" in result.stderr
    assert "pw1" not in result.output
    assert await bus.list_secrets() == []


async def test_docker_registry_secret_holds_a_dockerconfigjson(fluxbus: Cli, bus: Bus):
    result = await fluxbus(
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "--docker-server",
        "ghcr.io",
        "--docker-username",
        "flux",
        "--docker-password",
        "hunter2",
        "-n",
        "apps",
    )
    assert result.code == 0, result.stderr
    doc = await bus.get_secret("apps", "regcred")
    assert doc is not None
    secret = Secret.model_validate(doc)
    assert secret.type == "kubernetes.io/dockerconfigjson"
    config = json.loads(secret.decoded()[".dockerconfigjson"])
    assert config["auths"]["ghcr.io"] == {
        "username": "flux",
        "password": "hunter2",
        "auth": base64.b64encode(b"flux:hunter2").decode(),
    }


async def test_export_prints_the_secret_instead_of_storing_it(cli: Cli, bus: Bus):
    result = await cli("create", "secret", "generic", "s", "--from-literal", "k=v", "--export")
    assert result.code == 0, result.stderr
    [doc] = list(yaml.safe_load_all(result.stdout))
    assert doc == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "flux-system"},
        "type": "Opaque",
        "data": {"k": "dg=="},
    }
    assert await bus.list_secrets() == []


async def test_check_passes_the_control_plane_and_names_services_not_running(fluxbus: Cli):
    result = await fluxbus("check")
    assert result.code == 1
    for line in (
        "✔ kubectl v",
        "✔ kustomize v",
        "✔ NATS reachable at nats://127.0.0.1:",
        "✔ JetStream enabled",
        "✔ bucket fluxbus-objects",
        "✔ bucket fluxbus-heartbeats",
        "✔ object store fluxbus-artifacts",
        "✔ stream FLUXBUS_EVENTS",
        "✔ stream FLUXBUS_LOGS",
        "✗ source: no live instance (is fluxbus-source running?",
        "✗ kustomize: no live instance",
        "✗ image-reflector: no live instance",
        "✗ notifier: no live instance",
        "✗ some checks failed",
    ):
        assert line in result.stderr


async def test_check_fails_clearly_when_nats_is_down():
    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    result = await run_fluxbus("check", url=url)
    assert result.code == 1
    assert f"✗ cannot connect to NATS at {url}" in result.stderr
    assert "Traceback" not in result.output


async def test_commands_fail_clearly_when_nats_is_down(nats_server):
    nats_server.stop()
    result = await run_fluxbus("get", "ks", url=nats_server.url)
    assert result.code == 1
    assert result.stderr.startswith(f"✗ cannot connect to NATS at {nats_server.url}")
    assert "Traceback" not in result.output


async def test_version_prints_the_package_version(cli: Cli):
    result = await cli("version")
    assert result.code == 0
    assert result.stdout.strip() == f"fluxbus {version('fluxbus')}"
