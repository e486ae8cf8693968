"""Git adapter: list remote refs, shallow-fetch one revision, check out its tree.

The only module of the source service that imports dulwich. Everything
blocking runs in `asyncio.to_thread`, bounded by a timeout; dulwich, urllib3
and ssh failures come out as the typed errors of `fluxbus_source.errors`,
with messages that say what to fix and never contain a credential.

Transports:
- http(s) through dulwich's urllib3 client: basic auth, bearer token,
  extra CA (`ca.crt`), client certificate (`tls.crt`/`tls.key`). Pool
  managers are cached per TLS identity so polls reuse keep-alive connections.
- ssh through OpenSSH (`ssh`), configured so that nothing from the host
  leaks in and nothing is accepted blindly: `-F /dev/null`, only the given
  `identity`, `StrictHostKeyChecking=yes` against the given `known_hosts`
  (required), `BatchMode=yes`; a key passphrase is fed through a private
  `SSH_ASKPASS` helper reading it from the child's environment.

Polling cost: `ls_remote` is one request (protocol v0 ref advertisement);
a fetch of a branch/tag/semver/name ref re-resolves against the fetch's own
advertisement (no race between listing and fetching) and asks for depth 1.
A bare commit is fetched by id over protocol v2 (depth 1), falling back to
a full fetch of all branches when the server refuses unadvertised ids; a
commit with a branch fetches that branch's history to prove containment.
Objects land in an in-memory store (no `.git` directory is ever written:
file creation dominates small fetches) bounded by the size limit, and only
the tree's files are written to the destination.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import os
import posixpath
import shutil
import ssl
import subprocess
import tempfile
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from dulwich.client import (
    GitClient as DulwichClient,
)
from dulwich.client import (
    HTTPUnauthorized,
    SSHGitClient,
    SSHVendor,
    SubprocessWrapper,
    Urllib3HttpGitClient,
)
from dulwich.config import ConfigFile, parse_submodules
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.objects import Blob, Commit, ObjectID, Tag, Tree
from dulwich.refs import Ref
from dulwich.repo import BaseRepo, MemoryRepo

from fluxbus_source.errors import (
    GitAuthError,
    GitCredentialsError,
    GitError,
    GitHostKeyError,
    GitNotFoundError,
    GitSizeLimitError,
    GitTLSError,
    GitUnreachableError,
    InvalidURLError,
)
from fluxbus_source.logic.auth import GitAuth, GitProxy
from fluxbus_source.logic.ignore import in_sparse_checkout
from fluxbus_source.logic.paths import safe_relpath
from fluxbus_source.logic.refs import (
    Checkout,
    RefKind,
    Resolved,
    needs_remote_refs,
    ref_prefixes,
    resolve,
)
from fluxbus_source.logic.url import GitURL, parse_git_url

DEFAULT_TIMEOUT = 60.0
"""Flux's default `spec.timeout`."""

DEFAULT_SIZE_LIMIT = 512 * 1024 * 1024
"""Bytes of pack data, and separately of checked-out files, one fetch may produce."""

SSH_DEFAULT_USER = "git"
"""User for ssh:// URLs without one (go-git's default, so Flux's too)."""

MAX_SUBMODULE_DEPTH = 5
"""Recursion guard for `recurseSubmodules` (go-git's default depth is 10; 5 is plenty)."""

_S_IFGITLINK = 0o160000
_S_IFLNK = 0o120000
_S_IFDIR = 0o040000
_CANCELLED = "operation cancelled"


@dataclass(frozen=True)
class FetchResult:
    """A checked-out revision."""

    resolved: Resolved
    path: Path
    message: str
    """Commit message subject (Flux's event text: "stored artifact for commit '…'")."""
    files: int
    bytes_received: int


class _Cancelled(Exception):
    """Raised inside the worker thread once the caller gave up (timeout)."""


class _SizeExceeded(Exception):
    def __init__(self, what: str, size: int) -> None:
        super().__init__(what)
        self.what = what
        self.size = size


def _close_streams(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


@dataclass
class _Session:
    """Per-operation scratch: temp files for keys, ssh children, a cancel flag."""

    _tmp: Path | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    protocols: list[Any] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    timeout: float = DEFAULT_TIMEOUT
    proxy: GitProxy | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def tmp(self) -> Path:
        """A private (0700) temp dir, made on first use (HTTP polls never need one)."""
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="fluxbus-git-auth-"))
        return self._tmp

    def write(self, name: str, data: bytes, mode: int = 0o600) -> Path:
        path = self.tmp / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    @property
    def needs_cleanup(self) -> bool:
        """Whether `close()` has anything to do (HTTP polls usually leave nothing)."""
        with self.lock:
            return bool(self.procs or self.protocols or self._tmp is not None)

    def check(self) -> None:
        if self.cancelled.is_set():
            raise _Cancelled(_CANCELLED)

    def cancel(self) -> None:
        self.cancelled.set()
        with self.lock:
            for p in self.procs:
                if p.poll() is None:
                    p.kill()

    def close(self) -> None:
        self.cancel()
        with self.lock:
            for proto in self.protocols:
                with contextlib.suppress(Exception):
                    proto.close()
            self.protocols.clear()
            for p in self.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=5)
                _close_streams(p)
            self.procs.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# SSH
# --------------------------------------------------------------------------

_ASKPASS = '#!/bin/sh\nprintf "%s\\n" "$FLUXBUS_SSH_PASSPHRASE"\n'


class _OpenSSHVendor(SSHVendor):
    """Runs `ssh` with a locked-down command line (see module docstring)."""

    def __init__(self, session: _Session, auth: GitAuth, connect_timeout: float) -> None:
        self.session = session
        identity = auth.identity or b""
        if not identity.endswith(b"\n"):
            identity += b"\n"  # OpenSSH refuses keys without the final newline
        self.key_file = session.write("identity", identity)
        known = auth.known_hosts or b""
        self.known_hosts = session.write(
            "known_hosts", known if known.endswith(b"\n") else known + b"\n"
        )
        self.passphrase = auth.passphrase
        self.askpass = (
            session.write("askpass", _ASKPASS.encode(), 0o700) if self.passphrase else None
        )
        self.connect_timeout = max(1, int(connect_timeout))

    def run_command(  # type: ignore[override]
        self,
        host: str,
        command: bytes,
        username: str | None = None,
        port: int | None = None,
        password: str | None = None,
        key_filename: str | None = None,
        ssh_command: str | None = None,
        protocol_version: int | None = None,
    ) -> SubprocessWrapper:
        self.session.check()
        args = [
            "ssh", "-F", "/dev/null", "-x", "-T",
            "-i", str(self.key_file),
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "UpdateHostKeys=no",
            "-o", "PasswordAuthentication=no",
            "-o", "KbdInteractiveAuthentication=no",
            "-o", f"ConnectTimeout={self.connect_timeout}",
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.session.tmp)}
        if self.passphrase:
            # BatchMode would forbid asking for the passphrase; askpass is forced instead.
            args += ["-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1"]
            env |= {
                "SSH_ASKPASS": str(self.askpass),
                "SSH_ASKPASS_REQUIRE": "force",
                "DISPLAY": "fluxbus:0",
                "FLUXBUS_SSH_PASSPHRASE": self.passphrase,
            }
        else:
            args += ["-o", "BatchMode=yes"]
        if port:
            args += ["-p", str(port)]
        if protocol_version == 2:
            args += ["-o", "SetEnv=GIT_PROTOCOL=version=2"]
        if host.startswith("-") or (username or "").startswith("-"):
            raise GitError(f"refusing SSH host name {host!r}")
        target = f"{username}@{host}" if username else host
        proc = subprocess.Popen(
            [*args, target, command],  # type: ignore[list-item]
            bufsize=0,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        with self.session.lock:
            if self.session.cancelled.is_set():
                # Cancelled while spawning, maybe after close() already ran: clean up here.
                proc.kill()
                proc.wait()
                _close_streams(proc)
                raise _Cancelled(_CANCELLED)
            self.session.procs.append(proc)
        return SubprocessWrapper(proc)


class _HTTPClient(Urllib3HttpGitClient):
    """dulwich's urllib3 client, but error responses give their connection back.

    dulwich raises on 401/404 without releasing the streamed response, which
    leaks a socket per failed poll.
    """

    def _http_request(  # type: ignore[override]
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


class _SSHClient(SSHGitClient):
    """dulwich's SSH client, recording each protocol so the session can close it.

    On a failed handshake dulwich raises without closing the protocol it
    opened (a ResourceWarning and a lingering ssh child otherwise).
    """

    def __init__(self, session: _Session, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session = session

    def _connect(self, cmd: bytes, path: str | bytes, protocol_version: int | None = None) -> Any:
        proto, can_read, stderr = super()._connect(cmd, path, protocol_version)
        with self._session.lock:
            if self._session.cancelled.is_set():
                # The session may already be closed: nobody else would close this one.
                with contextlib.suppress(Exception):
                    proto.close()
                raise _Cancelled(_CANCELLED)
            self._session.protocols.append(proto)
        return proto, can_read, stderr


# --------------------------------------------------------------------------
# Error translation
# --------------------------------------------------------------------------


def _redact(text: str, auth: GitAuth | None) -> str:
    for secret in auth.sensitive_values() if auth else ():
        text = text.replace(secret, "***")
    return text


def _ssh_error(lines: Sequence[str], url: str, auth: GitAuth | None) -> GitError:
    text = " ".join(line.strip() for line in lines if line.strip())
    low = text.lower()
    label = auth.secret_label if auth else "the secret"
    if "host key verification failed" in low or "remote host identification has changed" in low:
        return GitHostKeyError(
            f"SSH host key of '{url}' is not in 'known_hosts' of {label} (or does not match it); "
            "add the host's key, e.g. from `ssh-keyscan -p <port> <host>`"
        )
    if "incorrect passphrase" in low or "bad passphrase" in low:
        return GitAuthError(f"the SSH key in {label} could not be decrypted: wrong 'password'")
    if "invalid format" in low or "load key" in low:
        return GitCredentialsError(
            f"'identity' in {label} is not a valid SSH private key (or needs 'password')"
        )
    if "permission denied" in low:
        return GitAuthError(
            f"SSH authentication to '{url}' failed: the key in 'identity' of {label} "
            "is not authorized (or its passphrase in 'password' is wrong)"
        )
    if "does not appear to be a git repository" in low or "not a git repository" in low:
        return GitNotFoundError(f"repository not found: '{url}'")
    for marker in (
        "connection refused",
        "could not resolve hostname",
        "timed out",
        "no route to host",
        "network is unreachable",
        "connection closed",
        "connection reset",
        "kex_exchange_identification",
    ):
        if marker in low:
            return GitUnreachableError(f"unable to reach '{url}': {_redact(text, auth)}")
    return GitError(f"git over SSH to '{url}' failed: {_redact(text, auth) or 'connection closed'}")


def _proxy_error(exc: BaseException, proxy: GitProxy) -> GitError | None:
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


def _http_error(exc: BaseException, url: str, auth: GitAuth | None) -> GitError:
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
        return GitAuthError(f"'{url}' refused access (HTTP 403): check the credentials in {label}")
    return GitError(f"git operation on '{url}' failed: {_redact(msg, auth)}")


def _translate(
    exc: BaseException, gurl: GitURL, auth: GitAuth | None, proxy: GitProxy | None = None
) -> GitError:
    url = gurl.redacted()
    if isinstance(exc, GitError):
        return exc
    if proxy is not None and (err := _proxy_error(exc, proxy)) is not None:
        return err
    if isinstance(exc, _SizeExceeded):
        return GitSizeLimitError(
            f"'{url}' is larger than the size limit: {exc.what} exceeded {exc.size} bytes"
        )
    if isinstance(exc, _Cancelled):
        return GitUnreachableError(f"git operation on '{url}' was cancelled (timeout)")
    if gurl.is_ssh:
        if isinstance(exc, HangupException):
            lines = [
                line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
                for line in (exc.stderr_lines or [])
            ]
            return _ssh_error(lines, url, auth)
        if isinstance(exc, GitProtocolError):
            return _ssh_error([str(exc)], url, auth)
        if isinstance(exc, OSError):
            return GitUnreachableError(f"unable to reach '{url}': {exc.strerror or exc}")
        return GitError(f"git over SSH to '{url}' failed: {_redact(str(exc), auth)}")
    return _http_error(exc, url, auth)


_OFS_DELTA, _REF_DELTA = 6, 7


def _read_varint_size(data: bytes) -> int:
    """Decode one size varint at the start of a delta (little-endian base-128)."""
    size = shift = 0
    for b in data:
        size |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return size


def _check_unpacked_size(f: Any, limit: int, session: _Session) -> None:
    """Refuse a pack whose objects inflate to more than `limit` bytes, before inflating it.

    A pack under the byte limit can still hold a blob that compresses a
    million to one; the in-memory store would inflate it whole. This walks
    the pack's object headers, streaming each zlib body through a
    decompressor that keeps nothing, and adds up the declared sizes (for a
    delta, the size of the object it produces).
    """
    end = f.tell()
    f.seek(0)
    try:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"PACK":
            return  # not a pack; dulwich's own checks will report it
        count = int.from_bytes(header[8:12], "big")
        total = 0
        for _ in range(count):
            session.check()
            byte = f.read(1)[0]
            kind, size, shift = (byte >> 4) & 7, byte & 0x0F, 4
            while byte & 0x80:
                byte = f.read(1)[0]
                size |= (byte & 0x7F) << shift
                shift += 7
            if kind == _OFS_DELTA:
                while f.read(1)[0] & 0x80:
                    pass
            elif kind == _REF_DELTA:
                f.read(20)
            inflater = zlib.decompressobj()
            head = b""
            while not inflater.eof:
                chunk = f.read(1 << 16)
                if not chunk:
                    return  # truncated: dulwich's checksum verification reports it
                out = inflater.decompress(chunk, 1 << 16)
                while inflater.unconsumed_tail and not inflater.eof:
                    if len(head) < 20:
                        head += out[:20]
                    out = inflater.decompress(inflater.unconsumed_tail, 1 << 16)
                if len(head) < 20:
                    head += out[:20]
            f.seek(-len(inflater.unused_data), os.SEEK_CUR)
            if kind in (_OFS_DELTA, _REF_DELTA):
                # Delta header: base size varint, then result size varint.
                i = 0
                while i < len(head) and head[i] & 0x80:
                    i += 1
                size = _read_varint_size(head[i + 1 :])
            total += size
            if total > limit:
                raise _SizeExceeded("unpacked objects", limit)
    finally:
        f.seek(end)


# --------------------------------------------------------------------------
# The adapter
# --------------------------------------------------------------------------


class GitClient:
    """Async Git operations for the source reconciler.

    `timeout` bounds each call (overridable per call: `spec.timeout`);
    `size_limit` bounds the pack bytes received and the bytes checked out.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        size_limit: int | None = DEFAULT_SIZE_LIMIT,
        list_protocol: int = 0,
    ) -> None:
        self.timeout = timeout
        self.size_limit = size_limit
        self.list_protocol = list_protocol
        """Git protocol of ref listings: 0 is one round trip but lists every ref;
        2 costs two round trips but asks the server only for the wanted refs
        (much cheaper on hosts with many refs, e.g. GitHub pull refs)."""
        self._pools: dict[tuple[Any, ...], urllib3.PoolManager] = {}
        self._pools_lock = threading.Lock()

    # -- public API ---------------------------------------------------------------
    async def ls_remote(
        self,
        url: str,
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        proxy: GitProxy | None = None,
    ) -> dict[str, str]:
        """List the remote's refs: `{"refs/heads/main": sha, "refs/tags/v1^{}": sha, …}`.

        Raises `InvalidURLError`, `GitAuthError`, `GitHostKeyError`, `GitTLSError`,
        `GitUnreachableError`, `GitNotFoundError` or `GitError`.
        """
        return await self._list(url, auth, timeout, proxy, None)

    async def _list(
        self,
        url: str,
        auth: GitAuth | None,
        timeout: float | None,
        proxy: GitProxy | None,
        prefixes: list[str] | None,
    ) -> dict[str, str]:
        gurl = parse_git_url(url)
        return await self._run(
            gurl, auth, timeout, lambda s: self._ls_remote_sync(gurl, auth, s, prefixes), proxy
        )

    async def resolve(
        self,
        url: str,
        checkout: Checkout,
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        proxy: GitProxy | None = None,
    ) -> Resolved:
        """Resolve `checkout` to a commit and Flux revision with one ref listing.

        A bare commit needs no network at all. Raises what `ls_remote` raises,
        plus `GitNotFoundError` / `GitNoSemverMatchError`.
        """
        gurl = parse_git_url(url)
        if not needs_remote_refs(checkout):
            return resolve(checkout, {}, gurl.redacted())
        refs = await self._list(url, auth, timeout, proxy, ref_prefixes(checkout))
        return resolve(checkout, refs, gurl.redacted())

    async def fetch(
        self,
        url: str,
        checkout: Checkout,
        dest: Path | str,
        auth: GitAuth | None = None,
        *,
        timeout: float | None = None,
        sparse_checkout: Sequence[str] | None = None,
        recurse_submodules: bool = False,
        size_limit: int | None = None,
        proxy: GitProxy | None = None,
    ) -> FetchResult:
        """Shallow-fetch the revision `checkout` names and write its tree into `dest`.

        `dest` must not exist or be empty. Symlinks in the tree are not
        written (artifacts never contain them). Raises the errors of
        `resolve`, plus `GitSizeLimitError`.
        """
        gurl = parse_git_url(url)
        limit = size_limit if size_limit is not None else self.size_limit
        target = Path(dest)
        sparse = [safe_relpath(d, "spec.sparseCheckout") for d in sparse_checkout or ()]
        sparse_checkout = None if not sparse or "" in sparse else sparse
        return await self._run(
            gurl,
            auth,
            timeout,
            lambda s: self._fetch_sync(
                gurl, checkout, target, auth, s, sparse_checkout, recurse_submodules, limit, 0
            ),
            proxy,
        )

    def close(self) -> None:
        """Drop cached HTTP connections."""
        with self._pools_lock:
            for pm in self._pools.values():
                pm.clear()
            self._pools.clear()

    # -- plumbing ----------------------------------------------------------------------
    async def _run(
        self,
        gurl: GitURL,
        auth: GitAuth | None,
        timeout: float | None,
        work: Callable[[_Session], Any],
        proxy: GitProxy | None = None,
    ) -> Any:
        limit = timeout or self.timeout
        self._check_auth(gurl, auth)
        if proxy is not None and gurl.is_ssh:
            raise GitCredentialsError(
                f"a proxy is set for SSH URL '{gurl.redacted()}': only http(s) URLs can use "
                "spec.proxySecretRef (SOCKS5 for SSH is not supported)"
            )
        session = _Session(timeout=limit, proxy=proxy)
        completed = False
        try:
            async with asyncio.timeout(limit):
                result = await asyncio.to_thread(self._guard, gurl, auth, session, work)
            completed = True
            return result
        except TimeoutError:
            raise GitUnreachableError(
                f"git operation on '{gurl.redacted()}' timed out after {limit:g}s"
            ) from None
        finally:
            session.cancel()
            # After a timeout or cancellation the worker may still hold resources.
            if not completed or session.needs_cleanup:
                await asyncio.to_thread(session.close)

    def _guard(
        self, gurl: GitURL, auth: GitAuth | None, session: _Session, work: Callable[[_Session], Any]
    ) -> Any:
        try:
            return work(session)
        except (GitError, InvalidURLError):
            raise
        except Exception as e:
            raise _translate(e, gurl, auth, session.proxy) from None

    @staticmethod
    def _check_auth(gurl: GitURL, auth: GitAuth | None) -> None:
        if not gurl.is_ssh:
            if auth is not None and auth.password and not auth.username and not auth.bearer_token:
                raise GitCredentialsError(
                    f"{auth.secret_label}: 'password' requires 'username' to be set"
                )
            return
        label = auth.secret_label if auth else "a secret referenced by spec.secretRef"
        if auth is None or not auth.identity:
            raise GitCredentialsError(
                f"SSH URL '{gurl.redacted()}' needs a private key: set 'identity' in {label}"
            )
        if not auth.known_hosts or not auth.known_hosts.strip():
            raise GitCredentialsError(
                f"SSH URL '{gurl.redacted()}' needs the host's public key: set 'known_hosts' in "
                f"{label} (host keys are never accepted blindly)"
            )

    def _pool(
        self, gurl: GitURL, auth: GitAuth | None, timeout: float, proxy: GitProxy | None = None
    ) -> urllib3.PoolManager:
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
        with self._pools_lock:
            pm = self._pools.get(key)
            if pm is not None:
                return pm
            headers = {"User-Agent": "fluxbus-source", "Pragma": "no-cache"}
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
            if len(self._pools) > 256:  # bound memory with many distinct remotes
                self._pools.pop(next(iter(self._pools))).clear()
            self._pools[key] = pm
            return pm

    def _client(
        self, gurl: GitURL, auth: GitAuth | None, session: _Session, timeout: float
    ) -> tuple[DulwichClient, str]:
        if gurl.is_ssh:
            assert auth is not None
            vendor = _OpenSSHVendor(session, auth, connect_timeout=min(timeout, 30.0))
            ssh: DulwichClient = _SSHClient(
                session,
                gurl.host,
                port=gurl.port,
                username=gurl.username or SSH_DEFAULT_USER,
                vendor=vendor,
            )
            return ssh, gurl.path
        a = auth or GitAuth()
        netloc = gurl.host if gurl.port is None else f"{gurl.host}:{gurl.port}"
        base = f"{gurl.scheme}://{netloc}/"
        client = _HTTPClient(
            base,
            pool_manager=self._pool(gurl, auth, timeout, session.proxy),
            username=a.username if (a.username or a.password) and not a.bearer_token else None,
            password=a.password if not a.bearer_token else None,
            timeout=timeout,
        )
        return client, gurl.path

    def _ls_remote_sync(
        self,
        gurl: GitURL,
        auth: GitAuth | None,
        session: _Session,
        prefixes: list[str] | None = None,
    ) -> dict[str, str]:
        client, path = self._client(gurl, auth, session, session.timeout)
        if self.list_protocol == 2 and prefixes:
            result = client.get_refs(
                path.encode(), protocol_version=2, ref_prefix=[p.encode() for p in prefixes]
            )
        else:
            # Protocol v0: the ref advertisement is a single round trip.
            result = client.get_refs(path.encode(), protocol_version=0)
        return {
            k.decode("utf-8", "replace"): v.decode()
            for k, v in result.refs.items()
            if v is not None and k != b"HEAD"
        }

    def _fetch_sync(
        self,
        gurl: GitURL,
        checkout: Checkout,
        dest: Path,
        auth: GitAuth | None,
        session: _Session,
        sparse: Sequence[str] | None,
        recurse: bool,
        limit: int | None,
        level: int,
    ) -> FetchResult:
        url = gurl.redacted()
        if dest.exists() and any(dest.iterdir()):
            raise GitError(f"checkout directory '{dest}' is not empty")
        dest.mkdir(parents=True, exist_ok=True)
        client, path = self._client(gurl, auth, session, session.timeout)
        # An in-memory object store: no .git directory to create (file creation is the
        # dominant cost of small fetches), and the size limit bounds the memory used.
        with contextlib.closing(MemoryRepo()) as repo:
            received = 0
            holder: dict[str, Any] = {}

            def determine_wants(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> Any:
                session.check()
                listing = {k.decode("utf-8", "replace"): v.decode() for k, v in refs.items() if v}
                resolved = resolve(checkout, listing, url) if needs_remote_refs(checkout) else None
                if resolved is None:
                    resolved = resolve(checkout, {}, url)
                holder["resolved"] = resolved
                if checkout.kind is RefKind.COMMIT:
                    if checkout.branch is not None:
                        assert resolved.ref is not None
                        holder["tip"] = listing[resolved.ref]
                        return [listing[resolved.ref].encode()]
                    if holder.get("all_heads"):
                        return sorted(
                            {v.encode() for k, v in listing.items() if k.startswith("refs/heads/")}
                        )
                    return [resolved.commit.encode()]
                assert resolved.ref is not None
                # The advertised value (a tag object for annotated tags): always fetchable.
                return [(listing.get(resolved.ref) or resolved.commit).encode()]

            def fetch(depth: int | None, protocol: int) -> None:
                nonlocal received
                received = 0
                f, commit, abort = repo.object_store.add_pack()

                def pack_data(data: bytes) -> int:
                    nonlocal received
                    session.check()
                    received += len(data)
                    if limit is not None and received > limit:
                        raise _SizeExceeded("pack data", limit)
                    f.write(data)
                    return len(data)

                try:
                    result = client.fetch_pack(
                        path.encode(),
                        determine_wants,
                        repo.get_graph_walker(),
                        pack_data,
                        depth=depth,
                        protocol_version=protocol,
                    )
                except BaseException:
                    abort()
                    raise
                if received:
                    if limit is not None:
                        try:
                            _check_unpacked_size(f, limit, session)
                        except BaseException:
                            abort()
                            raise
                    commit()
                else:
                    abort()
                repo.update_shallow(result.new_shallow, result.new_unshallow)

            if checkout.kind is RefKind.COMMIT and checkout.branch is None:
                try:
                    fetch(depth=1, protocol=2)
                except (GitProtocolError, HangupException):
                    # Servers refuse ids they do not advertise (v0), answer with an
                    # error or just hang up: fall back to all branches and look for
                    # the commit there (an outage fails again, with its own error).
                    session.check()
                    holder["all_heads"] = True
                    fetch(depth=None, protocol=0)
            elif checkout.kind is RefKind.COMMIT:
                fetch(depth=None, protocol=0)
            else:
                fetch(depth=1, protocol=0)
            resolved: Resolved = holder["resolved"]
            session.check()
            if checkout.kind is RefKind.COMMIT and checkout.branch is not None:
                self._require_contained(repo, holder["tip"], checkout, url)
            commit_obj = self._peel_commit(repo, resolved.commit.encode(), checkout, url)
            resolved = resolved.with_commit(commit_obj.id.decode())
            counter = [0, 0]  # files, bytes
            self._write_tree(repo, commit_obj.tree, dest, "", sparse, limit, counter, session)
            if recurse:
                self._submodules(
                    repo, commit_obj.tree, gurl, dest, auth, session, limit, level, sparse
                )
            message = commit_obj.message.decode("utf-8", "replace").strip().splitlines()
            return FetchResult(resolved, dest, message[0] if message else "", counter[0], received)

    @staticmethod
    def _peel_commit(repo: BaseRepo, sha: bytes, checkout: Checkout, url: str) -> Commit:
        try:
            obj = repo[sha]
        except KeyError:
            what = (
                f"commit '{checkout.value}'"
                if checkout.kind is RefKind.COMMIT
                else checkout.describe()
            )
            raise GitNotFoundError(f"{what} not found in '{url}'") from None
        while isinstance(obj, Tag):
            obj = repo[obj.object[1]]
        if not isinstance(obj, Commit):
            raise GitError(f"{checkout.describe()} in '{url}' does not point at a commit")
        return obj

    @staticmethod
    def _require_contained(repo: BaseRepo, tip: str, checkout: Checkout, url: str) -> None:
        """Raise unless the wanted commit is reachable from the fetched branch tip."""
        want = ObjectID(checkout.value.encode())
        if want in repo.object_store:
            for entry in repo.get_walker(include=[ObjectID(tip.encode())]):
                if entry.commit.id == want:
                    return
        raise GitNotFoundError(
            f"commit '{checkout.value}' not found in branch '{checkout.branch}' of '{url}'"
        )

    def _write_tree(
        self,
        repo: BaseRepo,
        tree_id: ObjectID,
        dest: Path,
        prefix: str,
        sparse: Sequence[str] | None,
        limit: int | None,
        counter: list[int],
        session: _Session,
    ) -> None:
        tree = repo[tree_id]
        assert isinstance(tree, Tree)
        for entry in tree.iteritems():
            session.check()
            name = entry.path.decode("utf-8", "surrogateescape")
            if name in ("", ".", "..") or "/" in name or "\0" in name or name.lower() == ".git":
                continue  # never let a crafted tree write outside dest or into .git
            rel = f"{prefix}{name}"
            mode = entry.mode
            if mode & 0o170000 == _S_IFDIR:
                if sparse and not any(
                    in_sparse_checkout(rel, sparse) or d.strip("/").startswith(rel + "/")
                    for d in sparse
                ):
                    continue
                (dest / rel).mkdir(exist_ok=True)
                self._write_tree(repo, entry.sha, dest, rel + "/", sparse, limit, counter, session)
                continue
            if mode & 0o170000 in (_S_IFLNK, _S_IFGITLINK):
                continue  # symlinks never reach an artifact; submodules are handled apart
            if not in_sparse_checkout(rel, sparse):
                continue
            blob = repo[entry.sha]
            assert isinstance(blob, Blob)
            data = blob.as_raw_string()
            counter[1] += len(data)
            if limit is not None and counter[1] > limit:
                raise _SizeExceeded("checked-out files", limit)
            # Three syscalls per file: creation dominates a large checkout's cost.
            fd = os.open(
                dest / rel,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                0o755 if mode & 0o111 else 0o644,
            )
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            counter[0] += 1

    def _submodules(
        self,
        repo: BaseRepo,
        tree_id: ObjectID,
        gurl: GitURL,
        dest: Path,
        auth: GitAuth | None,
        session: _Session,
        limit: int | None,
        level: int,
        sparse: Sequence[str] | None,
    ) -> None:
        gitlinks = [
            (e.path.decode(), e.sha.decode())
            for e in repo.object_store.iter_tree_contents(tree_id, include_trees=False)
            if e.mode & 0o170000 == _S_IFGITLINK
        ]
        if not gitlinks:
            return
        if level >= MAX_SUBMODULE_DEPTH:
            raise GitError(
                f"submodules of '{gurl.redacted()}' nest deeper than {MAX_SUBMODULE_DEPTH}"
            )
        urls: dict[str, str] = {}
        root = repo[tree_id]
        assert isinstance(root, Tree)
        if b".gitmodules" in root:
            _mode, gm_sha = root[b".gitmodules"]
            cfg = ConfigFile.from_file(io.BytesIO(repo[gm_sha].as_raw_string()))
            for raw_path, raw_url, _name in parse_submodules(cfg):
                urls[raw_path.decode()] = raw_url.decode()

        for sm_path, sha in gitlinks:
            if not in_sparse_checkout(sm_path, sparse):
                continue
            raw = urls.get(sm_path)
            if raw is None:
                raise GitError(f"submodule '{sm_path}' has no URL in .gitmodules")
            if raw.startswith(("./", "../")):
                # Relative to the superproject's URL, as git resolves it.
                path = posixpath.normpath(posixpath.join(gurl.path, raw))
                raw = dataclasses.replace(gurl, path=path).redacted()
            sub_url = parse_git_url(raw)
            sub_auth = auth if (sub_url.host, sub_url.scheme) == (gurl.host, gurl.scheme) else None
            if sub_url.is_ssh:
                self._check_auth(sub_url, sub_auth)
            target = dest / sm_path
            if target.exists():
                shutil.rmtree(target)
            self._fetch_sync(
                sub_url,
                Checkout(RefKind.COMMIT, sha),
                target,
                sub_auth,
                session,
                None,
                True,
                limit,
                level + 1,
            )


_default: GitClient | None = None


def default_client() -> GitClient:
    """A process-wide `GitClient` with default timeout and size limit."""
    global _default
    if _default is None:
        _default = GitClient()
    return _default
