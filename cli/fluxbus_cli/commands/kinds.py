"""Turning what the user typed (`ks`, `gitrepositories`, `all`, `Kustomization/podinfo`,
and Flux's two-word forms `sources git`, `images policy`) into kinds, with a
"did you mean" for a typo.

Pure: no I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from fluxbus_cli.errors import CliError
from fluxbus_cli.store import TOOLKIT_KINDS
from fluxbus_common.api import KINDS, KindInfo, UnknownKind, resolve_kind
from fluxbus_common.api.compat import not_served_message

ALL = "all"

FLUX_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "source": {
        "git": ("GitRepository",),
        "helm": ("HelmRepository",),
        "chart": ("HelmChart",),
        ALL: ("GitRepository", "HelmRepository", "HelmChart"),
    },
    "image": {
        "repository": ("ImageRepository",),
        "policy": ("ImagePolicy",),
        "update": ("ImageUpdateAutomation",),
        ALL: ("ImageRepository", "ImagePolicy", "ImageUpdateAutomation"),
    },
}
"""`flux get sources git`, `flux reconcile image update`: Flux's command groups
(singular or plural) and the kinds each subcommand names."""
NOT_SERVED_SOURCES = {
    "oci": "OCIRepository",
    "bucket": "Bucket",
}
"""Flux's other `source` subcommands, named so the answer is "not served yet"."""
FLUX_ALIASES = {
    "alert-providers": "providers",
    "alert-provider": "providers",
}
"""Flux's names that are not kubectl's: `flux get alert-providers` (`hr` is
HelmRelease's own short name)."""


def _spellings() -> list[str]:
    names = [n for info in KINDS for n in info.names]
    names += [f"{g}s {sub}" for g, subs in FLUX_GROUPS.items() for sub in subs]
    return [*names, *FLUX_ALIASES, ALL]


def suggestion(name: str) -> str | None:
    """Return the known kind spelling closest to `name`, or None when nothing is close."""
    close = difflib.get_close_matches(name.strip().lower(), _spellings(), n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown(name: str) -> CliError:
    known = ", ".join(k.plural for k in (*TOOLKIT_KINDS, resolve_kind("secrets")))
    close = suggestion(name)
    hint = f', did you mean "{close}"?' if close else ""
    return CliError(f'unknown kind "{name}"{hint} (known: {known})')


def kind(name: str) -> KindInfo:
    """Resolve a kind name (plural, singular, short name or Kind); raise CliError
    (with the closest known spelling, when one is close)."""
    lowered = name.strip().lower()
    alias = FLUX_ALIASES.get(lowered)
    if alias is not None and alias[0].isupper():
        raise CliError(not_served_message(alias))
    try:
        return resolve_kind(alias or name)
    except UnknownKind:
        raise _unknown(name) from None


def kinds(name: str) -> list[KindInfo]:
    """Like `kind`, but `all` means every toolkit kind (not Secrets or ConfigMaps)."""
    if name.strip().lower() == ALL:
        return list(TOOLKIT_KINDS)
    return [kind(name)]


@dataclass(frozen=True)
class Selection:
    """What the positional words of `get`/`reconcile`/… name: kinds and maybe one object."""

    kinds: list[KindInfo]
    name: str | None

    def astuple(self) -> tuple[list[KindInfo], str | None]:
        return self.kinds, self.name


def _group(word: str) -> dict[str, tuple[str, ...]] | None:
    lowered = word.strip().lower()
    return FLUX_GROUPS.get(lowered.removesuffix("s"))


def kind_words(words: Sequence[str]) -> Selection:
    """Read `KIND [NAME]` or Flux's `GROUP SUBKIND [NAME]` (`sources git podinfo`,
    `image policy podinfo`, `images all`). Raises CliError naming what is wrong."""
    if not words:
        raise CliError("give a KIND (e.g. kustomizations, sources git, images all)")
    first, rest = words[0], list(words[1:])
    group = _group(first)
    if group is not None:
        if not rest:
            subs = "|".join(group)
            raise CliError(f'"{first}" needs a subcommand: {first} {subs}')
        sub = rest.pop(0).strip().lower()
        if sub in NOT_SERVED_SOURCES and group is FLUX_GROUPS["source"]:
            raise CliError(not_served_message(NOT_SERVED_SOURCES[sub]))
        if sub not in group:
            close = difflib.get_close_matches(sub, list(group), n=1)
            hint = f', did you mean "{first} {close[0]}"?' if close else ""
            raise CliError(f'unknown kind "{first} {sub}"{hint} (known: {", ".join(group)})')
        found = [resolve_kind(k) for k in group[sub]]
    else:
        found = kinds(first)
    if len(rest) > 1:
        raise CliError(f"expected at most one NAME, got {' '.join(rest)}")
    return Selection(found, rest[0] if rest else None)


def one_kind_and_name(words: Sequence[str], verb: str) -> tuple[KindInfo, str]:
    """`KIND NAME` (or Flux's `source git NAME`) of one object; raise CliError otherwise."""
    parsed = kind_words(words)
    if len(parsed.kinds) != 1:
        raise CliError(f"{verb} takes one kind, not all")
    if parsed.name is None:
        raise CliError(f"give the NAME of the {parsed.kinds[0].kind} to {verb}")
    return parsed.kinds[0], parsed.name


def complete_kind(args: list[str], incomplete: str) -> list[str]:
    """Shell completion of the KIND words (typer passes the words typed so far):
    kind spellings, or a Flux group's subcommands after `sources`/`images`."""
    group = _group(args[-1]) if args else None
    if group is not None:
        names = list(group)
    else:
        names = sorted(
            {i.plural for i in KINDS} | {i.short_names[0] for i in KINDS if i.short_names}
        )
        names += [ALL, "sources", "images"]
    return [n for n in names if n.startswith(incomplete.lower())]


def kind_and_name(ref: str) -> tuple[KindInfo, str]:
    """Split `Kind/name` (any kind spelling) into the kind and the name."""
    kind_name, sep, name = ref.partition("/")
    if not sep or not kind_name or not name:
        raise CliError(f'expected KIND/NAME, got "{ref}"')
    return kind(kind_name), name
