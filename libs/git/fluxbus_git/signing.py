"""OpenPGP commit signatures with Sequoia (pysequoia): the one home of key handling.

Flux's `spec.git.commit.signingKey` secret holds an armored private key
(`git.asc`) and an optional `passphrase`. `sign()` returns the armored
detached signature of a commit payload, which the writer stores in the
commit's `gpgsig` header exactly as `git commit -S` does, so `git
verify-commit` accepts it. Like Flux, a secret with several keys is
refused (which one would sign?) and a protected key without a passphrase
is an error naming the missing `passphrase` field.

Errors come out as `GitSigningError`; their messages name the secret and
never contain key material or the passphrase (Sequoia's own messages are
not passed on: they may quote input).

Blocking (CPU only): called from the writer's worker thread.
"""

from __future__ import annotations

import pysequoia

from fluxbus_git.errors import GitSigningError
from fluxbus_git.results import SIGNING_KEY, SIGNING_PASSPHRASE, SigningKey


def _load(key: SigningKey) -> pysequoia.Tsk:
    """The one secret key in `key.armored`; raises `GitSigningError`."""
    label = key.secret_label
    try:
        certs = pysequoia.Cert.split_bytes(key.armored)
    except Exception:  # Sequoia raises RuntimeError/ValueError with parser details
        raise GitSigningError(
            f"could not read the OpenPGP key '{SIGNING_KEY}' of {label}: not an armored key"
        ) from None
    if not certs:
        raise GitSigningError(f"'{SIGNING_KEY}' of {label} holds no OpenPGP key")
    if len(certs) > 1:
        raise GitSigningError(
            f"multiple keys read from '{SIGNING_KEY}' of {label}, could not determine "
            "which signing key to use"
        )
    try:
        return pysequoia.Tsk.from_bytes(key.armored)
    except Exception:
        raise GitSigningError(f"'{SIGNING_KEY}' of {label} is not a usable private key") from None


def _signer(key: SigningKey) -> pysequoia.PySigner:
    tsk = _load(key)
    label = key.secret_label
    try:
        return tsk.signer(key.passphrase)
    except Exception as e:
        text = str(e).lower()
        if "encrypted" in text and key.passphrase is None:
            raise GitSigningError(
                f"can not use passphrase protected signing key without '{SIGNING_PASSPHRASE}' "
                f"field present in {label}"
            ) from None
        if "no suitable signing" in text:
            raise GitSigningError(
                f"'{SIGNING_KEY}' of {label} holds no usable secret signing key "
                "(a public key, or an expired or revoked one)"
            ) from None
        raise GitSigningError(
            f"could not decrypt the private key of {label}: check '{SIGNING_PASSPHRASE}'"
        ) from None


def check_signing_key(key: SigningKey) -> str:
    """Load and unlock `key` without signing anything; return its fingerprint (lowercase hex).

    Lets a reconciler refuse a bad secret before cloning. Raises `GitSigningError`.
    """
    _signer(key)
    return str(_load(key).extract_certificate().fingerprint)


def sign(key: SigningKey, payload: bytes) -> bytes:
    """The armored detached OpenPGP signature of `payload` (LF line ends, no final newline).

    Raises `GitSigningError`.
    """
    signer = _signer(key)
    try:
        armored = pysequoia.sign(signer, payload, mode=pysequoia.SignatureMode.DETACHED)
    except Exception:
        raise GitSigningError(f"signing with the key of {key.secret_label} failed") from None
    return armored.replace(b"\r\n", b"\n").rstrip(b"\n")
