"""Git smart HTTP(S) on 127.0.0.1: `git http-backend` (or dulwich) behind a threaded HTTP/1.1 server.

Test support, not production code. Basic or bearer auth, HTTPS with a
`TestCA` certificate, mTLS; counters of ref listings, fetches, pushes and
requests for "polling costs one request" tests; `stop()`/`start()` on the
same port for outage tests. Pushes (receive-pack) are accepted from
authenticated clients, as `git http-backend` does by default; `receive_pack`
and `push_options` change that.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hmac
import io
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fluxbus_git.testing.network import free_port
from fluxbus_git.testing.repos import GitRepo
from fluxbus_git.testing.tls import TestCA


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str


@dataclass(frozen=True)
class BearerAuth:
    token: str


@dataclass
class _Counters:
    requests: int = 0
    ref_listings: int = 0
    fetches: int = 0
    pushes: int = 0
    busy_seconds: float = 0.0
    """Time spent inside request handlers (lets benchmarks split server from client time)."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle
    # plus the client's delayed ACK adds ~40 ms to every response.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        pass

    def _unauthorized(self) -> None:
        body = b"authentication required\n"
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="fluxbus"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        auth = self.server.owner.auth
        if auth is None:
            return True
        got = self.headers.get("Authorization", "")
        if isinstance(auth, BasicAuth):
            want = "Basic " + base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        else:
            want = f"Bearer {auth.token}"
        return hmac.compare_digest(got.encode(), want.encode())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        owner = self.server.owner
        body = self._read_body() if self.command == "POST" else b""
        with owner.counters.lock:
            owner.counters.requests += 1
        if not self._authorized():
            self._unauthorized()
            return
        path, _, query = self.path.partition("?")
        if path.endswith("/info/refs") and "service=git-upload-pack" in query:
            # In protocol v2 this only advertises capabilities; ls-refs is a POST.
            if "version=2" not in self.headers.get("Git-Protocol", ""):
                with owner.counters.lock:
                    owner.counters.ref_listings += 1
        elif path.endswith("/git-upload-pack"):
            plain = body
            if self.headers.get("Content-Encoding", "") == "gzip":
                with contextlib.suppress(OSError):
                    plain = gzip.decompress(body)
            with owner.counters.lock:
                if b"command=ls-refs" in plain[:64]:
                    owner.counters.ref_listings += 1
                else:
                    owner.counters.fetches += 1
        elif path.endswith("/git-receive-pack"):
            with owner.counters.lock:
                owner.counters.pushes += 1
        try:
            if owner.backend == "dulwich":
                status, headers, payload = owner._serve_dulwich(self, path, query, body)
            else:
                status, headers, payload = owner._serve_cgi(self, path, query, body)
        except Exception as e:  # the backend refused the request: answer like a CGI 500
            status, headers = 500, [("Content-Type", "text/plain")]
            payload = f"{type(e).__name__}: {e}\n".encode()
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _timed(self) -> None:
        start = time.perf_counter()
        try:
            self._handle()
        finally:
            with self.server.owner.counters.lock:
                self.server.owner.counters.busy_seconds += time.perf_counter() - start

    def do_GET(self) -> None:
        self._timed()

    def do_POST(self) -> None:
        self._timed()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: GitHTTPServer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        ctx = self.owner._ssl_context
        if ctx is not None:
            # Handshake lazily in the request thread, so one bad client cannot block accept().
            sock = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.owner._conn_lock:
            self.owner._connections.add(sock)
        return sock, addr

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self.owner._conn_lock:
                self.owner._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        pass  # TLS failures and client resets are expected in the negative tests


class GitHTTPServer:
    """Git smart HTTP(S) on 127.0.0.1 serving every bare repo under `root`.

    `auth`: None, `BasicAuth` or `BearerAuth`; `tls`: a `TestCA` to serve
    HTTPS with its server certificate; `require_client_cert`: mTLS;
    `backend`: "git" (`git http-backend` as CGI: the real thing, one fork
    per request) or "dulwich" (dulwich's WSGI server in-process, no fork;
    protocol v0/v1 only). `receive_pack`: None keeps git's default (pushes
    only from authenticated clients), True/False allows/forbids them for
    everyone (`http.receivepack`); `push_options`: advertise push options
    (`receive.advertisePushOptions`; git backend only).
    """

    def __init__(
        self,
        root: Path,
        auth: BasicAuth | BearerAuth | None = None,
        tls: TestCA | None = None,
        require_client_cert: bool = False,
        port: int = 0,
        backend: str = "git",
        receive_pack: bool | None = None,
        push_options: bool = False,
    ) -> None:
        self.root = root
        self.receive_pack = receive_pack
        self.push_options = push_options
        self.auth = auth
        self.tls = tls
        self.backend = backend
        self._wsgi: Callable[..., Any] | None = None
        self._dulwich_repos: dict[str, Any] = {}
        self.port = port or free_port()
        self.counters = _Counters()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls.path("server.crt"), tls.path("server.key"))
            if require_client_cert:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(cafile=str(tls.path("ca.crt")))
            self._ssl_context = ctx

    def _serve_cgi(
        self, handler: _Handler, path: str, query: str, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Run `git http-backend` as CGI for one request."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": handler.command,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": handler.client_address[0],
            "REMOTE_USER": "fluxbus" if self.auth else "",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.root),
        }
        config: list[tuple[str, str]] = []
        if self.receive_pack is not None:
            config.append(("http.receivepack", "true" if self.receive_pack else "false"))
        if self.push_options:
            config.append(("receive.advertisePushOptions", "true"))
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
        if enc := handler.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = enc
        if proto := handler.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = proto
        proc = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        out = proc.stdout
        sep = out.find(b"\r\n\r\n")
        head, payload = (out[:sep], out[sep + 4 :]) if sep >= 0 else out.split(b"\n\n", 1)
        status, headers = 200, []
        for line in head.splitlines():
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        return status, headers, payload

    def _serve_dulwich(
        self, handler: _Handler, path: str, query: str, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Serve one request in-process with dulwich's WSGI application (no fork)."""
        if self._wsgi is None:
            from dulwich.server import BackendRepo, FileSystemBackend
            from dulwich.web import make_wsgi_chain

            opened = self._dulwich_repos

            class RootBackend(FileSystemBackend):
                # dulwich joins the URL path as absolute; serve it relative to root,
                # and keep one Repo per path so they can be closed at stop().
                def open_repository(self, path: str) -> BackendRepo:
                    # Annotated `str`, but dulwich's service handlers pass bytes.
                    raw: str | bytes = path
                    key = (os.fsdecode(raw) if isinstance(raw, bytes) else raw).strip("/")
                    if key not in opened:
                        opened[key] = super().open_repository(key)
                    repo: BackendRepo = opened[key]
                    return repo

            self._wsgi = make_wsgi_chain(RootBackend(str(self.root)))
        environ = {
            "REQUEST_METHOD": handler.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.url_scheme": "https" if self.tls else "http",
        }
        if enc := handler.headers.get("Content-Encoding"):
            environ["HTTP_CONTENT_ENCODING"] = enc
        out: list[bytes] = []
        answer: list[tuple[int, list[tuple[str, str]]]] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: object = None
        ) -> Callable[[bytes], None]:
            answer.append((int(status.split()[0]), headers))
            return out.append

        result = self._wsgi(environ, start_response)
        try:
            out.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = answer[-1]
        return status, list(headers), b"".join(out)

    # -- counters -------------------------------------------------------------
    @property
    def requests(self) -> int:
        return self.counters.requests

    @property
    def ref_listings(self) -> int:
        return self.counters.ref_listings

    @property
    def fetches(self) -> int:
        return self.counters.fetches

    @property
    def pushes(self) -> int:
        """receive-pack requests (a push's ref advertisement is not one)."""
        return self.counters.pushes

    def reset_counters(self) -> None:
        with self.counters.lock:
            self.counters.requests = self.counters.ref_listings = self.counters.fetches = 0
            self.counters.pushes = 0
            self.counters.busy_seconds = 0.0

    # -- credentials helpers -----------------------------------------------------
    @property
    def username(self) -> str:
        assert isinstance(self.auth, BasicAuth)
        return self.auth.username

    @property
    def password(self) -> str:
        assert isinstance(self.auth, BasicAuth)
        return self.auth.password

    @property
    def token(self) -> str:
        assert isinstance(self.auth, BearerAuth)
        return self.auth.token

    @property
    def ca(self) -> TestCA:
        assert self.tls is not None
        return self.tls

    # -- lifecycle ------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def url(self, repo: GitRepo | str) -> str:
        """The clone URL of a repository under `root`."""
        name = repo.name if isinstance(repo, GitRepo) else repo
        return f"{self.base_url}/{name}.git"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> GitHTTPServer:
        """Listen (again) on `port` and serve in a background thread."""
        if self._server is not None:
            return self
        server = _HTTPServer(("127.0.0.1", self.port), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"git-http-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; `start()` brings the server back on the same port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        # Drop keep-alive connections too: a stopped server must look down to clients.
        with self._conn_lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        for repo in self._dulwich_repos.values():
            repo.close()
        self._dulwich_repos.clear()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> GitHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
