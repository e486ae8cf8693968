"""The registry HTTP API's text formats: auth challenges, token responses, `Link` headers.

Pure: no I/O.

- `parse_challenges(header)` reads `WWW-Authenticate` (RFC 7235): one or more
  challenges, `Basic realm="..."`, `Bearer realm="...",service="...",scope="..."`,
  quoted strings with escapes and commas inside quotes. Scheme and parameter
  names are case-insensitive (lower-cased here).
- `token_from_response(document, now)` reads a Docker token-auth answer:
  `token` or `access_token`, `expires_in` (seconds; 60 when absent, as the
  token spec says) and `issued_at` (RFC 3339), and returns how long the token
  may be used from `now`.
- `next_link(header, base)` reads the `Link` header's `rel="next"` target and
  resolves it against the request URL (registries send relative links).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "Challenge",
    "TokenGrant",
    "next_link",
    "parse_challenges",
    "pick_challenge",
    "token_from_response",
]

DEFAULT_TOKEN_LIFETIME = 60.0
"""Seconds a token lives when the token server omits `expires_in` (Docker token spec)."""

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN68 = r"[A-Za-z0-9\-._~+/]+=*"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})")
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*({_QUOTED}|{_TOKEN})\s*")
_TOKEN68_RE = re.compile(rf"\s*({_TOKEN68})\s*(?:,|$)")
_LINK_RE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL_RE = re.compile(r';\s*rel\s*=\s*"?([^";,]*)"?', re.IGNORECASE)


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: `scheme` lower-cased, parameter names lower-cased."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in a `WWW-Authenticate` value, in order; [] when none can be read."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(header):
        if header[pos] in ", \t":
            pos += 1
            continue
        m = _SCHEME_RE.match(header, pos)
        if not m:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: dict[str, str] = {}
        t68 = _TOKEN68_RE.match(header, pos)
        if t68 and not _PARAM_RE.match(header, pos):
            pos = t68.end()
        while True:
            p = _PARAM_RE.match(header, pos)
            if not p:
                break
            params[p.group(1).lower()] = _unquote(p.group(2))
            pos = p.end()
            if pos < len(header) and header[pos] == ",":
                pos += 1
                # a comma followed by a new scheme (token then space or end) ends this challenge
                nxt = re.match(rf"\s*{_TOKEN}(\s+{_TOKEN}|\s*$|\s*,)", header[pos:])
                if nxt and not _PARAM_RE.match(header, pos):
                    break
        out.append(Challenge(scheme, params))
    return out


def pick_challenge(challenges: list[Challenge]) -> Challenge | None:
    """The first Basic or Bearer challenge (the ones a registry client can answer), else the first."""
    for c in challenges:
        if c.scheme in ("basic", "bearer"):
            return c
    return challenges[0] if challenges else None


@dataclass(frozen=True, repr=False)
class TokenGrant:
    """A bearer token and how many seconds it may still be used. `repr()` hides the token."""

    token: str
    lifetime: float

    def __repr__(self) -> str:
        return f"TokenGrant(lifetime={self.lifetime:.0f}s)"


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Python < 3.11 style fromisoformat would choke on nanoseconds: keep 6 fraction digits
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def token_from_response(document: object, now: dt.datetime) -> TokenGrant:
    """The token in a token server's JSON answer and its remaining lifetime at `now` (UTC).

    `token` wins over `access_token`. The lifetime is `expires_in` (default
    60 s) counted from `issued_at` when given, never more than `expires_in`
    (a server clock ahead of ours) and never negative. Raises ValueError
    when the answer holds no token.
    """
    if not isinstance(document, dict):
        raise ValueError("token response is not a JSON object")
    token = document.get("token") or document.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("token response has neither 'token' nor 'access_token'")
    raw = document.get("expires_in")
    expires_in = float(raw) if isinstance(raw, int | float) and raw > 0 else DEFAULT_TOKEN_LIFETIME
    issued = _parse_time(document.get("issued_at"))
    lifetime = expires_in
    if issued is not None:
        lifetime = (issued - now).total_seconds() + expires_in
    return TokenGrant(token, max(0.0, min(lifetime, expires_in)))


def next_link(header: str | None, base: str) -> str | None:
    """The absolute URL of the `Link` header's `rel="next"` entry, or None.

    A relative target is resolved against `base` (the URL that was requested).
    """
    if not header:
        return None
    for m in _LINK_RE.finditer(header):
        rels = _REL_RE.findall(m.group(2))
        if any("next" in rel.lower().split() for rel in rels):
            return str(urljoin(base, m.group(1).strip()))
    return None
