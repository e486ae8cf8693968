"""The errors of the Helm engine: one small hierarchy that hides helm_python's.

`str(error)` is always one line and carries no secret (credentials in URLs and
`Bearer`/`Basic` values are redacted). Errors cross the worker boundary as
`{"type": ..., "message": ..., ...}` documents (`to_wire` / `from_wire`).

Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from fluxbus_common.redact import redact_text

UNAVAILABLE_MESSAGE = "Helm kinds need the helm extra: pip install 'fluxbus[helm]'"

_SPACES = re.compile(r"\s+")
# Helm names the failing template as "<chart>/templates/<file>:<line>[:<col>]" in
# "execution error at (...)", "parse error at (...)" and "template: ..." messages.
_TEMPLATE = re.compile(r"([^\s()\"'<>:]+/templates/[^\s()\"'<>:]+):\d+")
# The longest message kept: Helm's errors can quote whole manifests.
_MAX_MESSAGE = 2000


def one_line(text: str) -> str:
    """`text` on one line, redacted and capped at a readable length."""
    flat = _SPACES.sub(" ", redact_text(text)).strip()
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 1] + "…"


def failing_template(message: str) -> str | None:
    """The template path Helm's error message names first, if any."""
    found = _TEMPLATE.search(message)
    return found.group(1) if found else None


class HelmEngineError(Exception):
    """Base of every error the engine raises; `str(e)` is one secret-free line."""

    def __init__(self, message: str) -> None:
        self.message = one_line(message)
        super().__init__(self.message)

    def wire_fields(self) -> dict[str, Any]:
        """The extra attributes a subclass needs to be rebuilt on the other side."""
        return {}


class HelmUnavailable(HelmEngineError):
    """helm_python is not installed (the `helm` extra)."""

    def __init__(self, message: str = UNAVAILABLE_MESSAGE) -> None:
        super().__init__(message)


class ChartLoadError(HelmEngineError):
    """Not a chart: a bad archive, a missing or malformed Chart.yaml."""


class RenderError(HelmEngineError):
    """A template failed to render; `.template` names it when Helm said which."""

    def __init__(self, message: str, template: str | None = None) -> None:
        super().__init__(message)
        self.template = template

    def wire_fields(self) -> dict[str, Any]:
        return {"template": self.template}


class ValuesError(HelmEngineError):
    """Values failed the chart's schema or are malformed."""


class ReleaseError(HelmEngineError):
    """An install, upgrade, rollback, uninstall or test action failed (Helm's words)."""


class ReleaseNotFound(HelmEngineError):
    """The release (or the asked revision) does not exist."""


class KubeUnreachable(HelmEngineError):
    """The cluster could not be reached or the kubeconfig is unusable."""


class RegistryError(HelmEngineError):
    """An OCI registry or chart repository operation failed (pull, tags, auth)."""


class WorkerLimitExceeded(HelmEngineError):
    """The worker went over its memory or time limit; it was killed and replaced."""

    def __init__(self, limit: Literal["memory", "time"], message: str | None = None) -> None:
        super().__init__(message or f"the Helm worker exceeded its {limit} limit and was killed")
        self.limit: Literal["memory", "time"] = limit

    def wire_fields(self) -> dict[str, Any]:
        return {"limit": self.limit}


class WorkerCrashed(HelmEngineError):
    """The worker process died (a native crash); it was replaced."""


_TYPES: dict[str, type[HelmEngineError]] = {
    cls.__name__: cls
    for cls in (
        HelmEngineError,
        HelmUnavailable,
        ChartLoadError,
        RenderError,
        ValuesError,
        ReleaseError,
        ReleaseNotFound,
        KubeUnreachable,
        RegistryError,
        WorkerLimitExceeded,
        WorkerCrashed,
    )
}


def to_wire(error: HelmEngineError) -> dict[str, Any]:
    """The error as a JSON-able document for the worker protocol."""
    return {"type": type(error).__name__, "message": error.message, **error.wire_fields()}


def from_wire(doc: dict[str, Any]) -> HelmEngineError:
    """Rebuild an error sent by `to_wire`; an unknown type becomes the base class."""
    kind = _TYPES.get(str(doc.get("type")), HelmEngineError)
    message = str(doc.get("message", ""))
    if kind is RenderError:
        template = doc.get("template")
        return RenderError(message, template if isinstance(template, str) else None)
    if kind is WorkerLimitExceeded:
        return WorkerLimitExceeded("memory" if doc.get("limit") == "memory" else "time", message)
    if kind is HelmUnavailable:
        return HelmUnavailable(message or UNAVAILABLE_MESSAGE)
    return kind(message)
