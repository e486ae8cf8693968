"""Push refspecs (`src:dst`) as image automation writes them, and fast-forward wording.

Pure: no I/O.

Accepted forms (Flux's `spec.git.push.refspec` and what the writer pushes
itself): `refs/heads/main:refs/heads/main`, `HEAD:refs/heads/auto`,
`HEAD:refs/for/main` (Gerrit), `main:other` (short names are branches, as
`git push` reads them), a bare `main` (same name on both sides), and a
40-hex commit id as the source. A leading `+` (force) is refused: the writer
never overwrites history unless the caller asks for `force=True`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fluxbus_git.errors import InvalidSpecError
from fluxbus_git.logic.refs import HEADS

_HEX = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


@dataclass(frozen=True)
class PushRefspec:
    """One push: the local `src` (`HEAD`, a full ref or a commit id) onto the remote `dst`."""

    src: str
    dst: str


def _check_ref(name: str, spec: str) -> None:
    if (
        not name
        or name.startswith("/")
        or name.endswith(("/", ".lock", "."))
        or ".." in name
        or "//" in name
        or "@{" in name
        or any(c in name for c in " ~^:?*[\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    ):
        raise InvalidSpecError(
            f"push refspec {spec!r}: invalid Git reference {name!r} (see git-check-ref-format)"
        )


def _full(name: str, spec: str) -> str:
    if name == "HEAD" or _HEX.match(name):
        return name
    _check_ref(name, spec)
    return name if name.startswith("refs/") else HEADS + name


def parse_push_refspec(spec: str) -> PushRefspec:
    """Parse one push refspec into full names.

    Raises `InvalidSpecError` for a force (`+`) refspec, an empty side, a
    deletion (`:dst`), a pattern (`*`) or a malformed ref name.
    """
    text = spec.strip()
    if text.startswith("+"):
        raise InvalidSpecError(
            f"push refspec {spec!r}: force pushes ('+') are not allowed; "
            "remove the '+' (the push then only fast-forwards)"
        )
    src, sep, dst = text.partition(":")
    if not sep:
        dst = src
    if not src:
        raise InvalidSpecError(f"push refspec {spec!r}: deleting remote refs is not supported")
    if not dst:
        raise InvalidSpecError(f"push refspec {spec!r}: the destination is empty")
    if "*" in src or "*" in dst:
        raise InvalidSpecError(f"push refspec {spec!r}: patterns are not supported")
    if not sep and src == "HEAD":
        raise InvalidSpecError(f"push refspec {spec!r}: 'HEAD' needs a destination ('HEAD:dst')")
    if dst == "HEAD" or _HEX.match(dst):
        raise InvalidSpecError(
            f"push refspec {spec!r}: the destination must be a ref name such as 'refs/heads/main'"
        )
    return PushRefspec(_full(src, spec), _full(dst, spec))


def branch_ref(branch: str) -> str:
    """`refs/heads/<branch>` for a branch name (kept as is when already a full ref)."""
    return branch if branch.startswith("refs/") else HEADS + branch
