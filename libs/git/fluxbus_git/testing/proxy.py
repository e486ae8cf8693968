"""A forward HTTP proxy on 127.0.0.1 (absolute-form requests and CONNECT tunnels) with basic auth.

Test support, not production code.
"""

from __future__ import annotations

import base64
import hmac
import http.client
import selectors
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from fluxbus_git.testing.http_server import BasicAuth
from fluxbus_git.testing.network import free_port


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
        with upstream, selectors.DefaultSelector() as sel:
            sel.register(self.connection, selectors.EVENT_READ, (self.connection, upstream))
            sel.register(upstream, selectors.EVENT_READ, (upstream, self.connection))
            while True:
                for key, _ in sel.select(timeout=30):
                    pair: tuple[socket.socket, socket.socket] = key.data
                    data = pair[0].recv(1 << 16)
                    if not data:
                        return
                    pair[1].sendall(data)

    def _forward(self) -> None:
        if not self._authorized():
            return
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
        self.port = free_port()
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
