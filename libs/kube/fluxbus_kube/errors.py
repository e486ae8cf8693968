"""What the cluster adapter raises instead of letting kubernetes_asyncio or
aiohttp errors leak upward.

A service's reconciler turns them into the common typed errors (the kustomize
service: `Generic` with Flux's `ReconciliationFailed` for a failed dry-run or
apply, `PruneFailed`, …).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fluxbus_kube.resources import Change


class ClusterError(Exception):
    """Any failure talking to the target cluster; the message names the object."""


class ApiError(ClusterError):
    """The API server answered with a `Status` failure."""

    def __init__(self, status: int, body: Mapping[str, Any] | None, what: str = "") -> None:
        body = body or {}
        self.status = status
        self.reason = str(body.get("reason") or "")
        self.api_message = str(body.get("message") or f"HTTP {status}")
        self.details = dict(body.get("details") or {})
        super().__init__(f"{what}: {self.api_message}" if what else self.api_message)

    @property
    def causes(self) -> list[dict[str, Any]]:
        return [c for c in self.details.get("causes") or [] if isinstance(c, dict)]

    @property
    def immutable(self) -> bool:
        """Whether a 422 Invalid complains about an immutable field."""
        if self.status != 422:
            return False
        texts = [self.api_message, *(str(c.get("message", "")) for c in self.causes)]
        return any("immutable" in t.lower() for t in texts)

    def field_message(self) -> str:
        """Return `field: message` of the causes (or the API message)."""
        parts = [
            f"{c.get('field')}: {c.get('message')}" if c.get("field") else str(c.get("message"))
            for c in self.causes
        ]
        return "; ".join(parts) or self.api_message


class ApplyError(ClusterError):
    """Some objects could not be applied; `changes` holds what was done before,
    `reason` is Flux's `ReconciliationFailed`."""

    def __init__(self, message: str, changes: Sequence[Change], reason: str) -> None:
        super().__init__(message)
        self.changes = list(changes)
        self.reason = reason
