"""What Git operations hand back to their callers, and the values writes take.

Pure: no I/O. Kept apart from the transports so that ports and reconcilers
can name these types without importing dulwich.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fluxbus_git.errors import GitSigningError
from fluxbus_git.logic.refs import Resolved

SIGNING_KEY = "git.asc"
"""Key of the armored OpenPGP private key in Flux's `spec.git.commit.signingKey` secret."""
SIGNING_PASSPHRASE = "passphrase"
"""Key of the private key's passphrase in that secret (optional)."""


@dataclass(frozen=True)
class FetchResult:
    """A checked-out revision."""

    resolved: Resolved
    path: Path
    message: str
    """Commit message subject (Flux's event text: "stored artifact for commit '…'")."""
    files: int
    bytes_received: int


@dataclass(frozen=True)
class CommitAuthor:
    """Author (and committer) of a commit: `spec.git.commit.author`."""

    name: str
    email: str


@dataclass(frozen=True, repr=False)
class SigningKey:
    """An armored OpenPGP private key (Flux's `git.asc`) and its passphrase. `repr()` hides both."""

    armored: bytes
    passphrase: str | None = None
    secret_name: str | None = None
    """Name of the secret, for messages only."""

    def __repr__(self) -> str:
        return f"SigningKey(secret={self.secret_name!r}, passphrase={self.passphrase is not None})"

    @property
    def secret_label(self) -> str:
        return f"signing key secret '{self.secret_name}'" if self.secret_name else "the signing key"

    @classmethod
    def from_secret(
        cls, data: Mapping[str, str | bytes], name: str | None = None, encoded: bool = False
    ) -> SigningKey:
        """Build from a secret's data (`encoded=True` when values are base64, as in `.data`).

        Raises `GitSigningError` when `git.asc` is missing or a value cannot be decoded.
        Whether the key itself is usable is checked when signing (`fluxbus_git.signing`).
        """
        label = f"signing key secret '{name}'" if name else "the signing key secret"

        def get(key: str) -> bytes | None:
            v = data.get(key)
            if v is None:
                return None
            raw = v.encode() if isinstance(v, str) else v
            if encoded:
                try:
                    raw = base64.b64decode(raw, validate=True)
                except (binascii.Error, ValueError):
                    raise GitSigningError(f"{label}: key '{key}' is not valid base64") from None
            return raw

        armored = get(SIGNING_KEY)
        if not armored or not armored.strip():
            raise GitSigningError(f"{label} does not contain a '{SIGNING_KEY}' key")
        passphrase = get(SIGNING_PASSPHRASE)
        text: str | None = None
        if passphrase is not None:
            try:
                text = passphrase.decode("utf-8")
            except UnicodeDecodeError:
                raise GitSigningError(f"{label}: '{SIGNING_PASSPHRASE}' is not UTF-8") from None
        return cls(armored, text, name)


@dataclass(frozen=True)
class CloneResult:
    """A clone ready for edits: HEAD at `commit`, on `branch` (None: detached HEAD)."""

    commit: str
    branch: str | None


@dataclass(frozen=True)
class PushResult:
    """What a push left on the remote: `refs` maps each remote ref to the commit it now holds."""

    commit: str
    """The commit pushed (the local HEAD, or the first refspec's source)."""
    refs: dict[str, str]
