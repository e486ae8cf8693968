"""Typed errors of Git operations: what went wrong and what the runtime does next.

Pure: no I/O.

Every error subclasses one of the runtime's behaviours (`Stalling`: needs a
human, `Generic`: retry with backoff) and carries the Flux condition reason
it stands for. Messages are written for the person who owns the object that
names the remote: they name the URL (never with credentials), the ref and
the secret key to fix, and never contain a credential. The transport
modules translate every dulwich, urllib3 and ssh failure into one of these;
nothing from those libraries leaks upward.
"""

from __future__ import annotations

from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic, Stalling


class InvalidSpecError(Stalling):
    """The spec cannot work as written (bad ref, bad path, bad semver range)."""

    def __init__(self, message: str, reason: str = Reason.INVALID_SPEC) -> None:
        super().__init__(message, reason)


class InvalidURLError(InvalidSpecError):
    """`spec.url` is not an http(s):// or ssh:// address."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.INVALID_URL)


class GitError(Generic):
    """A Git operation failed; retried with backoff."""

    def __init__(self, message: str, reason: str = Reason.GIT_OPERATION_FAILED) -> None:
        super().__init__(message, reason)


class GitAuthError(GitError):
    """The server refused the credentials (or asked for some and none were given)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.AUTHENTICATION_FAILED)


class GitCredentialsError(GitAuthError):
    """The referenced secret lacks a key the URL needs (e.g. `known_hosts` for SSH)."""


class GitHostKeyError(GitAuthError):
    """The SSH host key is not in `known_hosts` or does not match it."""


class GitTLSError(GitError):
    """The TLS handshake failed (unknown CA, bad or missing client certificate)."""


class GitUnreachableError(GitError):
    """The Git host did not answer (DNS, refused connection, timeout)."""


class GitNotFoundError(GitError):
    """The repository, branch, tag, ref or commit does not exist on the remote."""


class GitNoSemverMatchError(GitNotFoundError):
    """No tag satisfies `spec.ref.semver`."""


class GitSizeLimitError(GitError):
    """The fetched repository is larger than the configured limit."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.SIZE_LIMIT_EXCEEDED)


class GitSigningError(GitError):
    """The commit signing key cannot be used (bad armor, several keys, wrong or missing passphrase).

    The message names the secret key to fix and never contains key material.
    """


class GitNonFastForwardError(GitError):
    """A push would not fast-forward the remote ref: someone pushed meanwhile.

    Nothing was changed on the remote; clone again and redo the update.
    """

    def __init__(self, message: str, ref: str) -> None:
        super().__init__(message)
        self.ref = ref


class GitPushRejectedError(GitError):
    """The remote refused a ref update (a hook, a protected branch, a bad ref name…)."""

    def __init__(self, message: str, ref: str, reason: str) -> None:
        super().__init__(message)
        self.ref = ref
        self.rejection = reason
        """The server's own words (`pre-receive hook declined`)."""
