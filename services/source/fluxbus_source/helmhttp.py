"""HTTP adapter for Helm repositories: download an `index.yaml` or a chart archive
with aiohttp, as Helm's HTTP getter does.

- `timeout` bounds the whole download; the body is read up to `max_bytes`
  (one byte more is a refusal, never a truncated file);
- basic auth from `HelmCredentials`, sent only where the caller allows it
  (`passCredentials` is decided by the reconciler);
- TLS: the Secret's CA is trusted besides the system roots, a client
  certificate is presented for mTLS;
- the usual proxy variables (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) are honoured.

aiohttp's errors become `HelmFetchError`; its message names the URL without
user information and never a credential.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import tempfile

import aiohttp

from fluxbus_source.errors import HelmFetchError
from fluxbus_source.logic.helmauth import HelmCredentials
from fluxbus_source.logic.helmindex import safe_url

__all__ = ["HelmHTTP"]

_CHUNK = 64 * 1024
USER_AGENT = "fluxbus-source (Helm getter)"


def _ssl_context(creds: HelmCredentials) -> ssl.SSLContext:
    """A verifying context that also trusts `creds.ca` and presents `creds.cert` (blocking)."""
    ctx = ssl.create_default_context()
    if creds.ca:
        try:
            ctx.load_verify_locations(cadata=creds.ca.decode("ascii", "replace"))
        except ssl.SSLError as e:
            raise HelmFetchError(f"invalid CA certificate: {e.reason or e}") from None
    if creds.cert and creds.key:
        # the ssl module loads key pairs from files only: a private temp dir, removed at once
        with tempfile.TemporaryDirectory(prefix="fluxbus-tls-") as tmp:
            cert, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for path, data in ((cert, creds.cert), (key, creds.key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            try:
                ctx.load_cert_chain(cert, key)
            except ssl.SSLError as e:
                raise HelmFetchError(
                    f"invalid client certificate or key: {e.reason or e}"
                ) from None
    return ctx


class HelmHTTP:
    """Downloads from Helm repositories over HTTP(S)."""

    async def get(
        self,
        url: str,
        *,
        credentials: HelmCredentials | None,
        send_auth: bool,
        timeout: float,
        max_bytes: int,
    ) -> bytes:
        """Return the body of `url`.

        `send_auth`: whether the basic auth of `credentials` may go to this URL.
        Raises `HelmFetchError` ("failed to fetch <url> : 401 Unauthorized", a
        timeout, a TLS or connection failure, a body over `max_bytes`).
        """
        shown = safe_url(url)
        ssl_ctx: ssl.SSLContext | bool = True
        if credentials is not None and credentials.has_tls:
            ssl_ctx = await asyncio.to_thread(_ssl_context, credentials)
        headers = {"User-Agent": USER_AGENT}
        if send_auth and credentials is not None and credentials.has_basic_auth:
            pair = f"{credentials.username}:{credentials.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        try:
            async with (
                asyncio.timeout(timeout),
                # aiohttp drops Authorization when a redirect leaves the origin
                aiohttp.ClientSession(trust_env=True) as session,
                session.get(url, headers=headers, ssl=ssl_ctx) as resp,
            ):
                if resp.status != 200:
                    raise HelmFetchError(
                        f"failed to fetch {shown} : {resp.status} {resp.reason or ''}".rstrip(),
                        status=resp.status,
                    )
                body = bytearray()
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    body += chunk
                    if len(body) > max_bytes:
                        raise HelmFetchError(f"{shown} exceeds the size limit of {max_bytes} bytes")
                return bytes(body)
        except TimeoutError:
            raise HelmFetchError(f"failed to fetch {shown} : timeout after {timeout:g}s") from None
        except aiohttp.ClientSSLError as e:
            raise HelmFetchError(f"failed to fetch {shown} : TLS error: {_reason(e)}") from None
        except aiohttp.InvalidURL:
            raise HelmFetchError(f"invalid URL {shown}", invalid_url=True) from None
        except aiohttp.ClientError as e:
            raise HelmFetchError(f"failed to fetch {shown} : {_reason(e)}") from None


def _reason(e: BaseException) -> str:
    """A one-line reason for an aiohttp error; never the request (it may hold auth)."""
    os_error = getattr(e, "os_error", None)
    if os_error is not None:
        return str(getattr(os_error, "strerror", None) or os_error)
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text
