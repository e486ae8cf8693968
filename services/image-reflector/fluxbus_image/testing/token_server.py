"""A Docker token-auth server for a real `docker-registry` in token mode (test support).

Distribution 2.8 verifies a token's ES256 signature with the key whose libtrust
key id is the JWT `kid`, looked up among the certificates of
`auth.token.rootcertbundle`; this server makes that certificate, writes it for
the registry and signs tokens with its key. `GET /token?service=&scope=`
checks Basic credentials (anonymous only with `anonymous=True`) and grants the
requested actions. Counters: `requests`, `tokens` (issued). Needs
`cryptography` (a dev dependency).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from fluxbus_git.testing.network import free_port

ISSUER = "fluxbus-test-token-issuer"
SERVICE = "fluxbus-test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_der: bytes) -> str:
    """The libtrust key id Distribution uses as `kid`: sha256 of the SPKI DER, 240 bits, base32."""
    encoded = base64.b32encode(hashlib.sha256(public_der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        with owner.lock:
            owner.requests += 1
        query = parse_qs(urlsplit(self.path).query)
        user = owner.check(self.headers.get("Authorization", ""))
        if user is None:
            self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            return
        scopes = [s for v in query.get("scope", []) for s in v.split(" ") if s]
        token = owner.mint(scopes, subject=user, audience=query.get("service", [SERVICE])[0])
        with owner.lock:
            owner.tokens += 1
        body: dict[str, object] = {"token": token, "access_token": token}
        if owner.expires_in is not None:
            body["expires_in"] = owner.expires_in
        body["issued_at"] = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        self._send(200, body)

    def _send(self, status: int, doc: object) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="token"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: TokenServer


class TokenServer:
    """Issues registry tokens on http://127.0.0.1:`port`/token for `users` (name → password).

    `expires_in`: the lifetime announced (None: omitted, so clients assume 60 s).
    `cert_path`: the certificate bundle the registry must trust.
    """

    def __init__(
        self,
        directory: Path,
        users: dict[str, str],
        *,
        expires_in: int | None = 300,
        anonymous: bool = False,
    ) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.users = dict(users)
        self.expires_in = expires_in
        self.anonymous = anonymous
        self.port = free_port()
        self.requests = 0
        self.tokens = 0
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(self._key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_path = directory / "token-root.crt"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        spki = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = libtrust_key_id(spki)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def check(self, authorization: str) -> str | None:
        """The user the header authenticates, "" for anonymous when allowed, else None."""
        if not authorization:
            return "" if self.anonymous else None
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        want = self.users.get(user)
        if want is None or not hmac.compare_digest(want.encode(), password.encode()):
            return None
        return user

    def mint(self, scopes: list[str], *, subject: str = "", audience: str = SERVICE) -> str:
        """A signed token granting every scope's actions (`repository:<name>:<a,b>`)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": audience,
            "exp": now + (self.expires_in or 60),
            "nbf": now - 10,
            "iat": now,
            "jti": _b64url(os.urandom(12)),
            "access": access,
        }
        header = {"typ": "JWT", "alg": "ES256", "kid": self.key_id}
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def start(self) -> TokenServer:
        server = _Server(("127.0.0.1", self.port), _Handler)
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
