"""Which stored objects a Receiver asks to reconcile: each `spec.resources`
entry (kind, name or `*` with `matchLabels`, namespace defaulting to the
Receiver's) resolved as notification-controller's `requestReconciliation`
does, and the optional `spec.resourceFilter` CEL expression (`res`: the
object's apiVersion/kind/metadata, `req`: the JSON request body).

Differences from Flux: `apiVersion` may be left out for every kind (fluxbus
stores objects by kind), and `*` without `matchLabels` is refused as in Flux.

Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fluxbus_common.api.meta import CrossNamespaceObjectReference
from fluxbus_common.cel import Program, activation, compile_program, evaluate_bool
from fluxbus_common.subjects import object_key

__all__ = [
    "TargetError",
    "TargetSelector",
    "compile_filter",
    "filter_accepts",
    "request_variables",
    "selector_of",
]

WILDCARD = "*"


class TargetError(ValueError):
    """A `spec.resources` entry that cannot be resolved (message names the entry)."""


@dataclass(frozen=True)
class TargetSelector:
    """One resolved `spec.resources` entry."""

    kind: str
    namespace: str
    name: str | None
    """None: every object of the kind in the namespace carrying `labels`."""
    labels: Mapping[str, str]

    @property
    def key(self) -> str | None:
        """The store key of the one object named, None for a label selection."""
        return None if self.name is None else object_key(self.kind, self.namespace, self.name)

    def describe(self) -> str:
        """`GitRepository/flux-system/podinfo` or `GitRepository/flux-system/*{app=web}`."""
        if self.name is not None:
            return f"{self.kind}/{self.namespace}/{self.name}"
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.kind}/{self.namespace}/*{{{labels}}}"

    def matches(self, doc: Mapping[str, Any]) -> bool:
        """Return whether a stored document is selected (namespace and every label)."""
        meta = doc.get("metadata") or {}
        if meta.get("namespace") != self.namespace:
            return False
        if self.name is not None:
            return bool(meta.get("name") == self.name)
        labels = meta.get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels.items())


def selector_of(ref: CrossNamespaceObjectReference, receiver_namespace: str) -> TargetSelector:
    """Resolve one `spec.resources` entry of a Receiver in `receiver_namespace`.

    Raises TargetError for `name: "*"` without `matchLabels` (Flux refuses it).
    """
    namespace = ref.namespace or receiver_namespace
    if ref.name != WILDCARD:
        return TargetSelector(ref.kind, namespace, ref.name, {})
    if ref.match_labels is None:
        raise TargetError(
            f"{ref.kind}/{namespace}/*: matchLabels field not set when using wildcard '*' as name"
        )
    return TargetSelector(ref.kind, namespace, None, dict(ref.match_labels))


def select(selector: TargetSelector, docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Return the store keys of the selected documents, sorted."""
    keys = []
    for doc in docs:
        if selector.matches(doc):
            meta = doc.get("metadata") or {}
            keys.append(object_key(selector.kind, selector.namespace, str(meta.get("name"))))
    return sorted(keys)


def compile_filter(expression: str | None) -> Program | None:
    """Compile `spec.resourceFilter` (None when unset); raise `CelError` when invalid."""
    if not expression:
        return None
    return compile_program(expression)


def request_variables(media_type: str, body: bytes) -> dict[str, Any]:
    """The `req` of a resource filter: the JSON body (an object), `{}` for other content.

    Raises TargetError when a JSON request body does not parse (Flux: 500).
    """
    if media_type != "application/json" or not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise TargetError(f"failed to parse request body as JSON: {e}") from None
    return doc if isinstance(doc, dict) else {}


def filter_accepts(program: Program | None, doc: Mapping[str, Any], req: Any) -> bool:
    """Return whether the resource filter accepts a stored object (no filter: yes)."""
    if program is None:
        return True
    res = {
        "apiVersion": doc.get("apiVersion", ""),
        "kind": doc.get("kind", ""),
        "metadata": doc.get("metadata") or {},
    }
    return evaluate_bool(program, activation({"res": res, "req": req}))
