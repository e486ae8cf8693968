"""Which Flux kinds fluxbus serves, and which it does not serve yet.

One home for the list the README's compatibility section, the CLI and the
kustomize service read, so an OCIRepository in a repository is reported as "not
served by fluxbus yet" instead of looking like a missing CRD.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "NOT_SERVED",
    "SERVED_SOURCE_KINDS",
    "not_served",
    "not_served_message",
]

NOT_SERVED: Mapping[str, tuple[str, ...]] = {
    "source.toolkit.fluxcd.io": (
        "OCIRepository",
        "Bucket",
        "ExternalArtifact",
    ),
    "source.extensions.fluxcd.io": ("ArtifactGenerator",),
}
"""API group → the Flux kinds of that group fluxbus does not serve yet."""

SERVED_SOURCE_KINDS: tuple[str, ...] = ("GitRepository",)
"""The source kinds a Kustomization's `sourceRef` may name in fluxbus."""


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def not_served(api_version: str, kind: str) -> bool:
    """Return whether `apiVersion`/`kind` is a Flux kind fluxbus does not serve yet."""
    return kind in NOT_SERVED.get(_group(api_version), ())


def not_served_message(kind: str, api_version: str = "") -> str:
    """Return the plain sentence for a kind fluxbus does not serve yet."""
    group = _group(api_version) or next((g for g, ks in NOT_SERVED.items() if kind in ks), "")
    where = f" ({group})" if group else ""
    return f"{kind}{where} is a Flux kind fluxbus does not serve yet"
