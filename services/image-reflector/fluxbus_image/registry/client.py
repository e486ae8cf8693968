"""The container registry client (OCI distribution API v2 over aiohttp): tag listing and digests.

The only module of the image-reflector that speaks HTTP to registries; every
aiohttp failure becomes one of `fluxbus_image.registry.errors`.

Flow, as go-containerregistry (Flux's library) runs it:

1. Ping `GET /v2/` once per registry endpoint (scheme, TLS material, proxy):
   https first; for `insecure: true` and go-containerregistry's localhost
   heuristic (`ImageName.plain_http_fallback`) plain http is tried when https
   fails. The answer (200, or 401 with its challenge) is cached.
2. `Basic` challenge: credentials on every request (none given →
   `RegistryAuthError`). `Bearer`: a token from the realm for
   `repository:<repo>:pull` (Basic credentials when given, anonymous
   otherwise), cached per (realm, service, scope, credentials) until shortly
   before it expires, across scans, so an unchanged rescan is one request.
3. A 401 on a real request (expired or revoked token) drops the cached
   challenge and token and retries once from the ping.
4. Tags: `GET /v2/<repo>/tags/list?n=<page_size>`, following `Link` rel=next
   on the same origin only (credentials never go elsewhere), stopping at a
   link already followed and refusing more than `MAX_TAGS` tags.
5. Digest: `HEAD /v2/<repo>/manifests/<tag>` with the OCI and Docker manifest
   types accepted; `Docker-Content-Digest`, else GET and sha256 the body.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp

from fluxbus_git.logic.auth import GitProxy
from fluxbus_image.logic.challenge import (
    Challenge,
    next_link,
    parse_challenges,
    pick_challenge,
    token_from_response,
)
from fluxbus_image.logic.credentials import RegistryCredentials, RegistryTLS
from fluxbus_image.logic.listing import TagListing
from fluxbus_image.logic.reference import ImageName
from fluxbus_image.registry.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
    RegistryServerError,
    RegistryTLSError,
    RegistryUnreachableError,
)
from fluxbus_image.registry.tlsconfig import SSLContexts

__all__ = ["MANIFEST_MEDIA_TYPES", "MAX_TAGS", "RegistryClient", "TagListing"]

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
"""What a manifest HEAD accepts, so the registry answers with the digest Flux would record."""
MAX_TAGS = 1_000_000
"""A repository listing more tags than this is refused (a broken or hostile registry)."""
MAX_PAGES = 100_000
"""Pages followed at most (a registry sending ever-new links with empty pages)."""
MAX_BODY = 64 << 20
"""Largest response body read (a million tags of ~60 characters)."""
CHUNK = 64 * 1024
"""Bytes read from a response body at a time."""
MAX_MANIFEST = 4 << 20
"""Largest manifest hashed when HEAD gives no digest (Distribution's own manifest limit)."""
TOKEN_MARGIN = 10.0
"""Seconds before expiry a cached token stops being used (a request must not race it)."""
TOKEN_CACHE_SIZE = 4096
"""Cached tokens above which expired ones are dropped (one per repository and credentials)."""
USER_AGENT = "fluxbus-image-reflector"
NOT_TLS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}
)
"""OpenSSL's reasons when the peer answered a TLS hello with something else (plain http)."""


@dataclass(frozen=True)
class _Endpoint:
    """Where and how a registry is reached: the cache key of pings."""

    registry: str
    insecure: bool
    fallback: bool
    tls: RegistryTLS | None
    proxy: str | None


@dataclass
class _Ping:
    scheme: str
    challenge: Challenge | None


@dataclass
class _Call:
    """One public call: the image, its options and the requests made so far."""

    image: ImageName
    what: str
    endpoint: _Endpoint
    credentials: RegistryCredentials | None
    ssl: ssl.SSLContext | bool
    proxy: str | None
    proxy_headers: dict[str, str] | None
    requests: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def fail(self, detail: str) -> str:
        return f"{self.what} {self.image.canonical}: {detail}"


def _basic(username: str, password: str) -> str:
    """An `Authorization: Basic` value (UTF-8, as Docker and go-containerregistry send it)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _proxy_parts(proxy: GitProxy | str | None) -> tuple[str | None, dict[str, str] | None]:
    """The proxy URL without credentials and its Basic auth (credentials never sit in a URL)."""
    if proxy is None:
        return None, None
    if isinstance(proxy, str):
        parts = urlsplit(proxy)
        if parts.username is None:
            return proxy, None
        address = proxy.replace(parts.netloc, parts.netloc.rpartition("@")[2], 1)
        proxy = GitProxy(address, parts.username, parts.password or "")
    if not proxy.username:
        return proxy.address, None
    return proxy.address, {"Proxy-Authorization": _basic(proxy.username, proxy.password or "")}


def _error_text(body: bytes) -> str:
    """The registry's `errors[].code: message`, or nothing (never the raw body)."""
    try:
        doc = json.loads(body)
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code, msg = errors[0].get("code", ""), errors[0].get("message", "")
            return f": {code} {msg}".rstrip()[:200]
    except ValueError:
        pass
    return ""


class RegistryClient:
    """Lists tags and reads manifest digests; one per service, shared by every scan.

    Holds one aiohttp session (opened on first use), the ping cache, the
    token cache and the TLS contexts. `close()` when done.
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._pings: dict[_Endpoint, _Ping] = {}
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}
        self._contexts = SSLContexts()

    async def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=False,
            )
        return self._session

    # -- public API ----------------------------------------------------------------------------

    async def list_tags(
        self,
        image: ImageName,
        *,
        credentials: RegistryCredentials | None = None,
        tls: RegistryTLS | None = None,
        insecure: bool = False,
        proxy: GitProxy | str | None = None,
        timeout: float = 30.0,
        page_size: int = 1000,
    ) -> TagListing:
        """Every tag of `image`'s repository (deduplicated, in the registry's order).

        `timeout` bounds the whole call. Raises `RegistryAuthError`,
        `RegistryNotFoundError`, `RegistryServerError`,
        `RegistryUnreachableError` (`RegistryTLSError`) or `RegistryError`.
        """
        call = await self._call(image, "cannot list tags of", credentials, tls, insecure, proxy)
        try:
            async with asyncio.timeout(timeout):
                return await self._list(call, max(1, page_size))
        except TimeoutError:
            raise self._timed_out(call, timeout) from None

    async def manifest_digest(
        self,
        image: ImageName,
        tag: str,
        *,
        credentials: RegistryCredentials | None = None,
        tls: RegistryTLS | None = None,
        insecure: bool = False,
        proxy: GitProxy | str | None = None,
        timeout: float = 30.0,
    ) -> str:
        """The digest (`sha256:…`) of the manifest `tag` points at. Raises as `list_tags`."""
        what = f"cannot read the digest of tag '{tag}' of"
        call = await self._call(image, what, credentials, tls, insecure, proxy)
        try:
            async with asyncio.timeout(timeout):
                return await self._digest(call, tag)
        except TimeoutError:
            raise self._timed_out(call, timeout) from None

    # -- calls ---------------------------------------------------------------------------------

    async def _call(
        self,
        image: ImageName,
        what: str,
        credentials: RegistryCredentials | None,
        tls: RegistryTLS | None,
        insecure: bool,
        proxy: GitProxy | str | None,
    ) -> _Call:
        proxy_url, proxy_headers = _proxy_parts(proxy)
        endpoint = _Endpoint(
            image.registry, insecure, insecure or image.plain_http_fallback, tls, proxy_url
        )
        context: ssl.SSLContext | bool = True
        if tls is not None and (tls.ca or tls.cert):
            try:
                context = await self._contexts.get(tls)
            except (ssl.SSLError, ValueError) as e:
                raise RegistryTLSError(
                    f"{what} {image.canonical}: the certificate secret cannot be used: {e}"
                ) from None
        return _Call(image, what, endpoint, credentials, context, proxy_url, proxy_headers)

    def _timed_out(self, call: _Call, timeout: float) -> RegistryUnreachableError:
        return RegistryUnreachableError(
            call.fail(
                f"registry {call.image.registry} did not answer within the timeout of {timeout:g}s"
            )
        )

    async def _list(self, call: _Call, page_size: int) -> TagListing:
        path = f"/v2/{call.image.repository}/tags/list?{urlencode({'n': page_size})}"
        ping = await self._ping(call)
        url: str | None = f"{ping.scheme}://{call.image.registry}{path}"
        origin = urlsplit(url)[:2]
        followed: set[str] = set()
        seen: dict[str, None] = {}
        received = 0
        while url is not None and url not in followed:
            if len(followed) >= MAX_PAGES:
                raise RegistryServerError(call.fail(f"more than {MAX_PAGES} pages of tags"))
            followed.add(url)
            status, headers, body = await self._authorized(call, "GET", url, MAX_BODY)
            self._check(call, status, body, "repository")
            page = self._tags_page(call, body)
            received += len(page)
            if received > MAX_TAGS:
                raise RegistryServerError(
                    call.fail(f"the repository lists more than {MAX_TAGS} tags")
                )
            seen.update(dict.fromkeys(page))
            url = next_link(headers.get("Link"), url)
            if url is not None and urlsplit(url)[:2] != origin:
                raise RegistryServerError(
                    call.fail(f"registry {call.image.registry} sent a Link to another host")
                )
        return TagListing(list(seen), call.requests)

    def _tags_page(self, call: _Call, body: bytes) -> list[str]:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        tags = doc.get("tags") if isinstance(doc, dict) else []
        if not isinstance(doc, dict) or not isinstance(tags, list | None):
            raise RegistryServerError(
                call.fail(f"registry {call.image.registry} sent a tag list that is not JSON")
            )
        return [t for t in tags or [] if isinstance(t, str)]

    async def _digest(self, call: _Call, tag: str) -> str:
        ping = await self._ping(call)
        url = f"{ping.scheme}://{call.image.registry}/v2/{call.image.repository}/manifests/{quote(tag, safe='')}"
        call.headers["Accept"] = ", ".join(MANIFEST_MEDIA_TYPES)
        status, headers, body = await self._authorized(call, "HEAD", url, 0)
        self._check(call, status, body, "manifest")
        digest = headers.get("Docker-Content-Digest", "")
        if digest.startswith("sha256:"):
            return digest
        status, headers, body = await self._authorized(call, "GET", url, MAX_MANIFEST)
        self._check(call, status, body, "manifest")
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def _check(self, call: _Call, status: int, body: bytes, thing: str) -> None:
        host = call.image.registry
        if status < 300:
            return
        detail = _error_text(body)
        if status in (401, 403):
            raise RegistryAuthError(
                call.fail(f"registry {host} denied access (HTTP {status}){detail}")
            )
        if status == 404:
            raise RegistryNotFoundError(
                call.fail(f"{thing} not found on {host} (HTTP 404){detail}")
            )
        raise RegistryServerError(
            call.fail(f"registry {host} answered HTTP {status}{detail}"), status
        )

    # -- auth ----------------------------------------------------------------------------------

    async def _authorized(
        self, call: _Call, method: str, url: str, limit: int
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One request with the endpoint's authorization; a 401 re-pings and retries once."""
        for attempt in (1, 2):
            ping = await self._ping(call)
            headers = dict(call.headers)
            headers.update(await self._auth_headers(call, ping))
            try:
                status, resp_headers, body = await self._request(call, method, url, headers, limit)
            except RegistryUnreachableError:
                self._pings.pop(
                    call.endpoint, None
                )  # the next scan pings (and picks a scheme) again
                raise
            if status != 401 or attempt == 2:
                return status, resp_headers, body
            self._forget(call, ping)
        raise AssertionError("unreachable")

    def _forget(self, call: _Call, ping: _Ping) -> None:
        self._pings.pop(call.endpoint, None)
        if ping.challenge is not None and ping.challenge.scheme == "bearer":
            self._tokens.pop(self._token_key(call, ping.challenge), None)

    def _scope(self, call: _Call) -> str:
        return f"repository:{call.image.repository}:pull"

    def _token_key(self, call: _Call, challenge: Challenge) -> tuple[str, str, str, str]:
        who = ""
        if call.credentials is not None:
            secret = f"{call.credentials.username}\0{call.credentials.password}"
            who = hashlib.sha256(secret.encode()).hexdigest()
        realm, service = challenge.realm or "", challenge.params.get("service", "")
        return realm, service, self._scope(call), who

    async def _auth_headers(self, call: _Call, ping: _Ping) -> dict[str, str]:
        challenge, host = ping.challenge, call.image.registry
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            if call.credentials is None:
                raise RegistryAuthError(
                    call.fail(
                        f"registry {host} requires credentials; none were given (spec.secretRef)"
                    )
                )
            return {"Authorization": _basic(call.credentials.username, call.credentials.password)}
        if challenge.scheme != "bearer" or not challenge.realm:
            raise RegistryAuthError(
                call.fail(
                    f"registry {host} asks for an unsupported authentication '{challenge.scheme}'"
                )
            )
        key = self._token_key(call, challenge)
        cached = self._tokens.get(key)
        if cached is None or cached[1] <= time.monotonic():
            cached = await self._fetch_token(call, challenge, key)
        return {"Authorization": f"Bearer {cached[0]}"}

    async def _fetch_token(
        self, call: _Call, challenge: Challenge, key: tuple[str, str, str, str]
    ) -> tuple[str, float]:
        realm, host = challenge.realm or "", call.image.registry
        if urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryAuthError(
                call.fail(f"registry {host} names a token realm that is not http(s)")
            )
        query = {"scope": self._scope(call)}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        sep = "&" if urlsplit(realm).query else "?"
        headers: dict[str, str] = {}
        if call.credentials is not None:
            headers["Authorization"] = _basic(call.credentials.username, call.credentials.password)
        status, _, body = await self._request(
            call, "GET", realm + sep + urlencode(query), headers, MAX_MANIFEST
        )
        token_host = urlsplit(realm).netloc
        if status in (401, 403):
            who = "the credentials" if call.credentials else "anonymous access"
            raise RegistryAuthError(
                call.fail(
                    f"token server {token_host} of registry {host} refused {who} (HTTP {status})"
                )
            )
        if status >= 300:
            raise RegistryServerError(
                call.fail(f"token server {token_host} of registry {host} answered HTTP {status}"),
                status,
            )
        try:
            grant = token_from_response(json.loads(body), dt.datetime.now(dt.UTC))
        except ValueError as e:
            raise RegistryAuthError(
                call.fail(f"token server {token_host} sent no usable token: {e}")
            ) from None
        margin = min(TOKEN_MARGIN, grant.lifetime / 10)
        entry = (grant.token, time.monotonic() + grant.lifetime - margin)
        if len(self._tokens) >= TOKEN_CACHE_SIZE:
            now = time.monotonic()
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
        self._tokens[key] = entry
        return entry

    async def _ping(self, call: _Call) -> _Ping:
        cached = self._pings.get(call.endpoint)
        if cached is not None:
            return cached
        schemes = ["https", "http"] if call.endpoint.fallback else ["https"]
        failures: list[RegistryError] = []
        for scheme in schemes:
            url = f"{scheme}://{call.image.registry}/v2/"
            try:
                status, headers, body = await self._request(call, "GET", url, {}, MAX_MANIFEST)
                challenge: Challenge | None = None
                if status == 401:
                    values = headers.getall("WWW-Authenticate", [])
                    challenge = pick_challenge(parse_challenges(", ".join(values)))
                    challenge = challenge or Challenge("basic")
                else:
                    self._check(call, status, body, "registry API (/v2/)")
            except RegistryError as e:
                if len(schemes) == 1:
                    raise
                failures.append(e)
                continue
            ping = _Ping(scheme, challenge)
            self._pings[call.endpoint] = ping
            return ping
        raise self._ping_failure(call, schemes, failures)

    def _ping_failure(
        self, call: _Call, schemes: list[str], failures: list[RegistryError]
    ) -> RegistryError:
        """Both schemes failed: the error of the scheme the registry speaks, with both details.

        https decides unless the peer did not speak TLS at all and http got an answer.
        """
        prefix = call.fail("")
        detail = call.fail(
            "; ".join(
                f"{s}: {e.message.removeprefix(prefix)}"
                for s, e in zip(schemes, failures, strict=True)
            )
        )
        first, last = failures[0], failures[-1]
        plain = isinstance(first, RegistryTLSError) and not first.speaks_tls
        chosen = last if plain and not isinstance(last, RegistryUnreachableError) else first
        if isinstance(chosen, RegistryServerError):
            return RegistryServerError(detail, chosen.status)
        if isinstance(chosen, RegistryTLSError):
            return RegistryTLSError(detail, chosen.speaks_tls)
        return type(chosen)(detail)

    # -- HTTP ----------------------------------------------------------------------------------

    async def _request(
        self, call: _Call, method: str, url: str, headers: dict[str, str], limit: int
    ) -> tuple[int, Any, bytes]:
        host = urlsplit(url).netloc
        call.requests += 1
        if call.proxy_headers and url.startswith("http:"):
            # aiohttp sends proxy_headers on CONNECT only; a plain http request goes to the proxy
            headers = {**headers, **call.proxy_headers}
        try:
            async with self._http().request(
                method,
                url,
                headers=headers,
                ssl=call.ssl if url.startswith("https:") else True,
                proxy=call.proxy,
                proxy_headers=call.proxy_headers,
                allow_redirects=True,
            ) as resp:
                body = b""
                if limit:
                    # content.read(n) returns what has arrived so far, not n bytes: a large
                    # tag list comes in several chunks, read to the end (bounded).
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        size += len(chunk)
                        if size > limit:
                            raise RegistryServerError(
                                call.fail(f"{host} sent more than {limit} bytes")
                            )
                        chunks.append(chunk)
                    body = b"".join(chunks)
                return resp.status, resp.headers, body
        except aiohttp.ClientProxyConnectionError as e:
            raise RegistryUnreachableError(
                call.fail(f"proxy {call.proxy} unreachable: {e.os_error.strerror or e}")
            ) from None
        except aiohttp.ClientHttpProxyError as e:
            raise RegistryUnreachableError(
                call.fail(f"proxy {call.proxy} answered HTTP {e.status}")
            ) from None
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as e:
            reason = _tls_reason(e)
            raise RegistryTLSError(
                call.fail(f"TLS handshake with {host} failed: {reason}"),
                speaks_tls=reason not in NOT_TLS,
            ) from None
        except aiohttp.ClientConnectorError as e:
            raise RegistryUnreachableError(
                call.fail(f"cannot connect to {host}: {e.os_error.strerror or e.os_error}")
            ) from None
        except (aiohttp.ClientError, ssl.SSLError, ConnectionError) as e:
            text = str(e)
            if (
                "[SSL" in text
            ):  # a TLS alert after the handshake (e.g. a client certificate refused)
                reason = text[text.index("[SSL") :][:200]
                raise RegistryTLSError(
                    call.fail(f"TLS session with {host} failed: {reason}")
                ) from None
            raise RegistryUnreachableError(
                call.fail(f"connection to {host} failed: {type(e).__name__}: {text[:200]}")
            ) from None


def _tls_reason(e: Exception) -> str:
    cert_error = getattr(e, "certificate_error", None)
    if cert_error is not None:
        return str(
            getattr(cert_error, "verify_message", None)
            or getattr(cert_error, "reason", None)
            or cert_error
        )
    os_error = getattr(e, "os_error", None)
    return str(getattr(os_error, "reason", None) or os_error or type(e).__name__)
