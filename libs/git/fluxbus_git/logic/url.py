"""Validation of `spec.url`: http(s):// and ssh:// only, as Flux.

Pure: no I/O.

Rejected with a message saying what to write instead: the scp-like
`git@host:org/repo.git` form (Flux does not support it), `ssh://host:path`
(same mistake inside an ssh URL), `file://` and bare paths (an object must
never make the controller read its own disk), other schemes, and passwords
embedded in the URL (credentials belong in `spec.secretRef`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from fluxbus_git.errors import InvalidURLError

_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^/:]+):(?P<path>(?!//).*)$")


@dataclass(frozen=True)
class GitURL:
    """A validated Git address."""

    scheme: str
    host: str
    port: int | None
    username: str | None
    path: str

    @property
    def is_ssh(self) -> bool:
        return self.scheme == "ssh"

    @property
    def is_https(self) -> bool:
        return self.scheme == "https"

    def redacted(self) -> str:
        """The URL without any userinfo except an SSH user name (safe to log)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = host if self.port is None else f"{host}:{self.port}"
        if self.is_ssh and self.username:
            netloc = f"{self.username}@{netloc}"
        return urlunsplit((self.scheme, netloc, self.path, "", ""))

    def base_url(self) -> str:
        """http(s) URL without userinfo, for the HTTP client."""
        return self.redacted()


def parse_git_url(url: str) -> GitURL:
    """Validate `spec.url` and return its parts.

    Raises `InvalidURLError` (Stalling, reason `URLInvalid`) with the fix.
    """
    raw = url.strip()
    if not raw:
        raise InvalidURLError("spec.url: empty URL; expected https://, http:// or ssh://")
    if "://" not in raw:
        m = _SCP_LIKE.match(raw)
        if m and not raw.startswith(("/", ".")):
            user = f"{m['user']}@" if m["user"] else ""
            path = m["path"].lstrip("/")
            raise InvalidURLError(
                f"spec.url: scp-like address '{raw}' is not supported; "
                f"use 'ssh://{user}{m['host']}/{path}'"
            )
        raise InvalidURLError(
            f"spec.url: '{raw}' is not a URL; local paths are not allowed, "
            "expected https://, http:// or ssh://"
        )
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme == "file":
        raise InvalidURLError(
            f"spec.url: file:// URLs are not allowed ('{raw}'): a GitRepository must not "
            "read the controller's disk; serve the repository over https:// or ssh://"
        )
    if scheme not in ("http", "https", "ssh"):
        raise InvalidURLError(
            f"spec.url: scheme '{parts.scheme}://' is not supported; "
            "expected https://, http:// or ssh://"
        )
    try:
        port = parts.port
    except ValueError:
        port_text = parts.netloc.rpartition(":")[2]
        if scheme == "ssh":
            host = parts.hostname or ""
            user = f"{parts.username}@" if parts.username else ""
            path = f"{port_text}{parts.path}".lstrip("/")
            raise InvalidURLError(
                f"spec.url: '{raw}' mixes ssh:// with the scp-like 'host:path' form; "
                f"use 'ssh://{user}{host}/{path}'"
            ) from None
        raise InvalidURLError(f"spec.url: invalid port '{port_text}' in '{raw}'") from None
    host = parts.hostname or ""
    if not host:
        raise InvalidURLError(f"spec.url: no host in '{raw}'")
    if parts.password is not None:
        raise InvalidURLError(
            f"spec.url: credentials embedded in the URL for host '{host}' are not allowed; "
            "put them in the secret referenced by spec.secretRef (username/password)"
        )
    if parts.query or parts.fragment:
        raise InvalidURLError(f"spec.url: query strings and fragments are not allowed in '{raw}'")
    path = parts.path or "/"
    if scheme == "ssh" and path in ("", "/"):
        raise InvalidURLError(f"spec.url: no repository path in '{raw}'")
    return GitURL(scheme, host, port, parts.username or None, path)
