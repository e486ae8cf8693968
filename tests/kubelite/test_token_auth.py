"""kubelite is locked: it serves HTTPS and answers 401 to any API request
without the bearer token it wrote into its kubeconfig (DELETE included), while
the real kubectl and kubernetes-asyncio, reading that kubeconfig, work. It
listens on loopback unless told otherwise, and a port in use is one line."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubelite_helpers import configmap, wait_until
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

from fluxbus_common.entrypoint import EXIT_SETTINGS
from fluxbus_common.testing.plugin import free_port
from fluxbus_common.testing.sockets import listening_hosts
from fluxbus_kubelite import KubeliteServer
from fluxbus_kubelite.__main__ import choose_token
from fluxbus_kubelite.access import Access
from fluxbus_kubelite.server import new_token
from fluxbus_kubelite.testing import KubeliteHandle
from fluxbus_kubelite.tls import ServerTLS, load_or_issue

UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


def tls_only(kl: KubeliteHandle) -> aiohttp.ClientSession:
    """A client that trusts the server but sends no token of its own."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=kl.ssl))


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-token"),
        pytest.param("Bearer not-the-token", id="wrong-token"),
        pytest.param("Bearer ", id="empty-token"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic-auth"),
        pytest.param("kubelite", id="token-without-scheme"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/api/v1/namespaces", id="list"),
        pytest.param("DELETE", "/api/v1/namespaces/{ns}", id="delete"),
        pytest.param("POST", "/api/v1/namespaces/{ns}/configmaps", id="create"),
        pytest.param("GET", "/version", id="version"),
        pytest.param("GET", "/metrics", id="metrics"),
    ],
)
async def test_requests_without_the_token_are_unauthorized(
    kl: KubeliteHandle, ns: str, authorization: str | None, method: str, path: str
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with tls_only(kl) as http:
        async with http.request(
            method, kl.url + path.format(ns=ns), json=configmap("c"), headers=headers
        ) as r:
            assert r.status == 401
            assert await r.json() == UNAUTHORIZED
    assert kl.kubectl("get", "namespace", ns).returncode == 0  # DELETE did nothing


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/livez"])
async def test_health_probes_need_no_token(kl: KubeliteHandle, path: str) -> None:
    async with tls_only(kl) as http:
        async with http.get(kl.url + path) as r:
            assert r.status == 200


async def test_the_token_lets_a_raw_client_delete(kl: KubeliteHandle, ns: str) -> None:
    async with kl.session() as http:
        async with http.delete(f"{kl.url}/api/v1/namespaces/{ns}") as r:
            assert r.status == 200


def test_kubectl_with_the_written_kubeconfig_works_and_a_wrong_token_does_not(
    kl: KubeliteHandle, ns: str, tmp_path: Path
) -> None:
    assert kl.kubectl("-n", ns, "create", "configmap", "c").returncode == 0
    assert kl.kubectl("-n", ns, "delete", "configmap", "c").returncode == 0
    cfg = yaml.safe_load(Path(kl.kubeconfig).read_text())
    cfg["users"][0]["user"]["token"] = "stolen-or-guessed"
    wrong = tmp_path / "wrong"
    wrong.write_text(yaml.safe_dump(cfg))
    res = kl.kubectl(f"--kubeconfig={wrong}", "-n", ns, "get", "configmaps")
    assert res.returncode != 0
    assert "Unauthorized" in res.stderr or "provide credentials" in res.stderr


def test_the_kubeconfig_is_readable_by_its_owner_only(kl: KubeliteHandle) -> None:
    assert stat.S_IMODE(os.stat(kl.kubeconfig).st_mode) == 0o600


async def test_kubernetes_asyncio_from_the_kubeconfig_works_and_a_wrong_token_does_not(
    tmp_path: Path,
) -> None:
    kc = tmp_path / "kc"
    async with KubeliteServer(port=0, kubeconfig=kc, simulate=False):
        api = await config.new_client_from_config(config_file=str(kc))
        try:
            core = client.CoreV1Api(api)
            await core.create_namespace(client.V1Namespace(metadata={"name": "scratch"}))
            await core.delete_namespace("scratch")
        finally:
            await api.close()
        cfg = yaml.safe_load(kc.read_text())
        cfg["users"][0]["user"]["token"] = new_token()
        (tmp_path / "wrong").write_text(yaml.safe_dump(cfg))
        api = await config.new_client_from_config(config_file=str(tmp_path / "wrong"))
        try:
            with pytest.raises(ApiException) as caught:
                await client.CoreV1Api(api).delete_namespace("default")
            assert caught.value.status == 401
        finally:
            await api.close()


@pytest.mark.parametrize(
    ("env", "in_kubeconfig", "expected"),
    [
        pytest.param({"FLUXBUS_KUBELITE_TOKEN": "given"}, "x" * 43, "given", id="env-wins"),
        pytest.param({}, "x" * 43, "x" * 43, id="kept-across-restarts"),
        pytest.param({}, "kubelite", None, id="old-well-known-token-replaced"),
        pytest.param({}, None, None, id="new-when-none"),
    ],
)
def test_the_command_line_token_is_the_env_then_the_kubeconfig_one(
    tmp_path: Path, env: dict[str, str], in_kubeconfig: str | None, expected: str | None
) -> None:
    kc = tmp_path / "kc"
    if in_kubeconfig is not None:
        users = [{"name": "kubelite", "user": {"token": in_kubeconfig}}]
        kc.write_text(yaml.safe_dump({"users": users}))
    assert choose_token(str(kc), env) == expected


def test_saved_tls_is_reused_while_it_covers_the_names(tmp_path: Path) -> None:
    path = tmp_path / "tls.pem"
    first = load_or_issue(path, ["kubelite"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_issue(path, ["kubelite"]) == first
    other = load_or_issue(path, ["elsewhere.example"])
    assert other != first and other.covers(["127.0.0.1", "localhost", "elsewhere.example"])
    assert "PRIVATE" not in repr(ServerTLS.load(path))


def run_kubelite(*args: str, tmp_path: Path, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fluxbus_kubelite", "--kubeconfig", str(tmp_path / "kc"), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_the_command_line_listens_on_loopback_only_by_default(tmp_path: Path) -> None:
    proc = run_kubelite("--port", "0", "--no-simulate", tmp_path=tmp_path)
    try:
        wait_until(lambda: (tmp_path / "kc").exists(), timeout=30)
        url = Access.from_kubeconfig(tmp_path / "kc").url
        assert url.startswith("https://127.0.0.1:")
        assert listening_hosts(int(url.rpartition(":")[2])) == {"127.0.0.1"}
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_a_busy_port_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = run_kubelite("--port", str(port), "--no-simulate", tmp_path=tmp_path)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_SETTINGS
    assert err.strip().splitlines() == [
        f"fluxbus-kubelite: cannot listen on 127.0.0.1:{port}: address already in use; "
        "pass --port (0 picks a free one) or --host"
    ]


def test_a_server_url_for_other_machines_is_in_the_kubeconfig_and_the_certificate(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc = run_kubelite(
        "--port", str(port), "--host", "0.0.0.0", "--server-url", "https://kubelite:6443",
        "--no-simulate", tmp_path=tmp_path,
    )  # fmt: skip
    try:
        wait_until(lambda: (tmp_path / "kc").exists(), timeout=30)
        access = Access.from_kubeconfig(tmp_path / "kc")
        assert access.url == "https://kubelite:6443"
        # a client reaching it as "kubelite" verifies the certificate with the kubeconfig's CA
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            access.ssl().wrap_socket(raw, server_hostname="kubelite") as tls,
        ):
            assert tls.version()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
