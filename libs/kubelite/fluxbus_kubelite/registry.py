"""The registry of served resource types: built-in kinds plus what CRDs define.

Answers the lookups discovery, routing and the controllers need (by
group/version/plural, by storage key, by apiVersion and kind).

Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

from .resources import ResourceType, builtin_types, crd_types

GroupVersion = tuple[str, str]


def _version_priority(v: str) -> tuple[int, int, int]:
    m = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", v)
    if not m:
        return (0, 0, 0)
    stage = {"alpha": 1, "beta": 2, None: 3}[m.group(2)]
    return (stage, int(m.group(1)), int(m.group(3) or 0))


def sort_versions(versions: list[str]) -> list[str]:
    """Versions by Kubernetes priority: GA before beta before alpha, higher first."""
    return sorted(versions, key=_version_priority, reverse=True)


class Registry:
    """The resource types served, by group/version then plural."""

    def __init__(self) -> None:
        self.types: dict[GroupVersion, dict[str, ResourceType]] = {}
        #: groups in the order they were first registered (discovery lists them so)
        self.group_order: list[str] = []
        #: the types each CRD (by name) registered
        self.crd_types: dict[str, list[ResourceType]] = {}
        for rt in builtin_types():
            self.register(rt)

    def register(self, rt: ResourceType) -> None:
        if rt.group not in self.group_order:
            self.group_order.append(rt.group)
        self.types.setdefault((rt.group, rt.version), {})[rt.plural] = rt

    def unregister(self, rt: ResourceType) -> None:
        gv = (rt.group, rt.version)
        self.types.get(gv, {}).pop(rt.plural, None)
        if not self.types.get(gv):
            self.types.pop(gv, None)
        if not any(g == rt.group for g, _ in self.types):
            self.group_order.remove(rt.group)

    def sync_crd(self, crd: dict[str, Any] | None, name: str) -> None:
        """(Re)register the types a CRD defines; None unregisters them."""
        for rt in self.crd_types.pop(name, []):
            self.unregister(rt)
        if crd is not None:
            rts = crd_types(crd)
            for rt in rts:
                self.register(rt)
            self.crd_types[name] = rts

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at /<group>/<version>/<plural>, or None."""
        return self.types.get((group, version), {}).get(plural)

    def group_versions(self, group: str) -> list[str]:
        """The versions served of group, preferred first."""
        return sort_versions([v for g, v in self.types if g == group])

    def type_for_key(self, key: tuple[str, str]) -> ResourceType | None:
        """A served type of a storage key (the preferred version), or None."""
        group, plural = key
        for v in self.group_versions(group):
            rt = self.lookup(group, v, plural)
            if rt is not None:
                return rt
        return None

    def type_for_kind(self, api_version: str, kind: str) -> ResourceType | None:
        """The type serving kind at api_version, or None."""
        group, _, version = api_version.rpartition("/")
        for rt in self.types.get((group, version), {}).values():
            if rt.kind == kind:
                return rt
        return None
