"""Typed errors of the image-reflector's pure rules (image names, credentials, exclusion lists).

Pure: no I/O.

Each subclasses the runtime's behaviour: a spec that cannot work as written is
`Stalling` (nothing changes until the spec does); a bad Secret is `Generic`
(the Secret may be fixed without a new generation, so it is retried). The
reasons are Flux's (image-reflector-controller api/v1 `*Reason` constants);
they are spelled here until `fluxbus_common.conditions.Reason` carries them.
"""

from __future__ import annotations

from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic, Stalling

IMAGE_URL_INVALID = "ImageURLInvalid"
"""Flux's reason when `spec.image` cannot be parsed (the object stalls)."""
READ_OPERATION_FAILED = "ReadOperationFailed"
"""Flux's reason when a scan fails (the registry refused, failed or did not answer)."""


class InvalidImageError(Stalling):
    """`spec.image` is not a repository name (a scheme, a tag, a digest, bad characters)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, IMAGE_URL_INVALID)


class ExclusionListError(Stalling):
    """An entry of `spec.exclusionList` is not a valid regular expression."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.INVALID_SPEC)


class CredentialsError(Generic):
    """A referenced Secret cannot be used (bad JSON, bad base64, a missing key)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.AUTHENTICATION_FAILED)
