"""Pytest fixtures serving real Git repositories (smart HTTP, HTTPS, mTLS, SSH).

Test support, not production code: it may import dulwich and start
processes. Registered as a pytest plugin by `tests/conftest.py`, so every
package's tests (source, kustomize, image automation, the demo) can use it.

Building repositories (bare, in `tmp_path`, with dulwich; no working tree):

    def test_x(git_repo):                       # an empty bare repo named "repo"
        sha = git_repo.commit({"app/deploy.yaml": "kind: Deployment\\n"})
        git_repo.commit({"README.md": None}, branch="main")      # None deletes; a new branch
                                                                  # starts from master's tip
        git_repo.commit({"run.sh": File("#!/bin/sh\\n", executable=True), "l": Symlink("run.sh")})
        git_repo.commit_directory(Path("examples"), branch="main")   # a whole folder, as is
        git_repo.tag("v1.0.0", annotated=True)
        git_repo.head("master"), git_repo.refs()

    other = git_repo_factory("other")           # more repositories in the same root

Serving them (all on 127.0.0.1, free ports, real sockets):

    git_http_server                  smart HTTP, anonymous (`git http-backend`)
    git_http_basic_server            basic auth: .username / .password
    git_http_bearer_server           bearer token: .token
    git_https_server                 HTTPS with a test CA: .ca.ca_pem
    git_https_mtls_server            HTTPS requiring a client cert: .ca.client_cert_pem/.client_key_pem
    git_ssh_server                   real sshd: .identity, .identity_encrypted (+ .passphrase),
                                     .known_hosts, .username (keys made once per session:
                                     `git_ssh_keys`; `GitSSHServer(root, dir, keys=...)`)
    http_proxy                       forward proxy (CONNECT too) with basic auth: .address,
                                     .auth, counters .requests/.tunnels
    git_http_server_factory(...)     any combination (auth=, tls=, require_client_cert=,
                                     backend="git" | "dulwich" (in-process, protocol v0 only))

Each server has `url(repo)` (repo: a `GitRepo` or a name), `stop()`,
`start()` (same port again: for "the server comes back" tests), and
counters `ref_listings` (ref advertisements/ls-refs served), `fetches`
(upload-pack requests that sent objects or negotiated them) and
`requests`; SSH counts `sessions` and `fetches` (upload-pack runs).
`reset_counters()` zeroes them; `counters.busy_seconds` is the HTTP
server's own handler time (for benchmarks). `test_ca` (a `TestCA`) holds
PEM bytes for a CA, a 127.0.0.1 server certificate, a client certificate
and an unrelated CA (`other_ca_pem`) for negative tests.

For a GitRepository secret: basic `{"username": s.username, "password":
s.password}`, bearer `{"bearerToken": s.token}`, HTTPS `{"ca.crt":
s.ca.ca_pem}`, mTLS adds `tls.crt`/`tls.key` from `s.ca.client_cert_pem` /
`client_key_pem`, SSH `{"identity": s.identity, "known_hosts": s.known_hosts}`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import getpass
import gzip
import hmac
import io
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from dulwich.objects import Blob, Commit, ObjectID, Tag, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

# --------------------------------------------------------------------------
# Repositories
# --------------------------------------------------------------------------

AUTHOR = b"Fluxbus Test <test@fluxbus.invalid>"
EXEC_MODE = 0o100755
FILE_MODE = 0o100644
LINK_MODE = 0o120000


@dataclass(frozen=True)
class File:
    """A file with an explicit mode: `File("#!/bin/sh\\n", executable=True)`."""

    content: str | bytes
    executable: bool = False


@dataclass(frozen=True)
class Symlink:
    """A symbolic link entry pointing at `target`."""

    target: str


FileValue = str | bytes | File | Symlink | None


def _ref(name: str) -> Ref:
    return Ref(name.encode())


def _oid(sha: str | bytes) -> ObjectID:
    return ObjectID(sha.encode() if isinstance(sha, str) else sha)


class GitRepo:
    """A bare Git repository in a temp dir, edited through dulwich objects.

    `path` is the bare repository directory (`<root>/<name>.git`).
    Commit timestamps increase by one second per commit from a fixed epoch
    so that the same calls give the same commit ids.
    """

    _epoch = 1_700_000_000

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name.removesuffix(".git")
        self.repo = Repo.init_bare(str(path), mkdir=True) if not path.exists() else Repo(str(path))
        self._clock = 0

    # -- reading ------------------------------------------------------------
    def refs(self) -> dict[str, str]:
        """All refs as {"refs/heads/master": sha, …} (no HEAD)."""
        return {k.decode(): v.decode() for k, v in self.repo.get_refs().items() if k != b"HEAD"}

    def head(self, branch: str = "master") -> str:
        """The commit id at the tip of `branch` (KeyError when absent)."""
        return self.repo.refs[_ref(f"refs/heads/{branch}")].decode()

    def _get(self, name: str) -> ObjectID | None:
        ref = _ref(name)
        return self.repo.refs[ref] if ref in self.repo.refs else None

    # -- writing ------------------------------------------------------------
    def _tree_items(self, tree_id: ObjectID | None) -> dict[str, tuple[int, ObjectID]]:
        """Flatten a tree into {path: (mode, sha)}."""
        out: dict[str, tuple[int, ObjectID]] = {}
        if tree_id is None:
            return out
        for entry in self.repo.object_store.iter_tree_contents(tree_id):
            if entry.path is not None and entry.mode is not None and entry.sha is not None:
                out[entry.path.decode()] = (entry.mode, entry.sha)
        return out

    def _write_tree(self, flat: Mapping[str, tuple[int, ObjectID]]) -> ObjectID:
        store = self.repo.object_store
        nested: dict[str, Any] = {}
        for path, entry in flat.items():
            node = nested
            *dirs, base = path.split("/")
            for d in dirs:
                node = node.setdefault(d, {})
            node[base] = entry

        def build(node: dict[str, Any]) -> ObjectID:
            tree = Tree()
            for name, value in node.items():
                if isinstance(value, dict):
                    tree.add(name.encode(), 0o040000, build(value))
                else:
                    tree.add(name.encode(), value[0], value[1])
            store.add_object(tree)
            return tree.id

        return build(nested)

    def commit(
        self,
        files: Mapping[str, FileValue],
        branch: str = "master",
        message: str = "update",
        replace: bool = False,
        gitlinks: Mapping[str, str] | None = None,
        start: str | None = None,
    ) -> str:
        """Commit `files` on top of `branch` (created when missing); return the commit id.

        Values: text or bytes (a 0644 file), `File(..., executable=True)`,
        `Symlink(target)`, or None to delete the path. With `replace=True`
        the tree is exactly `files`. `gitlinks` maps paths to commit ids of
        submodules (add `.gitmodules` yourself). A new branch starts, like
        `git checkout -b`, from `start` (a branch or commit id) or else from
        the default branch's tip; `start=""` makes an orphan branch.
        """
        ref = _ref(f"refs/heads/{branch}")
        parent = self._get(f"refs/heads/{branch}")
        if parent is None and start != "":
            if start:
                parent = self._get(f"refs/heads/{start}") or _oid(start)
            else:
                with contextlib.suppress(KeyError):
                    parent = self.repo.refs[_ref("HEAD")]
        base_tree: ObjectID | None = None
        if parent is not None and not replace:
            parent_commit = self.repo[parent]
            assert isinstance(parent_commit, Commit)
            base_tree = parent_commit.tree
        flat = self._tree_items(base_tree)
        store = self.repo.object_store
        for path, value in files.items():
            path = path.strip("/")
            if value is None:
                flat.pop(path, None)
                continue
            if isinstance(value, Symlink):
                blob, mode = Blob.from_string(value.target.encode()), LINK_MODE
            elif isinstance(value, File):
                data = value.content.encode() if isinstance(value.content, str) else value.content
                blob, mode = Blob.from_string(data), EXEC_MODE if value.executable else FILE_MODE
            else:
                data = value.encode() if isinstance(value, str) else value
                blob, mode = Blob.from_string(data), FILE_MODE
            store.add_object(blob)
            flat[path] = (mode, blob.id)
        for path, sha in (gitlinks or {}).items():
            flat[path.strip("/")] = (0o160000, _oid(sha))
        c = Commit()
        c.tree = self._write_tree(flat)
        c.parents = [parent] if parent else []
        c.author = c.committer = AUTHOR
        self._clock += 1
        c.author_time = c.commit_time = self._epoch + self._clock
        c.author_timezone = c.commit_timezone = 0
        c.encoding = b"UTF-8"
        c.message = message.encode() + b"\n"
        store.add_object(c)
        self.repo.refs[ref] = c.id
        head = _ref("HEAD")
        if head not in self.repo.refs or not self.repo.refs.read_ref(head):
            self.repo.refs.set_symbolic_ref(head, ref)
        return c.id.decode()

    def commit_directory(
        self, directory: Path | str, branch: str = "master", message: str = "sync directory"
    ) -> str:
        """Commit the files under `directory` (recursively, `.git` skipped) as the whole tree.

        Executable bits and symlinks are kept. Returns the commit id.
        """
        root = Path(directory)
        files: dict[str, FileValue] = {}
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if ".git" in rel.parts or (path.is_dir() and not path.is_symlink()):
                continue
            if path.is_symlink():
                files[rel.as_posix()] = Symlink(os.readlink(path))
            elif path.is_file():
                files[rel.as_posix()] = File(path.read_bytes(), bool(path.stat().st_mode & 0o111))
        return self.commit(files, branch=branch, message=message, replace=True)

    def set_default_branch(self, branch: str) -> None:
        """Point HEAD at `branch`."""
        self.repo.refs.set_symbolic_ref(_ref("HEAD"), _ref(f"refs/heads/{branch}"))

    def tag(
        self,
        name: str,
        target: str | None = None,
        annotated: bool = False,
        message: str = "release",
    ) -> str:
        """Tag `target` (a commit id or branch name; default master's tip); return the tag ref's value.

        For an annotated tag that is the tag object's id (the commit is its peeled value).
        """
        wanted = target or "master"
        sha = self._get(f"refs/heads/{wanted}") or _oid(wanted)
        ref = _ref(f"refs/tags/{name}")
        if not annotated:
            self.repo.refs[ref] = sha
            return sha.decode()
        t = Tag()
        t.name = name.encode()
        t.object = (Commit, sha)
        t.tagger = AUTHOR
        self._clock += 1
        t.tag_time = self._epoch + self._clock
        t.tag_timezone = 0
        t.message = message.encode() + b"\n"
        self.repo.object_store.add_object(t)
        self.repo.refs[ref] = t.id
        return t.id.decode()

    def set_ref(self, name: str, sha: str) -> None:
        """Create or move any ref (`refs/pull/1/head`, …)."""
        self.repo.refs[_ref(name)] = _oid(sha)

    def delete_ref(self, name: str) -> None:
        """Remove a ref (`refs/heads/x`)."""
        del self.repo.refs[_ref(name)]

    def close(self) -> None:
        """Release dulwich's file handles (the fixtures do this at teardown)."""
        self.repo.close()

    def __repr__(self) -> str:
        return f"GitRepo({self.name!r})"


def make_repo(root: Path, name: str = "repo") -> GitRepo:
    """Create (or open) the bare repository `<root>/<name>.git`."""
    root.mkdir(parents=True, exist_ok=True)
    return GitRepo(root / f"{name}.git")


# --------------------------------------------------------------------------
# TLS material
# --------------------------------------------------------------------------


@dataclass
class TestCA:
    """A throw-away CA with a server certificate (127.0.0.1, localhost) and a client certificate.

    PEM bytes in `ca_pem`, `server_cert_pem`/`server_key_pem`,
    `client_cert_pem`/`client_key_pem`; the same written to files under `dir`.
    A second CA (`other_ca_pem`) signs nothing here: trusting it must fail.
    """

    __test__ = False  # not a pytest test class

    dir: Path
    ca_pem: bytes = b""
    server_cert_pem: bytes = b""
    server_key_pem: bytes = b""
    client_cert_pem: bytes = b""
    client_key_pem: bytes = b""
    other_ca_pem: bytes = b""

    def path(self, name: str) -> Path:
        return self.dir / name

    @classmethod
    def create(cls, directory: Path) -> TestCA:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)

        def key() -> ec.EllipticCurvePrivateKey:
            return ec.generate_private_key(ec.SECP256R1())

        def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
            return k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )

        def ca_cert(k: ec.EllipticCurvePrivateKey, cn: str) -> x509.Certificate:
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
            return (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(k.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False
                )
                .sign(k, hashes.SHA256())
            )

        def leaf(
            ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, cn: str, server: bool
        ) -> tuple[bytes, bytes]:
            k = key()
            b = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(ca.subject)
                .public_key(k.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(
                    x509.ExtendedKeyUsage(
                        [
                            ExtendedKeyUsageOID.SERVER_AUTH
                            if server
                            else ExtendedKeyUsageOID.CLIENT_AUTH
                        ]
                    ),
                    critical=False,
                )
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                    critical=False,
                )
            )
            if server:
                b = b.add_extension(
                    x509.SubjectAlternativeName(
                        [
                            x509.DNSName("localhost"),
                            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        ]
                    ),
                    critical=False,
                )
            cert = b.sign(ca_key, hashes.SHA256())
            return cert.public_bytes(serialization.Encoding.PEM), pem_key(k)

        ca_key = key()
        ca = ca_cert(ca_key, "fluxbus test CA")
        other_key = key()
        other = ca_cert(other_key, "fluxbus untrusted CA")
        self = cls(directory)
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        self.other_ca_pem = other.public_bytes(serialization.Encoding.PEM)
        self.server_cert_pem, self.server_key_pem = leaf(ca_key, ca, "127.0.0.1", True)
        self.client_cert_pem, self.client_key_pem = leaf(ca_key, ca, "fluxbus-client", False)
        for fname, data in {
            "ca.crt": self.ca_pem,
            "server.crt": self.server_cert_pem,
            "server.key": self.server_key_pem,
            "client.crt": self.client_cert_pem,
            "client.key": self.client_key_pem,
            "other-ca.crt": self.other_ca_pem,
        }.items():
            (directory / fname).write_bytes(data)
            os.chmod(directory / fname, 0o600)
        return self


# --------------------------------------------------------------------------
# Smart HTTP server (git http-backend behind a threaded HTTP/1.1 server)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str


@dataclass(frozen=True)
class BearerAuth:
    token: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 10.0, banner: bytes | None = None) -> None:
    """Block until 127.0.0.1:port accepts a connection (and sends `banner`), or fail."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if banner is None or s.recv(64).startswith(banner):
                    return
        except OSError as e:
            last = e
        time.sleep(0.02)  # polling a port that has no event to wait on
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s: {last}")


@dataclass
class _Counters:
    requests: int = 0
    ref_listings: int = 0
    fetches: int = 0
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

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, addr = super().get_request()
        ctx = self.owner._ssl_context
        if ctx is not None:
            # Handshake lazily in the request thread, so one bad client cannot block accept().
            sock = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.owner._conn_lock:
            self.owner._connections.add(sock)
        return sock, addr

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        with self.owner._conn_lock:
            self.owner._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        pass  # TLS failures and client resets are expected in the negative tests


class GitHTTPServer:
    """Git smart HTTP(S) on 127.0.0.1 serving every bare repo under `root`.

    `auth`: None, `BasicAuth` or `BearerAuth`; `tls`: a `TestCA` to serve
    HTTPS with its server certificate; `require_client_cert`: mTLS;
    `backend`: "git" (`git http-backend` as CGI: the real thing, one fork
    per request) or "dulwich" (dulwich's WSGI server in-process, no fork;
    protocol v0/v1 only).
    """

    def __init__(
        self,
        root: Path,
        auth: BasicAuth | BearerAuth | None = None,
        tls: TestCA | None = None,
        require_client_cert: bool = False,
        port: int = 0,
        backend: str = "git",
    ) -> None:
        self.root = root
        self.auth = auth
        self.tls = tls
        self.backend = backend
        self._wsgi: Callable[..., Any] | None = None
        self._dulwich_repos: dict[str, Any] = {}
        self.port = port or _free_port()
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
            from dulwich.server import FileSystemBackend
            from dulwich.web import make_wsgi_chain

            opened = self._dulwich_repos

            class RootBackend(FileSystemBackend):
                # dulwich joins the URL path as absolute; serve it relative to root,
                # and keep one Repo per path so they can be closed at stop().
                def open_repository(self, path: str | bytes):  # type: ignore[no-untyped-def]
                    key = (os.fsdecode(path) if isinstance(path, bytes) else path).strip("/")
                    if key not in opened:
                        opened[key] = super().open_repository(key)
                    return opened[key]

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
        state: dict[str, object] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):  # type: ignore[no-untyped-def]
            state["status"], state["headers"] = int(status.split()[0]), headers
            return out.append

        result = self._wsgi(environ, start_response)
        try:
            out.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(state["status"]), list(state["headers"]), b"".join(out)  # type: ignore[call-overload]

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

    def reset_counters(self) -> None:
        with self.counters.lock:
            self.counters.requests = self.counters.ref_listings = self.counters.fetches = 0
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


# --------------------------------------------------------------------------
# Forward proxy (absolute-form HTTP and CONNECT tunnels)
# --------------------------------------------------------------------------


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _authorized(self) -> bool:
        owner = self.server.owner
        with owner.lock:
            owner.requests += 1
        if owner.auth is None:
            return True
        want = (
            "Basic "
            + base64.b64encode(f"{owner.auth.username}:{owner.auth.password}".encode()).decode()
        )
        if hmac.compare_digest(self.headers.get("Proxy-Authorization", "").encode(), want.encode()):
            return True
        self.send_response(407)
        self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_CONNECT(self) -> None:
        if not self._authorized():
            return
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            self.send_error(502)
            return
        with self.server.owner.lock:
            self.server.owner.tunnels += 1
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        import selectors

        with upstream, selectors.DefaultSelector() as sel:
            sel.register(self.connection, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, self.connection)
            while True:
                for key, _ in sel.select(timeout=30):
                    data = key.fileobj.recv(1 << 16)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)

    def _forward(self) -> None:
        if not self._authorized():
            return
        import http.client
        from urllib.parse import urlsplit

        target = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {
            k: v
            for k, v in self.headers.items()
            if not k.lower().startswith("proxy-") and k.lower() != "connection"
        }
        conn = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=30)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            conn.request(self.command, path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        except OSError:
            self.send_error(502)
            return
        finally:
            conn.close()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _forward
    do_POST = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: HTTPProxy


class HTTPProxy:
    """A forward HTTP proxy on 127.0.0.1 (absolute-form requests and CONNECT tunnels).

    `auth`: None or `BasicAuth` checked against `Proxy-Authorization`.
    `requests` counts requests seen, `tunnels` CONNECTs opened; `address` is
    what a proxy secret's `address` holds.
    """

    def __init__(self, auth: BasicAuth | None = None) -> None:
        self.auth = auth
        self.port = _free_port()
        self.requests = 0
        self.tunnels = 0
        self.lock = threading.Lock()
        self._server: _ProxyServer | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HTTPProxy:
        server = _ProxyServer(("127.0.0.1", self.port), _ProxyHandler)
        server.owner = self
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --------------------------------------------------------------------------
# SSH server (OpenSSH sshd + git-shell)
# --------------------------------------------------------------------------

SSHD = "/usr/sbin/sshd"


def _keygen(path: Path, passphrase: str = "", comment: str = "fluxbus-test") -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return Path(f"{path}.pub").read_text().strip()


SSH_TEST_PASSPHRASE = "open sesame"
SSH_KEY_NAMES = ("host_key", "other_host_key", "client_key", "client_key_enc", "intruder_key")


def make_ssh_keys(directory: Path) -> Path:
    """Generate the ed25519 key pairs a `GitSSHServer` uses into `directory`; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in SSH_KEY_NAMES:
        if not (directory / name).exists():
            phrase = SSH_TEST_PASSPHRASE if name == "client_key_enc" else ""
            _keygen(directory / name, passphrase=phrase)
    return directory


class GitSSHServer:
    """A real `sshd` on 127.0.0.1 that runs only `git-shell` for one authorized key pair.

    Attributes for a GitRepository secret: `identity` (private key, PEM
    bytes), `identity_encrypted` + `passphrase`, `known_hosts` (line for
    this host and port), `username`. `other_identity` is a valid key that is
    not authorized; `other_known_hosts` names a different host key.
    """

    def __init__(self, root: Path, workdir: Path, port: int = 0, keys: Path | None = None) -> None:
        if not Path(SSHD).exists():
            pytest.skip("openssh-server (/usr/sbin/sshd) is not installed")
        self.root = root
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.port = port or _free_port()
        self.username = getpass.getuser()
        self.passphrase = SSH_TEST_PASSPHRASE
        self._proc: subprocess.Popen[bytes] | None = None
        # Key generation is the slow part: reuse a directory made by `make_ssh_keys`.
        keys = keys or make_ssh_keys(self.dir / "keys")
        for name in SSH_KEY_NAMES:
            for suffix in ("", ".pub"):
                shutil.copyfile(keys / f"{name}{suffix}", self.dir / f"{name}{suffix}")
            os.chmod(self.dir / name, 0o600)
        host_pub, other_host_pub, client_pub, enc_pub = (
            (self.dir / f"{n}.pub").read_text().strip()
            for n in ("host_key", "other_host_key", "client_key", "client_key_enc")
        )
        self.identity = (self.dir / "client_key").read_bytes()
        self.identity_encrypted = (self.dir / "client_key_enc").read_bytes()
        self.other_identity = (self.dir / "intruder_key").read_bytes()
        self.known_hosts = f"[127.0.0.1]:{self.port} {' '.join(host_pub.split()[:2])}\n".encode()
        self.other_known_hosts = (
            f"[127.0.0.1]:{self.port} {' '.join(other_host_pub.split()[:2])}\n".encode()
        )
        self.log = self.dir / "commands.log"
        self.log.touch()
        wrapper = self.dir / "git-only"
        wrapper.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "$SSH_ORIGINAL_COMMAND" >> "{self.log}"\n'
            'exec git-shell -c "$SSH_ORIGINAL_COMMAND"\n'
        )
        wrapper.chmod(0o755)
        opts = (
            f'command="{wrapper}",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty'
        )
        (self.dir / "authorized_keys").write_text(f"{opts} {client_pub}\n{opts} {enc_pub}\n")
        self.config = self.dir / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.dir / 'host_key'}",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "AcceptEnv GIT_PROTOCOL",
                    "PrintMotd no",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )

    # -- counters --------------------------------------------------------------------
    def _commands(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line]

    @property
    def sessions(self) -> int:
        return len(self._commands())

    @property
    def fetches(self) -> int:
        """upload-pack sessions (an ls-remote is one too over SSH)."""
        return sum(1 for c in self._commands() if "upload-pack" in c)

    def reset_counters(self) -> None:
        self.log.write_text("")

    # -- lifecycle ---------------------------------------------------------------------
    def url(self, repo: GitRepo | str) -> str:
        name = repo.name if isinstance(repo, GitRepo) else repo
        return f"ssh://{self.username}@127.0.0.1:{self.port}{self.root}/{name}.git"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> GitSSHServer:
        if self.running:
            return self
        if os.geteuid() == 0:
            # Privilege separation directory; systemd normally creates it.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for_port(self.port, banner=b"SSH-")
        except TimeoutError:
            err = b""
            if self._proc.poll() is not None and self._proc.stderr:
                err = self._proc.stderr.read()
            self.stop()
            raise RuntimeError(f"sshd did not start: {err.decode(errors='replace')}") from None
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None

    def __enter__(self) -> GitSSHServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture
def git_root(tmp_path: Path) -> Path:
    """Directory holding the served bare repositories."""
    root = tmp_path / "git-served"
    root.mkdir()
    return root


@pytest.fixture
def git_repo_factory(git_root: Path) -> Iterator[Callable[[str], GitRepo]]:
    """`make(name)` → a new (or the existing) bare repo `<git_root>/<name>.git`."""
    made: dict[str, GitRepo] = {}

    def make(name: str = "repo") -> GitRepo:
        if name not in made:
            made[name] = make_repo(git_root, name)
        return made[name]

    yield make
    for repo in made.values():
        repo.close()


@pytest.fixture
def git_repo(git_repo_factory: Callable[[str], GitRepo]) -> GitRepo:
    """An empty bare repository named `repo`, served by every server fixture."""
    return git_repo_factory("repo")


@pytest.fixture
def test_ca(tmp_path: Path) -> TestCA:
    """A throw-away CA with server and client certificates."""
    return TestCA.create(tmp_path / "tls")


@pytest.fixture
def git_http_server_factory(git_root: Path) -> Iterator[Callable[..., GitHTTPServer]]:
    """`make(auth=None, tls=None, require_client_cert=False)` → a started `GitHTTPServer`."""
    servers: list[GitHTTPServer] = []

    def make(**kwargs: object) -> GitHTTPServer:
        server = GitHTTPServer(git_root, **kwargs).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def git_http_server(git_http_server_factory: Callable[..., GitHTTPServer]) -> GitHTTPServer:
    """Anonymous smart HTTP."""
    return git_http_server_factory()


@pytest.fixture
def git_http_basic_server(git_http_server_factory: Callable[..., GitHTTPServer]) -> GitHTTPServer:
    """Smart HTTP requiring basic auth (`.username`, `.password`)."""
    return git_http_server_factory(auth=BasicAuth("fluxbus", "s3cr3t-pa55"))


@pytest.fixture
def git_http_bearer_server(git_http_server_factory: Callable[..., GitHTTPServer]) -> GitHTTPServer:
    """Smart HTTP requiring `Authorization: Bearer <.token>`."""
    return git_http_server_factory(
        auth=BearerAuth("t0ken-" + base64.b32encode(os.urandom(10)).decode())
    )


@pytest.fixture
def git_https_server(
    git_http_server_factory: Callable[..., GitHTTPServer], test_ca: TestCA
) -> GitHTTPServer:
    """HTTPS with a certificate from `test_ca` (`.ca.ca_pem` to trust)."""
    return git_http_server_factory(tls=test_ca)


@pytest.fixture
def git_https_mtls_server(
    git_http_server_factory: Callable[..., GitHTTPServer], test_ca: TestCA
) -> GitHTTPServer:
    """HTTPS that requires a client certificate signed by `test_ca`."""
    return git_http_server_factory(tls=test_ca, require_client_cert=True)


@pytest.fixture
def http_proxy() -> Iterator[HTTPProxy]:
    """A forward proxy requiring basic auth (`.auth.username` / `.auth.password`)."""
    proxy = HTTPProxy(auth=BasicAuth("proxy-user", "proxy-pa55")).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def git_ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Key pairs for SSH servers, generated once per test session."""
    return make_ssh_keys(tmp_path_factory.mktemp("ssh-keys"))


@pytest.fixture
def git_ssh_server(git_root: Path, tmp_path: Path, git_ssh_keys: Path) -> Iterator[GitSSHServer]:
    """A real sshd serving `git_root` through git-shell (see `GitSSHServer`)."""
    server = GitSSHServer(git_root, tmp_path / "sshd", keys=git_ssh_keys).start()
    yield server
    server.stop()


def remove_tree(path: Path) -> None:
    """rm -rf that also clears read-only bits (Git pack files are 0444)."""

    def onerror(func, p, _exc):  # type: ignore[no-untyped-def]
        os.chmod(p, stat.S_IWRITE)
        func(p)

    shutil.rmtree(path, onerror=onerror)
