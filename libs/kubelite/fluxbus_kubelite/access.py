"""How a raw HTTP client (a benchmark, a script) reaches a kubelite from the
kubeconfig it wrote: the HTTPS URL, the bearer token header and an SSLContext
trusting its CA. kubectl and kubernetes-asyncio read the kubeconfig themselves.
"""

from __future__ import annotations

import base64
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml


def _named(cfg: dict[str, Any], section: str, field: str, name: Any) -> dict[str, Any]:
    """The `field` mapping of the entry called `name` in a kubeconfig `section`."""
    for entry in cfg.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            found = entry.get(field)
            return found if isinstance(found, dict) else {}
    return {}


@dataclass(frozen=True, repr=False)
class Access:
    """The URL, token and CA of one kubelite (its kubeconfig's current context)."""

    url: str
    token: str
    ca_pem: bytes
    kubeconfig: str = ""
    """The file it was read from (for clients that load kubeconfigs themselves)."""

    def __repr__(self) -> str:  # never print the token
        return f"Access({self.url})"

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str]) -> Access:
        """Read a kubeconfig kubelite wrote; raises ValueError when it lacks a
        server, a token or a CA."""
        cfg = yaml.safe_load(Path(path).read_text()) or {}
        current = cfg.get("current-context")
        ctx = _named(cfg, "contexts", "context", current)
        cluster = _named(cfg, "clusters", "cluster", ctx.get("cluster"))
        user = _named(cfg, "users", "user", ctx.get("user"))
        url, token, ca = (
            cluster.get("server"),
            user.get("token"),
            cluster.get("certificate-authority-data"),
        )
        if not (url and token and ca):
            raise ValueError(f"{path}: not a kubelite kubeconfig (server, token and CA needed)")
        return cls(url, token, base64.b64decode(ca), str(path))

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header every API request carries."""
        return {"Authorization": f"Bearer {self.token}"}

    def ssl(self) -> ssl.SSLContext:
        """An SSLContext trusting this kubelite's CA only."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    def session(self, limit: int = 100, **kwargs: Any) -> aiohttp.ClientSession:
        """An aiohttp session sending the token and trusting the CA; `limit`
        bounds its connections (aiohttp's TCPConnector limit)."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        connector = aiohttp.TCPConnector(ssl=self.ssl(), limit=limit)
        return aiohttp.ClientSession(headers=headers, connector=connector, **kwargs)
