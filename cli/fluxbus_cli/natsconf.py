"""Locked-down NATS for fluxbus, written to a directory: one nkey seed per role
(`creds/<role>.nk`, mode 600), the JetStream encryption key (`jetstream.key`)
and a nats-server configuration (`nats.conf`) holding only public keys, the
permissions of docs/security.md, TLS when given and encryption at rest.

Existing seeds and the encryption key are kept, so a second run (a restart of
`fluxbus up`) gives the same users and can still read the encrypted data.
Used by `fluxbus up` and `fluxbus nats config` (for compose and Kubernetes
Secrets).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import nkeys

from fluxbus_common import natsauth
from fluxbus_common.natsauth import JetStreamEncryption, Role, ServerConfig, ServerTLS

CONFIG_FILE = "nats.conf"
KEY_FILE = "jetstream.key"
CREDS_DIR = "creds"
CREDS_ENV = "FLUXBUS_NATS_CREDS"


@dataclass(frozen=True)
class NatsFiles:
    """What `write_config` wrote."""

    directory: Path
    config: Path
    creds: dict[Role, Path]

    def env(self, role: Role) -> dict[str, str]:
        """The environment a client of `role` needs (FLUXBUS_NATS_CREDS)."""
        return {CREDS_ENV: str(self.creds[role])}


def _write_secret(path: Path, text: str) -> None:
    """Create `path` readable by its owner only (0600 from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _seed(path: Path) -> str:
    """The user seed kept at `path`, created (random) when missing; its public key."""
    if not path.exists():
        raw = secrets.token_bytes(32)  # an Ed25519 seed is any 32 random bytes
        _write_secret(path, nkeys.encode_seed(raw, nkeys.PREFIX_BYTE_USER).decode() + "\n")
    pair = nkeys.from_seed(bytearray(path.read_text(encoding="utf-8").strip().encode()))
    try:
        return str(pair.public_key.decode())
    finally:
        pair.wipe()


def _encryption_key(path: Path) -> str:
    if not path.exists():
        _write_secret(path, secrets.token_urlsafe(32) + "\n")
    return path.read_text(encoding="utf-8").strip()


def write_config(
    directory: Path,
    *,
    store_dir: str,
    host: str = "127.0.0.1",
    port: int = 4222,
    tls: ServerTLS | None = None,
    encrypt: bool = True,
    key_env: str = "",
    roles: tuple[Role, ...] = tuple(Role),
) -> NatsFiles:
    """Write (or refresh) the seeds, the key and nats.conf under `directory`.

    `key_env`: the server reads the encryption key from this environment
    variable (a Kubernetes Secret) instead of nats.conf; jetstream.key holds it.
    Returns the paths. Raises OSError when the directory is not writable.
    """
    creds_dir = directory / CREDS_DIR
    creds_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    creds = {role: creds_dir / f"{role}.nk" for role in roles}
    users = {role: _seed(path) for role, path in creds.items()}
    encryption = None
    if encrypt:
        key = _encryption_key(directory / KEY_FILE)
        encryption = JetStreamEncryption("" if key_env else key, key_env=key_env)
    text = natsauth.server_config(
        ServerConfig(
            users=users,
            store_dir=store_dir,
            host=host,
            port=port,
            tls=tls,
            encryption=encryption,
        )
    )
    config = directory / CONFIG_FILE
    _write_secret(config, text)  # holds the encryption key
    return NatsFiles(directory=directory, config=config, creds=creds)
