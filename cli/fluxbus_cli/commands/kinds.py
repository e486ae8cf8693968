"""Turning what the user typed (`ks`, `gitrepositories`, `all`, `Kustomization/podinfo`)
into kinds.

Pure: no I/O.
"""

from __future__ import annotations

from fluxbus_cli.errors import CliError
from fluxbus_cli.store import TOOLKIT_KINDS
from fluxbus_common.api import KindInfo, UnknownKind, resolve_kind

ALL = "all"


def kind(name: str) -> KindInfo:
    """Resolve a kind name (plural, singular, short name or Kind); raise CliError."""
    try:
        return resolve_kind(name)
    except UnknownKind:
        known = ", ".join(k.plural for k in (*TOOLKIT_KINDS, resolve_kind("secrets")))
        raise CliError(f'unknown kind "{name}" (known: {known})') from None


def kinds(name: str) -> list[KindInfo]:
    """Like `kind`, but `all` means every toolkit kind (not Secrets or ConfigMaps)."""
    if name.strip().lower() == ALL:
        return list(TOOLKIT_KINDS)
    return [kind(name)]


def kind_and_name(ref: str) -> tuple[KindInfo, str]:
    """Split `Kind/name` (any kind spelling) into the kind and the name."""
    kind_name, sep, name = ref.partition("/")
    if not sep or not kind_name or not name:
        raise CliError(f'expected KIND/NAME, got "{ref}"')
    return kind(kind_name), name
