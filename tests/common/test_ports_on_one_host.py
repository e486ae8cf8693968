"""Services on one host: each has its own /healthz /metrics port, bound to
loopback by default, and a port already taken is one line on stderr naming the
variable to set (exit code 2), never a traceback. Real service processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from fluxbus_common.entrypoint import EXIT_SETTINGS, find_listen_error
from fluxbus_common.httpserver import ListenError
from fluxbus_common.settings import RuntimeSettings
from fluxbus_common.testing.plugin import NatsServer, wait_for
from fluxbus_common.testing.sockets import listening_hosts
from fluxbus_helm import settings as helm_settings
from fluxbus_image import settings as image_settings
from fluxbus_kustomize import settings as kustomize_settings
from fluxbus_notifier import settings as notifier_settings
from fluxbus_source import settings as source_settings

DEFAULTS = {
    "fluxbus-source": source_settings.DEFAULT_HTTP_ADDR,
    "fluxbus-kustomize": kustomize_settings.DEFAULT_HTTP_ADDR,
    "fluxbus-image-reflector": image_settings.DEFAULT_HTTP_ADDR,
    "fluxbus-notifier": notifier_settings.DEFAULT_HTTP_ADDR,
    "fluxbus-helm": helm_settings.DEFAULT_HTTP_ADDR,
}


def service_env(nats_url: str, **extra: str) -> dict[str, str]:
    """The environment of a service started as a user would: no FLUXBUS_* but NATS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUXBUS_")}
    return {**env, "FLUXBUS_NATS_URL": nats_url, **extra}


def command(name: str) -> list[str]:
    return [str(Path(sys.executable).parent / name)]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 some other program is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_every_service_has_its_own_loopback_port() -> None:
    ports = {addr.rpartition(":")[2] for addr in DEFAULTS.values()}
    assert len(ports) == len(DEFAULTS)
    assert {addr.rpartition(":")[0] for addr in DEFAULTS.values()} == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, "127.0.0.1:9790", id="the-service-default"),
        pytest.param({"FLUXBUS_HTTP_ADDR": "0.0.0.0:8080"}, "0.0.0.0:8080", id="overridden"),
        pytest.param({"FLUXBUS_HTTP_ADDR": ""}, "", id="disabled"),
    ],
)
def test_the_http_address_is_the_service_default_unless_set(
    env: dict[str, str], expected: str
) -> None:
    settings = RuntimeSettings.from_env(env, default_http_addr=source_settings.DEFAULT_HTTP_ADDR)
    assert settings.http_addr == expected


def test_a_runtime_without_a_service_default_listens_on_loopback_only() -> None:
    assert RuntimeSettings.from_env({}).http_addr.startswith("127.0.0.1:")


def test_a_listen_error_is_found_inside_the_groups_a_task_group_raises() -> None:
    error = ListenError("127.0.0.1:9292", "FLUXBUS_RECEIVER_ADDR", "address already in use")
    nested = ExceptionGroup("outer", [ValueError("x"), ExceptionGroup("inner", [error])])
    assert find_listen_error(nested) is error
    assert find_listen_error(ExceptionGroup("other", [ValueError("x")])) is None
    assert str(error) == (
        "cannot listen on 127.0.0.1:9292: address already in use; "
        "set FLUXBUS_RECEIVER_ADDR to a free host:port"
    )


async def test_two_services_with_default_settings_run_side_by_side(nats_server: NatsServer) -> None:
    url = nats_server.url
    names = ["fluxbus-source", "fluxbus-image-reflector"]
    procs = [
        await asyncio.create_subprocess_exec(
            *command(name),
            env=service_env(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in names
    ]
    try:
        async with aiohttp.ClientSession() as http:

            async def healthy(addr: str) -> bool:
                assert all(p.returncode is None for p in procs), "a service exited"
                try:
                    async with http.get(f"http://{addr}/healthz") as r:
                        return r.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            for name in names:
                await wait_for(lambda n=name: healthy(DEFAULTS[n]), timeout=30, message=name)
        for name in names:
            assert listening_hosts(int(DEFAULTS[name].rpartition(":")[2])) == {"127.0.0.1"}
    finally:
        for p in procs:
            if p.returncode is None:
                p.terminate()
        async with asyncio.timeout(30):
            codes = [await p.wait() for p in procs]
    assert codes == [0, 0]


@pytest.mark.parametrize(
    ("service", "variable", "other"),
    [
        pytest.param("fluxbus-source", "FLUXBUS_HTTP_ADDR", {}, id="health-port"),
        pytest.param(
            "fluxbus-notifier",
            "FLUXBUS_RECEIVER_ADDR",
            {"FLUXBUS_HTTP_ADDR": "127.0.0.1:0"},
            id="receiver-port",
        ),
    ],
)
async def test_a_busy_port_is_one_line_naming_the_variable_to_set(
    nats_server: NatsServer, busy_port: int, service: str, variable: str, other: dict[str, str]
) -> None:
    url = nats_server.url
    env = service_env(url, **other, **{variable: f"127.0.0.1:{busy_port}"})
    ran = await asyncio.to_thread(
        subprocess.run, command(service), env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == EXIT_SETTINGS
    assert "Traceback" not in ran.stderr + ran.stdout
    assert ran.stderr.strip().splitlines() == [
        f"{service}: cannot listen on 127.0.0.1:{busy_port}: address already in use; "
        f"set {variable} to a free host:port"
    ]
