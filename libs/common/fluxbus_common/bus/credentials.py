"""The NATS credentials file (FLUXBUS_NATS_CREDS) turned into nats-py connect
options. Three forms are accepted, told apart by their content:

- a `.creds` file (`-----BEGIN NATS USER JWT-----` and the user's nkey seed),
  for a server with decentralized JWT auth;
- an nkey seed file (`SU…`, one line), what `fluxbus nats config` and
  `fluxbus up` generate: the server knows only the public key;
- a user/password file: one line `user:password`.

Also returns the user's identity (public nkey or user name), which fixes its
reply-inbox prefix (`fluxbus_common.natsauth.inbox_prefix`); None for a
`.creds` file. Nothing read here ever reaches an error message or a log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fluxbus_common.ports import BusError

JWT_MARKER = "-----BEGIN NATS USER JWT-----"
SEED_PREFIX = "SU"
"""An nkey user seed starts with S (seed) and U (user)."""


def auth_options(path: str) -> tuple[dict[str, Any], str | None]:
    """Return (nats-py connect options, identity) for the credentials file at `path`.

    Raises BusError naming the file (never its content) when it cannot be read
    or has none of the three forms.
    """
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise BusError(f"FLUXBUS_NATS_CREDS: cannot read {path}: {e.__class__.__name__}") from None
    if JWT_MARKER in text:
        return {"user_credentials": path}, None
    if text.startswith(SEED_PREFIX) and "\n" not in text and ":" not in text:
        return {"nkeys_seed_str": text}, _public_key(text, path)
    user, sep, password = text.partition(":")
    if sep and user and password and "\n" not in text:
        return {"user": user, "password": password}, user
    raise BusError(
        f"FLUXBUS_NATS_CREDS: {path} is neither a NATS .creds file, an nkey seed "
        "nor a `user:password` line"
    )


def _public_key(seed: str, path: str) -> str:
    """The public nkey of a user seed (needs the `nkeys` package, a dependency)."""
    import nkeys  # nats-py's optional dependency; imported only for nkey users

    try:
        pair = nkeys.from_seed(bytearray(seed.encode()))
    except Exception as e:  # nkeys raises its own error classes and binascii's
        raise BusError(f"FLUXBUS_NATS_CREDS: {path} holds no valid nkey seed") from e
    try:
        return str(pair.public_key.decode())
    finally:
        pair.wipe()
