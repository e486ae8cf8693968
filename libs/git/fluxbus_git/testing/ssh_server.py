"""A real OpenSSH `sshd` on 127.0.0.1 that runs only `git-shell`, with throw-away keys.

Test support, not production code: starts processes. Skips the test when
openssh-server is not installed.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from pathlib import Path

from fluxbus_git.testing.network import free_port, wait_for_port
from fluxbus_git.testing.repos import GitRepo

SSHD = "/usr/sbin/sshd"


def _keygen(path: Path, passphrase: str = "", comment: str = "fluxbus-test") -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return Path(f"{path}.pub").read_text().strip()


SSH_TEST_PASSPHRASE = "open sesame"
SSH_KEY_NAMES = ("host_key", "other_host_key", "client_key", "client_key_enc", "intruder_key")


def make_ssh_keys(directory: Path) -> Path:
    """Generate the ed25519 key pairs a `GitSSHServer` uses into `directory`; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in SSH_KEY_NAMES:
        if not (directory / name).exists():
            phrase = SSH_TEST_PASSPHRASE if name == "client_key_enc" else ""
            _keygen(directory / name, passphrase=phrase)
    return directory


class GitSSHServer:
    """A real `sshd` on 127.0.0.1 that runs only `git-shell` for one authorized key pair.

    Attributes for a GitRepository secret: `identity` (private key, PEM
    bytes), `identity_encrypted` + `passphrase`, `known_hosts` (line for
    this host and port), `username`. `other_identity` is a valid key that is
    not authorized; `other_known_hosts` names a different host key.
    """

    def __init__(self, root: Path, workdir: Path, port: int = 0, keys: Path | None = None) -> None:
        if not Path(SSHD).exists():
            import pytest  # only here: the servers are usable without pytest (`make demo`)

            pytest.skip("openssh-server (/usr/sbin/sshd) is not installed")
        self.root = root
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.port = port or free_port()
        self.username = getpass.getuser()
        self.passphrase = SSH_TEST_PASSPHRASE
        self._proc: subprocess.Popen[bytes] | None = None
        # Key generation is the slow part: reuse a directory made by `make_ssh_keys`.
        keys = keys or make_ssh_keys(self.dir / "keys")
        for name in SSH_KEY_NAMES:
            for suffix in ("", ".pub"):
                shutil.copyfile(keys / f"{name}{suffix}", self.dir / f"{name}{suffix}")
            os.chmod(self.dir / name, 0o600)
        host_pub, other_host_pub, client_pub, enc_pub = (
            (self.dir / f"{n}.pub").read_text().strip()
            for n in ("host_key", "other_host_key", "client_key", "client_key_enc")
        )
        self.identity = (self.dir / "client_key").read_bytes()
        self.identity_encrypted = (self.dir / "client_key_enc").read_bytes()
        self.other_identity = (self.dir / "intruder_key").read_bytes()
        self.known_hosts = f"[127.0.0.1]:{self.port} {' '.join(host_pub.split()[:2])}\n".encode()
        self.other_known_hosts = (
            f"[127.0.0.1]:{self.port} {' '.join(other_host_pub.split()[:2])}\n".encode()
        )
        self.log = self.dir / "commands.log"
        self.log.touch()
        wrapper = self.dir / "git-only"
        wrapper.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "$SSH_ORIGINAL_COMMAND" >> "{self.log}"\n'
            'exec git-shell -c "$SSH_ORIGINAL_COMMAND"\n'
        )
        wrapper.chmod(0o755)
        opts = (
            f'command="{wrapper}",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty'
        )
        (self.dir / "authorized_keys").write_text(f"{opts} {client_pub}\n{opts} {enc_pub}\n")
        self.config = self.dir / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.dir / 'host_key'}",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "AcceptEnv GIT_PROTOCOL",
                    "PrintMotd no",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )

    # -- counters --------------------------------------------------------------------
    def _commands(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line]

    @property
    def sessions(self) -> int:
        return len(self._commands())

    @property
    def fetches(self) -> int:
        """upload-pack sessions (an ls-remote is one too over SSH)."""
        return sum(1 for c in self._commands() if "upload-pack" in c)

    def reset_counters(self) -> None:
        self.log.write_text("")

    # -- lifecycle ---------------------------------------------------------------------
    def url(self, repo: GitRepo | str) -> str:
        name = repo.name if isinstance(repo, GitRepo) else repo
        return f"ssh://{self.username}@127.0.0.1:{self.port}{self.root}/{name}.git"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> GitSSHServer:
        if self.running:
            return self
        if os.geteuid() == 0:
            # Privilege separation directory; systemd normally creates it.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port, banner=b"SSH-")
        except TimeoutError:
            err = b""
            if self._proc.poll() is not None and self._proc.stderr:
                err = self._proc.stderr.read()
            self.stop()
            raise RuntimeError(f"sshd did not start: {err.decode(errors='replace')}") from None
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None

    def __enter__(self) -> GitSSHServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
