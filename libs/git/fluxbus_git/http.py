"""Git over http(s) through dulwich's urllib3 client, and what its failures mean.

Basic auth, bearer token, an extra CA (`ca.crt`), a client certificate
(`tls.crt`/`tls.key`) and an http(s) proxy with basic auth. `PoolCache`
keeps one urllib3 pool manager per remote and TLS identity, so polls reuse
keep-alive connections; `translate_http` turns urllib3, ssl and dulwich
failures into the typed errors of `fluxbus_git.errors`, naming the secret
key to fix and never a credential.

Blocking: called only from `GitClient`'s worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any

import urllib3
from dulwich.client import GitClient, HTTPUnauthorized, Urllib3HttpGitClient
from dulwich.errors import GitProtocolError, NotGitRepository

from fluxbus_git.errors import (
    GitAuthError,
    GitCredentialsError,
    GitError,
    GitNotFoundError,
    GitTLSError,
    GitUnreachableError,
)
from fluxbus_git.logic.auth import GitAuth, GitProxy
from fluxbus_git.logic.url import GitURL

USER_AGENT = "fluxbus-source"
"""What the Git host sees in its access log (kept from the source service's client)."""

MAX_POOLS = 256
"""Cached pool managers before the oldest is dropped: bounds memory with many remotes."""


class HTTPClient(Urllib3HttpGitClient):
    """dulwich's urllib3 client, but error responses give their connection back.

    dulwich raises on 401/404 without releasing the streamed response, which
    leaks a socket per failed poll.
    """

    def _http_request(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        data: Any = None,
        raise_for_status: bool = True,
    ) -> Any:
        resp: Any
        resp, read = super()._http_request(url, headers, data, raise_for_status=False)
        if raise_for_status and resp.status != 200:
            status, challenge = resp.status, resp.headers.get("WWW-Authenticate")
            with contextlib.suppress(Exception):
                resp.drain_conn()
            resp.release_conn()
            if status == 404:
                raise NotGitRepository()
            if status == 401:
                raise HTTPUnauthorized(challenge, url)
            raise GitProtocolError(f"unexpected http resp {status} for {url}")
        return resp, read


class PoolCache:
    """urllib3 pool managers per (remote, timeout, proxy, TLS identity); thread-safe."""

    def __init__(self) -> None:
        self._pools: dict[tuple[Any, ...], urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Drop every cached connection."""
        with self._lock:
            for pm in self._pools.values():
                pm.clear()
            self._pools.clear()

    def get(
        self, gurl: GitURL, auth: GitAuth | None, timeout: float, proxy: GitProxy | None = None
    ) -> urllib3.PoolManager:
        """The pool manager for this remote and identity, made on first use.

        Raises `GitCredentialsError` when `ca.crt` or `tls.crt`/`tls.key` are unusable.
        """
        a = auth or GitAuth()
        key = (
            gurl.scheme,
            gurl.host,
            gurl.port,
            timeout,
            (
                proxy.address,
                proxy.username,
                hashlib.sha256((proxy.password or "").encode()).hexdigest(),
            )
            if proxy
            else None,
            hashlib.sha256(
                b"\0".join(
                    [
                        a.ca_cert or b"",
                        a.tls_cert or b"",
                        a.tls_key or b"",
                        (a.bearer_token or "").encode(),
                    ]
                )
            ).hexdigest(),
        )
        with self._lock:
            pm = self._pools.get(key)
            if pm is not None:
                return pm
            headers = {"User-Agent": USER_AGENT, "Pragma": "no-cache"}
            if a.bearer_token:
                headers["Authorization"] = f"Bearer {a.bearer_token}"
            kwargs: dict[str, Any] = {}
            if gurl.is_https:
                ctx = ssl.create_default_context()
                if a.ca_cert:
                    try:
                        ctx.load_verify_locations(cadata=a.ca_cert.decode())
                    except (ssl.SSLError, ValueError, UnicodeDecodeError):
                        raise GitCredentialsError(
                            f"'ca.crt' in {a.secret_label} is not a PEM certificate"
                        ) from None
                if a.tls_cert and a.tls_key:
                    # Python's ssl loads client certificates from files only.
                    with tempfile.TemporaryDirectory(prefix="fluxbus-tls-") as d:
                        crt, key_path = Path(d, "tls.crt"), Path(d, "tls.key")
                        for p, data in ((crt, a.tls_cert), (key_path, a.tls_key)):
                            fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
                            with os.fdopen(fd, "wb") as f:
                                f.write(data)
                        try:
                            ctx.load_cert_chain(crt, key_path)
                        except ssl.SSLError:
                            raise GitCredentialsError(
                                f"'tls.crt'/'tls.key' in {a.secret_label} are not a valid "
                                "certificate and matching key"
                            ) from None
                kwargs["ssl_context"] = ctx
            if proxy is not None:
                kwargs["proxy_url"] = proxy.address
                if proxy.username or proxy.password:
                    kwargs["proxy_headers"] = urllib3.make_headers(
                        proxy_basic_auth=f"{proxy.username or ''}:{proxy.password or ''}"
                    )
            manager = urllib3.ProxyManager if proxy is not None else urllib3.PoolManager
            pm = manager(
                num_pools=4,
                maxsize=4,
                headers=headers,
                timeout=urllib3.Timeout(connect=min(timeout, 30.0), read=timeout),
                retries=urllib3.Retry(
                    total=3, connect=1, read=0, status=0, other=0, redirect=5, raise_on_status=False
                ),
                **kwargs,
            )
            if len(self._pools) > MAX_POOLS:
                self._pools.pop(next(iter(self._pools))).clear()
            self._pools[key] = pm
            return pm


def proxy_error(exc: BaseException, proxy: GitProxy) -> GitError | None:
    """The error to report when the proxy, not the Git host, failed (else None)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, urllib3.exceptions.MaxRetryError) and cause.reason is not None:
            cause = cause.reason
            continue
        if isinstance(cause, urllib3.exceptions.ProxyError):
            label = f"secret '{proxy.secret_name}'" if proxy.secret_name else "the proxy secret"
            if "407" in str(cause):
                return GitAuthError(
                    f"proxy '{proxy.redacted_address}' refused the credentials: check "
                    f"'username'/'password' in {label}"
                )
            return GitUnreachableError(f"unable to reach proxy '{proxy.redacted_address}'")
        if "unexpected http resp 407" in str(cause):
            label = f"secret '{proxy.secret_name}'" if proxy.secret_name else "the proxy secret"
            return GitAuthError(
                f"proxy '{proxy.redacted_address}' requires credentials: set 'username'/"
                f"'password' in {label}"
            )
        cause = cause.__cause__ or cause.__context__
    return None


def translate_http(exc: BaseException, url: str, auth: GitAuth | None) -> GitError:
    """The typed error a dulwich/urllib3/ssl exception of an http(s) operation stands for."""
    label = auth.secret_label if auth else None
    if isinstance(exc, HTTPUnauthorized):
        if auth is None or not (auth.username or auth.bearer_token):
            return GitAuthError(
                f"'{url}' requires authentication: set spec.secretRef to a secret with "
                "'username'/'password' or 'bearerToken'"
            )
        which = "'bearerToken'" if auth.bearer_token else "'username'/'password'"
        return GitAuthError(f"authentication to '{url}' failed: check {which} in {label}")
    if isinstance(exc, NotGitRepository):
        return GitNotFoundError(f"repository not found: '{url}' (HTTP 404)")
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None and not isinstance(cause, urllib3.exceptions.HTTPError | OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, urllib3.exceptions.MaxRetryError) and cause.reason is not None:
        cause = cause.reason
    if isinstance(cause, urllib3.exceptions.SSLError | ssl.SSLError):
        detail = str(cause)
        if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate verify failed" in detail:
            return GitTLSError(
                f"TLS certificate of '{url}' is not trusted: add its CA as 'ca.crt' to "
                f"{label or 'a secret referenced by spec.secretRef'}"
            )
        lowered = detail.lower()
        no_client_cert = auth is None or not auth.tls_cert
        if "certificate required" in lowered or (
            no_client_cert and ("handshake failure" in lowered or "eof occurred" in lowered)
        ):
            return GitTLSError(
                f"'{url}' closed the TLS handshake; it requires a TLS client certificate: "
                f"set 'tls.crt' and 'tls.key' in "
                f"{label or 'a secret referenced by spec.secretRef'}"
            )
        return GitTLSError(f"TLS handshake with '{url}' failed: {_redact(detail, auth)}")
    if isinstance(cause, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return GitUnreachableError(f"'{url}' did not answer in time")
    if isinstance(
        cause,
        urllib3.exceptions.NewConnectionError
        | urllib3.exceptions.ConnectTimeoutError
        | urllib3.exceptions.NameResolutionError
        | urllib3.exceptions.ProtocolError
        | ConnectionError
        | OSError,
    ):
        reason = getattr(cause, "reason", None) or cause
        text = str(reason)
        if "Errno" in text:
            text = text[text.index("[Errno") :] if "[Errno" in text else text
        return GitUnreachableError(f"unable to reach '{url}': {_redact(text, auth)}")
    msg = str(exc)
    if "unexpected http resp 403" in msg:
        where = label or "a secret referenced by spec.secretRef (none is set)"
        return GitAuthError(f"'{url}' refused access (HTTP 403): check the credentials in {where}")
    return GitError(f"git operation on '{url}' failed: {_redact(msg, auth)}")


def http_transport(
    gurl: GitURL, auth: GitAuth | None, pools: PoolCache, timeout: float, proxy: GitProxy | None
) -> tuple[GitClient, str]:
    """A dulwich client for `gurl` over http(s), and the repository path to ask it for."""
    a = auth or GitAuth()
    netloc = gurl.host if gurl.port is None else f"{gurl.host}:{gurl.port}"
    base = f"{gurl.scheme}://{netloc}/"
    client = HTTPClient(
        base,
        pool_manager=pools.get(gurl, auth, timeout, proxy),
        username=a.username if (a.username or a.password) and not a.bearer_token else None,
        password=a.password if not a.bearer_token else None,
        timeout=timeout,
    )
    return client, gurl.path


def _redact(text: str, auth: GitAuth | None) -> str:
    return auth.redact(text) if auth else text
