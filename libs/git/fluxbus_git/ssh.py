"""Git over SSH through OpenSSH, configured so nothing from the host leaks in.

`ssh` runs with `-F /dev/null`, only the given `identity`,
`StrictHostKeyChecking=yes` against the given `known_hosts` (required, never
accepted blindly) and `BatchMode=yes`; a key passphrase is fed through a
private `SSH_ASKPASS` helper that reads it from the child's environment. The
key, known_hosts and helper are written into the operation's private temp
dir (`Session.write`); the children are registered with the session, so a
timeout kills them. `ssh_error` turns ssh's stderr into a typed error.

Blocking: called only from `GitClient`'s worker thread.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Sequence
from typing import Any

from dulwich.client import GitClient, SSHGitClient, SSHVendor, SubprocessWrapper
from dulwich.errors import GitProtocolError, HangupException

from fluxbus_git.errors import (
    GitAuthError,
    GitCredentialsError,
    GitError,
    GitHostKeyError,
    GitNotFoundError,
    GitUnreachableError,
)
from fluxbus_git.logic.auth import GitAuth
from fluxbus_git.logic.url import GitURL
from fluxbus_git.session import CANCELLED, Cancelled, Session, close_streams

SSH_DEFAULT_USER = "git"
"""User for ssh:// URLs without one (go-git's default, so Flux's too)."""

_ASKPASS = '#!/bin/sh\nprintf "%s\\n" "$FLUXBUS_SSH_PASSPHRASE"\n'


class OpenSSHVendor(SSHVendor):
    """Runs `ssh` with a locked-down command line (see module docstring)."""

    def __init__(self, session: Session, auth: GitAuth, connect_timeout: float) -> None:
        self.session = session
        identity = auth.identity or b""
        if not identity.endswith(b"\n"):
            identity += b"\n"  # OpenSSH refuses keys without the final newline
        self.key_file = session.write("identity", identity)
        known = auth.known_hosts or b""
        self.known_hosts = session.write(
            "known_hosts", known if known.endswith(b"\n") else known + b"\n"
        )
        self.passphrase = auth.passphrase
        self.askpass = (
            session.write("askpass", _ASKPASS.encode(), 0o700) if self.passphrase else None
        )
        self.connect_timeout = max(1, int(connect_timeout))

    def run_command(
        self,
        host: str,
        command: bytes,
        username: str | None = None,
        port: int | None = None,
        password: str | None = None,
        key_filename: str | None = None,
        ssh_command: str | None = None,
        protocol_version: int | None = None,
    ) -> SubprocessWrapper:
        self.session.check()
        args = [
            "ssh", "-F", "/dev/null", "-x", "-T",
            "-i", str(self.key_file),
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "UpdateHostKeys=no",
            "-o", "PasswordAuthentication=no",
            "-o", "KbdInteractiveAuthentication=no",
            "-o", f"ConnectTimeout={self.connect_timeout}",
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.session.tmp)}
        if self.passphrase:
            # BatchMode would forbid asking for the passphrase; askpass is forced instead.
            args += ["-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1"]
            env |= {
                "SSH_ASKPASS": str(self.askpass),
                "SSH_ASKPASS_REQUIRE": "force",
                "DISPLAY": "fluxbus:0",
                "FLUXBUS_SSH_PASSPHRASE": self.passphrase,
            }
        else:
            args += ["-o", "BatchMode=yes"]
        if port:
            args += ["-p", str(port)]
        if protocol_version == 2:
            args += ["-o", "SetEnv=GIT_PROTOCOL=version=2"]
        if host.startswith("-") or (username or "").startswith("-"):
            raise GitError(f"refusing SSH host name {host!r}")
        target = f"{username}@{host}" if username else host
        proc = subprocess.Popen(
            [*args, target, command],
            bufsize=0,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        with self.session.lock:
            if self.session.cancelled.is_set():
                # Cancelled while spawning, maybe after close() already ran: clean up here.
                proc.kill()
                proc.wait()
                close_streams(proc)
                raise Cancelled(CANCELLED)
            self.session.procs.append(proc)
        return SubprocessWrapper(proc)


class SSHClient(SSHGitClient):
    """dulwich's SSH client, recording each protocol so the session can close it.

    On a failed handshake dulwich raises without closing the protocol it
    opened (a ResourceWarning and a lingering ssh child otherwise).
    """

    def __init__(self, session: Session, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session = session

    def _connect(self, cmd: bytes, path: str | bytes, protocol_version: int | None = None) -> Any:
        proto, can_read, stderr = super()._connect(cmd, path, protocol_version)
        with self._session.lock:
            if self._session.cancelled.is_set():
                # The session may already be closed: nobody else would close this one.
                with contextlib.suppress(Exception):
                    proto.close()
                raise Cancelled(CANCELLED)
            self._session.protocols.append(proto)
        return proto, can_read, stderr


def ssh_error(lines: Sequence[str], url: str, auth: GitAuth | None) -> GitError:
    """The typed error ssh's stderr `lines` stand for (credentials redacted)."""
    text = " ".join(line.strip() for line in lines if line.strip())
    low = text.lower()
    label = auth.secret_label if auth else "the secret"
    if "host key verification failed" in low or "remote host identification has changed" in low:
        return GitHostKeyError(
            f"SSH host key of '{url}' is not in 'known_hosts' of {label} (or does not match it); "
            "add the host's key, e.g. from `ssh-keyscan -p <port> <host>`"
        )
    if "incorrect passphrase" in low or "bad passphrase" in low:
        return GitAuthError(f"the SSH key in {label} could not be decrypted: wrong 'password'")
    if "invalid format" in low or "load key" in low:
        return GitCredentialsError(
            f"'identity' in {label} is not a valid SSH private key (or needs 'password')"
        )
    if "permission denied" in low:
        return GitAuthError(
            f"SSH authentication to '{url}' failed: the key in 'identity' of {label} "
            "is not authorized (or its passphrase in 'password' is wrong)"
        )
    if "does not appear to be a git repository" in low or "not a git repository" in low:
        return GitNotFoundError(f"repository not found: '{url}'")
    for marker in (
        "connection refused",
        "could not resolve hostname",
        "timed out",
        "no route to host",
        "network is unreachable",
        "connection closed",
        "connection reset",
        "kex_exchange_identification",
    ):
        if marker in low:
            return GitUnreachableError(f"unable to reach '{url}': {_redact(text, auth)}")
    return GitError(f"git over SSH to '{url}' failed: {_redact(text, auth) or 'connection closed'}")


def _redact(text: str, auth: GitAuth | None) -> str:
    return auth.redact(text) if auth else text


def ssh_transport(
    gurl: GitURL, auth: GitAuth, session: Session, connect_timeout: float
) -> tuple[GitClient, str]:
    """A dulwich client for `gurl` over OpenSSH, and the repository path to ask it for."""
    vendor = OpenSSHVendor(session, auth, connect_timeout=connect_timeout)
    client = SSHClient(
        session,
        gurl.host,
        port=gurl.port,
        username=gurl.username or SSH_DEFAULT_USER,
        vendor=vendor,
    )
    return client, gurl.path


def translate_ssh(exc: BaseException, url: str, auth: GitAuth | None) -> GitError:
    """The typed error a dulwich/ssh exception of an SSH operation stands for."""
    if isinstance(exc, HangupException):
        lines = [
            line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
            for line in (exc.stderr_lines or [])
        ]
        return ssh_error(lines, url, auth)
    if isinstance(exc, GitProtocolError):
        return ssh_error([str(exc)], url, auth)
    if isinstance(exc, OSError):
        return GitUnreachableError(f"unable to reach '{url}': {exc.strerror or exc}")
    return GitError(f"git over SSH to '{url}' failed: {_redact(str(exc), auth)}")
