"""Typed errors of the registry client: what the registry (or the network) said no to.

Pure: no I/O.

Every error is a `Generic` (retried with backoff, as Flux retries a failed
scan) with Flux's reason: `AuthenticationFailed` for refused credentials,
`ReadOperationFailed` for everything else. Messages name the image and the
registry host, never a credential or a token; a timeout names the timeout.
"""

from __future__ import annotations

from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic
from fluxbus_image.logic.errors import READ_OPERATION_FAILED

__all__ = [
    "RegistryAuthError",
    "RegistryError",
    "RegistryNotFoundError",
    "RegistryServerError",
    "RegistryTLSError",
    "RegistryUnreachableError",
]


class RegistryError(Generic):
    """A registry operation failed (the base of every registry client error)."""

    def __init__(self, message: str, reason: str = READ_OPERATION_FAILED) -> None:
        super().__init__(message, reason)


class RegistryAuthError(RegistryError):
    """The registry or its token server refused the credentials, or asked for some (401/403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.AUTHENTICATION_FAILED)


class RegistryUnreachableError(RegistryError):
    """No answer: DNS, a refused or reset connection, a timeout, a proxy that failed."""


class RegistryTLSError(RegistryUnreachableError):
    """The TLS handshake failed (unknown CA, wrong host name, client certificate refused).

    `speaks_tls` is False when the peer did not answer TLS at all (a plain http
    server): then an http answer from the same host is what counts.
    """

    def __init__(self, message: str, speaks_tls: bool = True) -> None:
        super().__init__(message)
        self.speaks_tls = speaks_tls


class RegistryServerError(RegistryError):
    """The registry answered with a server error (5xx, 429) or an answer that cannot be read."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RegistryNotFoundError(RegistryError):
    """The repository (NAME_UNKNOWN) or the tag (MANIFEST_UNKNOWN) does not exist (404)."""
