"""Typed errors of the notifier service (subclasses of `fluxbus_common.errors`'s
Stalling / Waiting / Generic, each with its Flux reason).

Pure: no I/O.
"""

from __future__ import annotations

from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic, Waiting

PROVIDER_WAIT = 10.0
"""Seconds an Alert waits before it looks for its missing Provider again (the
Provider watch brings it back at once when the Provider appears)."""


class SecretNotFound(Generic):
    """A Provider's Secret (secretRef, certSecretRef) does not exist (yet)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.SECRET_NOT_FOUND)


class InvalidProviderConfig(Generic):
    """A Provider and its Secret do not make a usable configuration."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.INVALID_CONFIG)


class DeliveryFailing(Generic):
    """The last delivery to a Provider gave up after its retries."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.NOTIFICATION_DISPATCH_FAILED)


class ProviderNotFound(Waiting):
    """An Alert's providerRef names no Provider in its namespace."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.PROVIDER_NOT_FOUND, requeue_after=PROVIDER_WAIT)
