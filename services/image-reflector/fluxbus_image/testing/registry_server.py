"""A real `docker-registry` (Docker Distribution 2.8) child process for tests, and pushing to it.

Test support, not production code. `RegistryServer(dir, auth=..., tls=...)`:

- `auth`: "none" (anonymous), "htpasswd" (Basic, a bcrypt htpasswd file made
  with `htpasswd -B`), or "token" (Bearer, with a `TokenServer` the registry
  trusts through `auth.token.rootcertbundle`);
- `tls`: a `TestCA` → the registry itself serves https with the CA's server
  certificate (`require_client_cert=True`: mTLS, the CA verifies clients).
  Without TLS a `RegistryFront` stands in front: it counts requests and pages
  tag lists (Distribution 2.8 ignores `n`); `front_host="127.0.0.2"` puts it
  on a loopback address go-containerregistry's localhost heuristic does not
  cover (so only `insecure: true` allows plain http there).

`host` is what an image name starts with (`image("app")` → `127.0.0.1:PORT/app`),
`username`/`password` the account, `requests`/`counts`/`reset_counters()`
the front's counters. `push_tag(repo, tag)` uploads a tiny config blob and an
OCI manifest through the HTTP API and returns the manifest digest;
`push_tags(repo, tags)` pushes many tags of one manifest concurrently
(`via_storage=True`: 10 000 tags in about a second). Pushes go to the registry directly, never through the front, so
they do not count.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import http.client
import json
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Literal

from fluxbus_git.testing.network import free_port
from fluxbus_git.testing.tls import TestCA
from fluxbus_image.testing.front import RegistryFront
from fluxbus_image.testing.token_server import ISSUER, SERVICE, TokenServer

AuthMode = Literal["none", "htpasswd", "token"]
BINARY = "docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
START_TIMEOUT = 15.0
"""Seconds the registry may take to answer /v2/ after it was started."""


def registry_binary() -> str | None:
    """Path of the `docker-registry` executable (Debian package `docker-registry`), or None."""
    return shutil.which(BINARY)


class RegistryServer:
    """A `docker-registry serve` on 127.0.0.1 with storage under `directory` (see module doc)."""

    def __init__(
        self,
        directory: Path,
        *,
        auth: AuthMode = "none",
        tls: TestCA | None = None,
        require_client_cert: bool = False,
        username: str = "fluxbus",
        password: str = "s3cr3t-registry-pa55",
        token_expires_in: int | None = 300,
        front_host: str = "127.0.0.1",
    ) -> None:
        self.dir = directory
        self.auth = auth
        self.tls = tls
        self.require_client_cert = require_client_cert
        self.username = username
        self.password = password
        self.backend_port = free_port()
        self.token_server: TokenServer | None = None
        if auth == "token":
            self.token_server = TokenServer(
                directory / "token", {username: password}, expires_in=token_expires_in
            )
        self.front: RegistryFront | None = (
            None if tls else RegistryFront(self.backend_port, bind=front_host)
        )
        self._proc: subprocess.Popen[bytes] | None = None
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._connections_lock = threading.Lock()

    # -- addresses and counters ---------------------------------------------------------------

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT` as clients reach it (the front, or the TLS registry itself)."""
        if self.front is not None:
            return f"{self.front.bind}:{self.front.port}"
        return f"127.0.0.1:{self.backend_port}"

    def image(self, repository: str) -> str:
        return f"{self.host}/{repository}"

    @property
    def requests(self) -> int:
        """Requests the front received (0 with TLS: no front there)."""
        return self.front.requests if self.front is not None else 0

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.front.counts) if self.front is not None else {}

    def reset_counters(self) -> None:
        if self.front is not None:
            self.front.reset_counters()
        if self.token_server is not None:
            with self.token_server.lock:
                self.token_server.requests = self.token_server.tokens = 0

    def docker_config(self, key: str | None = None) -> dict[str, bytes]:
        """A Docker config Secret's (decoded) data for this registry's account."""
        auth = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        doc = {"auths": {key or self.host: {"auth": auth}}}
        return {".dockerconfigjson": json.dumps(doc).encode()}

    # -- lifecycle -----------------------------------------------------------------------------

    def _config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.dir / 'data'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.backend_port}",
            "  secret: fluxbus-test-http-secret",
        ]
        if self.tls is not None:
            lines += [
                "  tls:",
                f"    certificate: {self.tls.path('server.crt')}",
                f"    key: {self.tls.path('server.key')}",
            ]
            if self.require_client_cert:
                lines += ["    clientcas:", f"      - {self.tls.path('ca.crt')}"]
        if self.auth == "htpasswd":
            htpasswd = self.dir / "htpasswd"
            out = subprocess.run(
                ["htpasswd", "-Bbn", self.username, self.password],
                check=True,
                capture_output=True,
            ).stdout
            htpasswd.write_bytes(out)
            lines += ["auth:", "  htpasswd:", "    realm: fluxbus-test", f"    path: {htpasswd}"]
        elif self.token_server is not None:
            lines += [
                "auth:",
                "  token:",
                f"    realm: {self.token_server.realm}",
                f"    service: {SERVICE}",
                f"    issuer: {ISSUER}",
                f"    rootcertbundle: {self.token_server.cert_path}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> RegistryServer:
        binary = registry_binary()
        if binary is None:
            raise RuntimeError(
                "docker-registry not found: install the Debian package 'docker-registry'"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.token_server is not None:
            self.token_server.start()
        config = self.dir / "config.yml"
        config.write_text(self._config())
        log = (self.dir / "registry.log").open("wb")
        self._proc = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self._wait_ready()
        if self.front is not None:
            self.front.start()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                log = (self.dir / "registry.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"docker-registry exited with {self._proc.returncode}: {log}")
            try:
                status, _, _ = self._backend("GET", "/v2/", auth=False)
                if status in (200, 401):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not answer /v2/ in {START_TIMEOUT}s")
            time.sleep(0.02)  # polling a port: a child process offers no readiness event

    def stop(self) -> None:
        self.close_connections()
        if self.front is not None:
            self.front.stop()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self.token_server is not None:
            self.token_server.stop()

    # -- pushing -------------------------------------------------------------------------------

    def _ssl(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        context = ssl.create_default_context(cadata=self.tls.ca_pem.decode())
        if self.require_client_cert:
            context.load_cert_chain(self.tls.path("client.crt"), self.tls.path("client.key"))
        return context

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            context = self._ssl()
            if context is not None:
                conn = http.client.HTTPSConnection(
                    "127.0.0.1", self.backend_port, timeout=30, context=context
                )
            else:
                conn = http.client.HTTPConnection("127.0.0.1", self.backend_port, timeout=30)
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def close_connections(self) -> None:
        """Close the push connections (every thread's); the next push opens new ones."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def _authorization(self, repository: str) -> dict[str, str]:
        if self.auth == "htpasswd":
            basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        if self.token_server is not None:
            token = self.token_server.mint([f"repository:{repository}:pull,push"])
            return {"Authorization": f"Bearer {token}"}
        return {}

    def _backend(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        repository: str = "",
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        all_headers = dict(headers or {})
        if auth:
            all_headers.update(self._authorization(repository))
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=all_headers)
                resp = conn.getresponse()
                return resp.status, resp.headers, resp.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _push_blob(self, repository: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, headers, body = self._backend(
            "POST", f"/v2/{repository}/blobs/uploads/", repository=repository
        )
        if status != 202:
            raise RuntimeError(f"blob upload to {repository}: HTTP {status}: {body[:200]!r}")
        location = headers["Location"]
        parts = location.split("://", 1)[-1]
        path = parts[parts.index("/") :] if "://" in location else location
        sep = "&" if "?" in path else "?"
        status, _, body = self._backend(
            "PUT",
            f"{path}{sep}digest={digest}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
            repository=repository,
        )
        if status != 201:
            raise RuntimeError(f"blob upload to {repository}: HTTP {status}: {body[:200]!r}")
        return digest

    def _manifest(self, repository: str, label: str) -> bytes:
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"fluxbus": label}},
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        ).encode()
        digest = self._push_blob(repository, config)
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "layers": [],
                "config": {"mediaType": OCI_CONFIG, "digest": digest, "size": len(config)},
            }
        ).encode()

    def _put_manifest(self, repository: str, tag: str, manifest: bytes) -> str:
        status, headers, body = self._backend(
            "PUT",
            f"/v2/{repository}/manifests/{tag}",
            body=manifest,
            headers={"Content-Type": OCI_MANIFEST},
            repository=repository,
        )
        if status != 201:
            raise RuntimeError(f"manifest {repository}:{tag}: HTTP {status}: {body[:200]!r}")
        return str(headers["Docker-Content-Digest"])

    def push_tag(self, repository: str, tag: str) -> str:
        """Push an image whose config names `tag` (so each tag has its own digest); its digest."""
        return self._put_manifest(repository, tag, self._manifest(repository, tag))

    def push_tags(
        self, repository: str, tags: list[str], workers: int = 8, *, via_storage: bool = False
    ) -> str:
        """Point every tag at one manifest; returns the manifest digest.

        Through the HTTP API, `workers` PUTs at a time (about 2-3 ms of registry
        CPU per tag). `via_storage=True` PUTs the first tag only and writes the
        other tags' links straight into the registry's filesystem storage (the
        two files a manifest PUT by tag writes), for 10 000-tag benchmarks:
        the registry then lists and serves them like pushed tags.
        """
        if not tags:
            return ""
        manifest = self._manifest(repository, "shared")
        if via_storage:
            digest = self._put_manifest(repository, tags[0], manifest)
            self._link_tags(repository, tags[1:], digest)
            return digest
        try:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                push = pool.map(lambda t: self._put_manifest(repository, t, manifest), tags)
                digests = set(push)
        finally:
            self.close_connections()
        return digests.pop()

    def _link_tags(self, repository: str, tags: list[str], digest: str) -> None:
        algorithm, _, hex_digest = digest.partition(":")
        base = self.dir / "data/docker/registry/v2/repositories" / repository / "_manifests/tags"
        for tag in tags:
            current = base / tag / "current"
            index = base / tag / "index" / algorithm / hex_digest
            current.mkdir(parents=True, exist_ok=True)
            index.mkdir(parents=True, exist_ok=True)
            (current / "link").write_text(digest)
            (index / "link").write_text(digest)
