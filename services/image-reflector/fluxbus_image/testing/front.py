"""A counting reverse proxy in front of a test `docker-registry`, paginating tag lists (test support).

Distribution 2.8 answers `tags/list` with every tag and ignores `n`; registries
in the wild paginate (honouring `n`, capping it, or ignoring it). This front
reads the full list from the registry and pages it the way the distribution
spec describes: tags in lexical order, `n` and `last`, a relative `Link:
</v2/<repo>/tags/list?n=..&last=..>; rel="next"` while more remain.

- `max_page_size`: cap `n` (None: honour it; no `n`: everything).
- `ignore_n`: answer every tag in one page, whatever `n` says.
- `counts`: requests received by kind (`ping`, `tags`, `manifests`, `blobs`,
  `other`), `requests` their total; `reset_counters()` zeroes them.

Everything else (auth challenges, manifests, blobs) is forwarded unchanged.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from fluxbus_git.testing.network import free_port

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


def _kind(path: str) -> str:
    if path.rstrip("/") == "/v2":
        return "ping"
    for kind in ("tags", "manifests", "blobs"):
        if f"/{kind}/" in path:
            return kind
    return "other"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        owner = self.server.owner
        path = urlsplit(self.path).path
        kind = _kind(path)
        with owner.lock:
            owner.counts[kind] += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if kind == "tags" and self.command == "GET":
            self._tags(path, body)
            return
        status, headers, payload = owner.upstream(self.command, self.path, self.headers, body)
        self._reply(status, headers, payload)

    def _tags(self, path: str, body: bytes | None) -> None:
        owner = self.server.owner
        status, headers, payload = owner.upstream("GET", path, self.headers, body)
        if status != 200:
            self._reply(status, headers, payload)
            return
        doc = json.loads(payload)
        tags = sorted(doc.get("tags") or [])
        query = parse_qs(urlsplit(self.path).query)
        last = query.get("last", [""])[0]
        if last:
            tags = [t for t in tags if t > last]
        n_text = query.get("n", [""])[0]
        n = int(n_text) if n_text.isdigit() and not owner.ignore_n else None
        if owner.max_page_size is not None:
            n = min(n or owner.max_page_size, owner.max_page_size)
        extra: list[tuple[str, str]] = []
        if n is not None and len(tags) > n:
            tags = tags[:n]
            link = f"{path}?{urlencode({'n': n, 'last': tags[-1]})}"
            extra.append(("Link", f'<{link}>; rel="next"'))
        data = json.dumps({"name": doc.get("name"), "tags": tags}).encode()
        self._reply(200, [("Content-Type", "application/json"), *extra], data)

    def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in _HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = _forward
    do_HEAD = _forward
    do_POST = _forward
    do_PUT = _forward
    do_PATCH = _forward
    do_DELETE = _forward


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: RegistryFront


class RegistryFront:
    """Listens on `bind`:`port` (127.0.0.1 unless told) and forwards to the registry at 127.0.0.1:`backend_port`."""

    def __init__(self, backend_port: int, bind: str = "127.0.0.1") -> None:
        self.backend_port = backend_port
        self.bind = bind
        self.port = free_port()
        self.max_page_size: int | None = None
        self.ignore_n = False
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def requests(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def reset_counters(self) -> None:
        with self.lock:
            self.counts.clear()

    def upstream(
        self, method: str, target: str, headers: object, body: bytes | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        forwarded = {
            k: v
            for k, v in headers.items()  # type: ignore[attr-defined]
            if k.lower() not in _HOP and k.lower() != "host"
        }
        conn = http.client.HTTPConnection("127.0.0.1", self.backend_port, timeout=30)
        try:
            conn.request(method, target, body=body, headers=forwarded)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, resp.getheaders(), payload
        finally:
            conn.close()

    def start(self) -> RegistryFront:
        server = _Server((self.bind, self.port), _Handler)
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
