"""Typed errors of the source service itself.

Pure: no I/O.

Git failures (authentication, TLS, unreachable hosts, missing refs, bad
URLs and refs) are `fluxbus_git.errors`; here are only the errors of what
the service does with a checkout (archiving it and including other
artifacts; each subclasses a runtime behaviour and carries its Flux reason),
and the Helm HTTP adapter's download error, which the Helm reconcilers turn
into Flux's reasons.
"""

from __future__ import annotations

from fluxbus_common.conditions import Reason
from fluxbus_git.errors import GitError


class ArchiveError(GitError):
    """Building or unpacking an artifact failed, or it would exceed the artifact limits
    (the format's own refusals are `fluxbus_common.artifact.ArtifactFormatError`,
    wrapped in this with the source's condition reason)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.ARCHIVE_OPERATION_FAILED)


class HelmFetchError(Exception):
    """A Helm repository download failed (the HTTP adapter's only error).

    `status` is the HTTP status when the server answered; `invalid_url` marks an
    address aiohttp cannot use. The message is secret-free.
    """

    def __init__(
        self, message: str, *, status: int | None = None, invalid_url: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.invalid_url = invalid_url
