"""Pytest plugin for Helm: small charts, chart repositories over HTTP(S) and OCI pushes.

Register it with `pytest_plugins = ["fluxbus_helmsdk.testing"]` in the root conftest.

Helpers
-------
`make_chart(dir, name, version="0.1.0", templates=None, values=None) -> Path`
    A valid chart directory `dir/name`. Default templates: a ConfigMap and a
    Deployment named after the release (`.Values.replicaCount`,
    `.Values.image.tag`), a template that `fail`s when `.Values.fail` is true and
    one that uses `required` (`.Values.greeting`). `templates` ({file name under
    templates/: text}) replaces them; `values` is merged over the defaults.
`package_chart(chart_dir, dest) -> Path`
    `<name>-<version>.tgz` in `dest`, as `helm package` lays it out (pure Python).
`await push_oci(tgz, "oci://127.0.0.1:PORT/charts", auth=RegistryAuth(...))`
    The SDK's push (logged in when `auth` has a username); without `auth`, plain HTTP.
    With fluxbus_image's `registry` fixtures push to the registry itself,
    `oci://127.0.0.1:{registry.backend_port}/...`: their counting front does not
    rewrite the upload URLs the registry hands out (reads may go through the front).

Fixtures
--------
`helm_engine`           a started `HelmEngine` (2 workers), closed after the test. With
                        kubelite, ask for `kubelite` first: the engine must close before
                        kubelite stops (its workers keep connections to it open, and
                        kubelite's stop leaves such a connection's transport unclosed,
                        a ResourceWarning under filterwarnings=error).
`chart_repo`            a `ChartRepo` over plain HTTP, anonymous.
`chart_repo_factory`    `await chart_repo_factory(basic_auth=("user", "pass"), tls=False)`.
`ChartRepo`             `.url`, `.index_url`, `await .add(chart_dir) -> Path` (packages,
                        then re-indexes with the SDK's `helm repo index`), `.dir`, and with
                        TLS `.ca_file` / `.ca_pem` (a throw-away CA from fluxbus_git.testing).
"""

from __future__ import annotations

import base64
import hmac
import ssl
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest_asyncio
import yaml
from aiohttp import web

from fluxbus_git.testing.tls import TestCA

from .engine import HelmEngine
from .models import RegistryAuth, WorkerLimits

DEFAULT_VALUES: dict[str, Any] = {
    "replicaCount": 1,
    "image": {"repository": "nginx", "tag": "1.27.0"},
    "fail": False,
    "greeting": "hello",
}

DEFAULT_TEMPLATES: dict[str, str] = {
    "configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
  labels:
    app.kubernetes.io/instance: {{ .Release.Name }}
data:
  replicaCount: {{ .Values.replicaCount | quote }}
  tag: {{ .Values.image.tag | quote }}
  revision: {{ .Release.Revision | quote }}
""",
    "deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ .Release.Name }}
    spec:
      containers:
        - name: app
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
""",
    "fail.yaml": """\
{{- if .Values.fail }}
{{- fail "the values ask this chart to fail" }}
{{- end }}
""",
    "greeting.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-greeting
data:
  greeting: {{ required "greeting is required" .Values.greeting | quote }}
""",
}


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_chart(
    directory: str | Path,
    name: str,
    version: str = "0.1.0",
    templates: dict[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> Path:
    """Write a small valid chart at `directory/name`; returns its directory."""
    chart = Path(directory) / name
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    meta = {"apiVersion": "v2", "name": name, "version": version, "appVersion": "1.0.0"}
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (chart / "values.yaml").write_text(
        yaml.safe_dump(_merge(DEFAULT_VALUES, values or {}), sort_keys=False)
    )
    for old in (chart / "templates").iterdir():
        old.unlink()
    for filename, text in (DEFAULT_TEMPLATES if templates is None else templates).items():
        (chart / "templates" / filename).write_text(text)
    return chart


def package_chart(chart_dir: str | Path, dest: str | Path) -> Path:
    """`dest/<name>-<version>.tgz` of a chart directory, entries under `<name>/`."""
    chart_dir = Path(chart_dir)
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    name, version = str(meta["name"]), str(meta["version"])
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"{name}-{version}.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(chart_dir.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=f"{name}/{path.relative_to(chart_dir).as_posix()}")
    return archive


async def push_oci(
    tgz: str | Path,
    remote: str,
    *,
    auth: RegistryAuth | None = None,
    engine: HelmEngine | None = None,
) -> None:
    """Push a packaged chart to `remote` (`oci://host/path`) with the SDK."""
    auth = auth or RegistryAuth(plain_http=True)
    if engine is not None:
        await engine.oci_push(str(tgz), remote, auth=auth)
        return
    async with HelmEngine(WorkerLimits(workers=1)) as own:
        await own.oci_push(str(tgz), remote, auth=auth)


class ChartRepo:
    """A Helm chart repository (index.yaml + archives) served by aiohttp."""

    def __init__(
        self,
        directory: Path,
        engine: HelmEngine,
        *,
        basic_auth: tuple[str, str] | None = None,
        ca: TestCA | None = None,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.basic_auth = basic_auth
        self.ca = ca
        self.requests: list[str] = []
        self._engine = engine
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def index_url(self) -> str:
        return f"{self.url}/index.yaml"

    @property
    def ca_pem(self) -> bytes | None:
        return None if self.ca is None else self.ca.ca_pem

    @property
    def ca_file(self) -> str | None:
        return None if self.ca is None else str(self.ca.path("ca.crt"))

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests.append(request.path)
        if self.basic_auth is not None:
            user, password = self.basic_auth
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="charts"'})
        return await handler(request)

    async def start(self) -> ChartRepo:
        app = web.Application(middlewares=[self._guard])
        app.router.add_static("/", self.dir)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        context: ssl.SSLContext | None = None
        if self.ca is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.ca.path("server.crt"), self.ca.path("server.key"))
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"{'https' if context else 'http'}://127.0.0.1:{port}"
        await self.reindex()
        return self

    async def reindex(self) -> dict[str, Any]:
        """(Re)write index.yaml for the archives in the directory with the SDK."""
        return await self._engine.repo_index(str(self.dir), base_url=self.url)

    async def add(self, chart_dir: str | Path) -> Path:
        """Package `chart_dir` into the repository and re-index; the archive's path."""
        archive = package_chart(chart_dir, self.dir)
        await self.reindex()
        return archive

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest_asyncio.fixture
async def helm_engine() -> AsyncIterator[HelmEngine]:
    """A started HelmEngine with two workers."""
    async with HelmEngine(WorkerLimits(workers=2, timeout=60.0)) as engine:
        yield engine


ChartRepoFactory = Callable[..., Awaitable[ChartRepo]]


@pytest_asyncio.fixture
async def chart_repo_factory(
    tmp_path: Path, helm_engine: HelmEngine
) -> AsyncIterator[ChartRepoFactory]:
    """`await make(basic_auth=None, tls=False) -> ChartRepo`, closed after the test."""
    repos: list[ChartRepo] = []

    async def make(*, basic_auth: tuple[str, str] | None = None, tls: bool = False) -> ChartRepo:
        base = tmp_path / f"chart-repo-{len(repos)}"
        ca = TestCA.create(base / "tls") if tls else None
        repo = ChartRepo(base / "www", helm_engine, basic_auth=basic_auth, ca=ca)
        repos.append(repo)
        return await repo.start()

    yield make
    for repo in repos:
        await repo.close()


@pytest_asyncio.fixture
async def chart_repo(chart_repo_factory: ChartRepoFactory) -> ChartRepo:
    """An anonymous chart repository over plain HTTP."""
    return await chart_repo_factory()


__all__ = [
    "DEFAULT_TEMPLATES",
    "DEFAULT_VALUES",
    "ChartRepo",
    "chart_repo",
    "chart_repo_factory",
    "helm_engine",
    "make_chart",
    "package_chart",
    "push_oci",
]
