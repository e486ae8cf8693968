"""OpenPGP keys for signed-commit tests, made by the real `gpg` in throw-away homes.

Test support, not production code: starts `gpg` (and its agent, stopped
again by `close()`). `GPGKeys.create(dir)` generates two ed25519 signing
keys — `plain` without a passphrase and `protected` with `PASSPHRASE` —
exports their armored private keys (Flux's `git.asc`) and imports only the
public keys into a separate `verify_home`, the GNUPGHOME to give `git
verify-commit`. Skips the test when gpg is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

GPG_TEST_PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class TestKey:
    """One generated key: armored private key, fingerprint, user id."""

    armored: bytes
    fingerprint: str
    name: str
    email: str
    passphrase: str | None


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
            *args,
        ],
        input=stdin,
        capture_output=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"gpg {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def _home(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


@dataclass
class GPGKeys:
    """Generated signing keys and a GNUPGHOME that knows only their public halves."""

    __test__ = False  # not a pytest test class despite the module's users

    plain: TestKey
    protected: TestKey
    signing_home: Path
    verify_home: Path

    @classmethod
    def create(cls, directory: Path) -> GPGKeys:
        if shutil.which("gpg") is None:
            import pytest  # only here: the helpers are usable without pytest

            pytest.skip("gpg is not installed")
        signing = _home(directory / "signing")
        verify = _home(directory / "verify")
        keys = []
        for name, email, phrase in (
            ("Flux Bot", "flux-bot@fluxbus.invalid", None),
            ("Guarded Bot", "guarded-bot@fluxbus.invalid", GPG_TEST_PASSPHRASE),
        ):
            uid = f"{name} <{email}>"
            _gpg(
                signing,
                "--passphrase",
                phrase or "",
                "--quick-gen-key",
                uid,
                "ed25519",
                "sign",
                "never",
            )
            listing = _gpg(signing, "--with-colons", "--list-secret-keys", uid).decode()
            fpr = next(
                line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
            )
            armored = _gpg(
                signing, "--passphrase", phrase or "", "--armor", "--export-secret-keys", fpr
            )
            _gpg(verify, "--import", stdin=_gpg(signing, "--armor", "--export", fpr))
            keys.append(TestKey(armored, fpr.lower(), name, email, phrase))
        return cls(keys[0], keys[1], signing, verify)

    def public(self, key: TestKey) -> bytes:
        """The armored public key of `key` (not usable for signing)."""
        return _gpg(self.verify_home, "--armor", "--export", key.fingerprint)

    def close(self) -> None:
        """Stop the gpg agents started for these homes and remove the homes."""
        for home in (self.signing_home, self.verify_home):
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "all"],
                capture_output=True,
                check=False,
            )
            shutil.rmtree(home, ignore_errors=True)
