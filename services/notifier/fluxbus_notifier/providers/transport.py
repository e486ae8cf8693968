"""HTTP for the provider adapters: one request to a Provider's endpoint with its TLS,
proxy and timeout, every failure turned into a redacted `DeliveryError`.

Adapter: the only place the providers touch aiohttp and ssl.

Retry classification (the dispatcher retries; a single request is never retried
here): connection errors, timeouts, 429 and 5xx are retryable; other 4xx, a bad
certificate, an invalid URL or a response the provider rejects are not. A 429's
`Retry-After` (seconds) is passed on. Every message is scrubbed with
`ProviderConfig.redact` before it is raised, so neither the address nor a token
reaches an exception, a log line or an event.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
import structlog

from fluxbus_notifier.logic.payloads import go_json
from fluxbus_notifier.logic.provider_config import ProviderConfig

__all__ = [
    "EVENT_ID_HEADER",
    "USER_AGENT",
    "DeliveryError",
    "ProviderHTTP",
    "Response",
    "basic_auth",
]

log = structlog.get_logger("fluxbus.notifier.providers")

EVENT_ID_HEADER = "X-Fluxbus-Event-Id"
"""A stable id per event on every request, so a receiver can drop duplicates."""

USER_AGENT = "fluxbus-notifier"

_BODY_EXCERPT = 200
"""How much of an error response body goes into the error text."""


class DeliveryError(Exception):
    """A delivery that failed; `retryable` says whether trying again may help.

    The message is already redacted. `status` is the HTTP status when there was a
    response; `retry_after` the server's Retry-After in seconds, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Response:
    """A 2xx response, read whole."""

    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@lru_cache(maxsize=64)
def _ssl_context(ca: bytes | None, cert: bytes | None, key: bytes | None) -> ssl.SSLContext:
    """An SSL context trusting `ca` (on top of the system roots when None) with an
    optional client certificate. Raises ValueError naming the bad part."""
    ctx = ssl.create_default_context()
    if ca:
        try:
            ctx.load_verify_locations(cadata=ca.decode())
        except (ssl.SSLError, ValueError, UnicodeDecodeError):
            raise ValueError("ca.crt is not a PEM certificate") from None
    if cert and key:
        # Python's ssl loads client certificates from files only: a private
        # directory, removed as soon as the chain is loaded.
        with tempfile.TemporaryDirectory(prefix="fluxbus-notifier-tls-") as d:
            crt_path, key_path = Path(d, "tls.crt"), Path(d, "tls.key")
            _write_private(crt_path, cert)
            _write_private(key_path, key)
            try:
                ctx.load_cert_chain(crt_path, key_path)
            except ssl.SSLError:
                raise ValueError("tls.crt/tls.key are not a certificate and its key") from None
    return ctx


def basic_auth(username: str, password: str) -> str:
    """An `Authorization` value for HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _proxy(config: ProviderConfig) -> tuple[str | None, dict[str, str] | None]:
    """The proxy URL without credentials, and its Proxy-Authorization header (from the
    URL's user info or the proxy Secret)."""
    if not config.proxy:
        return None, None
    parts = urlsplit(config.proxy)
    username, password = config.proxy_username, config.proxy_password
    if parts.username is not None:
        username, password = parts.username, parts.password
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    if not username:
        return url, None
    return url, {"Proxy-Authorization": basic_auth(unquote(username), unquote(password or ""))}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class ProviderHTTP:
    """Requests to one Provider for one event: headers, TLS, proxy, timeout, errors."""

    def __init__(
        self, session: aiohttp.ClientSession, config: ProviderConfig, *, event_id: str
    ) -> None:
        self.session = session
        self.config = config
        self.event_id = event_id

    def fail(self, message: str, *, retryable: bool, status: int | None = None) -> DeliveryError:
        """A DeliveryError for this provider with `message` redacted."""
        c = self.config
        text = c.redact(f"{c.type} provider {c.namespace}/{c.name}: {message}")
        return DeliveryError(text, retryable=retryable, status=status)

    async def _ssl(self) -> ssl.SSLContext | None:
        c = self.config
        if not (c.ca or c.cert):
            return None
        try:
            # Loading certificates reads files (the client chain): off the loop.
            return await asyncio.to_thread(_ssl_context, c.ca, c.cert, c.key)
        except ValueError as e:
            raise self.fail(f"certSecretRef: {e}", retryable=False) from None

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        extra_headers: bool = False,
    ) -> Response:
        """Send one request and return the 2xx response; raise DeliveryError otherwise.

        `extra_headers`: add the Provider's `headers` from its Secret (Flux adds them
        for the generic types only)."""
        c = self.config
        all_headers = {"User-Agent": USER_AGENT}
        if body is not None:
            all_headers["Content-Type"] = content_type
        all_headers.update(headers or {})
        if extra_headers:
            all_headers.update(c.headers)
        all_headers[EVENT_ID_HEADER] = self.event_id
        proxy, proxy_headers = _proxy(c)
        if proxy_headers and url.startswith("http://"):
            # A plain-http request goes to the proxy as is (no CONNECT): aiohttp only
            # sends proxy_headers on CONNECT, so the request carries the credentials.
            all_headers.update(proxy_headers)
        ssl_ctx = await self._ssl()
        try:
            async with (
                asyncio.timeout(c.timeout),
                self.session.request(
                    method,
                    url,
                    data=body,
                    headers=all_headers,
                    proxy=proxy,
                    proxy_headers=proxy_headers,
                    ssl=ssl_ctx if ssl_ctx is not None else True,
                    allow_redirects=False,
                ) as resp,
            ):
                payload = await resp.read()
                status = resp.status
                retry_after = _retry_after(resp.headers)
        except TimeoutError:
            raise self.fail(f"request timed out after {c.timeout:g}s", retryable=True) from None
        except aiohttp.ClientConnectorCertificateError as e:
            raise self.fail(
                f"TLS certificate rejected: {e.certificate_error}", retryable=False
            ) from None
        except aiohttp.InvalidURL:
            raise self.fail("invalid address", retryable=False) from None
        except aiohttp.ClientError as e:
            raise self.fail(f"request failed: {type(e).__name__}: {e}", retryable=True) from None
        except ValueError as e:  # aiohttp raises it for URLs it cannot send to
            raise self.fail(f"invalid request: {e}", retryable=False) from None
        if 200 <= status < 300:
            log.debug(
                "notify.delivered",
                provider_type=c.type,
                provider=f"{c.namespace}/{c.name}",
                status=status,
                event_id=self.event_id,
            )
            return Response(status, payload)
        excerpt = payload[:_BODY_EXCERPT].decode("utf-8", errors="replace").strip()
        error = self.fail(
            f"request failed with status code {status}" + (f": {excerpt}" if excerpt else ""),
            retryable=status == 429 or status >= 500,
            status=status,
        )
        error.retry_after = retry_after
        raise error

    async def post_json(self, url: str, payload: Any, **kwargs: Any) -> Response:
        """POST `payload` encoded as Go's json.Marshal does."""
        return await self.request("POST", url, body=go_json(payload), **kwargs)
