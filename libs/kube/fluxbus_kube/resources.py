"""The types the cluster adapter speaks: `Resource` (how to address objects of
an apiVersion/kind), `Ref` (one object), `Change` (what an apply or delete did
to one object), `Preview` (what an apply would do) and `Judge` (the condition
a watch waits for).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resource:
    """One API resource: how to address objects of an apiVersion/kind."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "") -> str:
        """Return the REST path of the collection, or of one object when `name` is given."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


@dataclass(frozen=True)
class Ref:
    """One object: its resource, namespace ("" when cluster-scoped) and name."""

    resource: Resource
    namespace: str
    name: str

    def describe(self) -> str:
        """`Kind/namespace/name` (or `Kind/name`), as Flux prints it."""
        kind = self.resource.kind
        return f"{kind}/{self.namespace}/{self.name}" if self.namespace else f"{kind}/{self.name}"


@dataclass
class Change:
    """What happened to one object: created, configured, unchanged, skipped or deleted."""

    ref: Ref
    action: str
    object: dict[str, Any] | None = None
    """The object as the server answered (or the live one when unchanged)."""

    @property
    def subject(self) -> str:
        return self.ref.describe()


@dataclass(frozen=True)
class Preview:
    """What applying one object would do: the live object (None: absent) and the
    server-side dry-run result; `ref` is None when its kind is not served yet."""

    subject: str
    ref: Ref | None
    live: dict[str, Any] | None
    merged: dict[str, Any]


Judge = Callable[[Ref, Mapping[str, Any] | None], bool]
"""Whether an object (None: absent) is where a wait wants it."""
