"""ReceiverReconciler: notification-controller's Receiver reconciler, step by step.

Guard clauses are the runtime's (deleted → finalize, suspended → skip); then:

1. `reconcile_spec` — refuse what can never work until the spec changes
   (Stalled): an invalid `resourceFilter` (InvalidCELExpression), a type
   fluxbus does not serve (ValidationFailed);
2. `reconcile_token` — read `token` from `spec.secretRef` (a missing Secret or
   key: Ready=False, TokenNotFound, `status.webhookPath` cleared, retried);
3. `reconcile_webhook_path` — `status.webhookPath =
   /hook/<sha256(token + name + namespace)>`, Ready=True "Receiver initialized
   for path: …".

A change of the referenced Secret reconciles the Receiver at once (a watch on
the secrets bucket), so a rotated token moves the path as in Flux. The token
itself is never logged nor put into status or events (only its digest path).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog

from fluxbus_common.api import Receiver, Secret
from fluxbus_common.cel import CelError
from fluxbus_common.conditions import Reason
from fluxbus_common.duration import format_duration
from fluxbus_common.errors import Generic, ReconcileError, Stalling
from fluxbus_common.events import EventSink, Severity
from fluxbus_common.ports import BusError, SecretReader
from fluxbus_common.reconcile import DependencyWatch, Result, Step, StepReconciler
from fluxbus_common.subjects import object_key
from fluxbus_notifier.logic.receiver_targets import compile_filter
from fluxbus_notifier.logic.webhooks import UNSUPPORTED_TYPES, webhook_path

log = structlog.get_logger("fluxbus.notifier.receiver")

TOKEN_KEY = "token"
"""The Secret key holding the Receiver's token (Flux's)."""
TERMINAL_PREFIX = "Reconciliation failed terminally due to configuration error"
"""Flux's markTerminal message prefix."""


def receivers_of_secret(
    secret_key: str, _: Any, receivers: Mapping[str, dict[str, Any]]
) -> Iterable[str]:
    """The Receivers whose `spec.secretRef` names the Secret stored under `secret_key`."""
    namespace, _sep, name = secret_key.partition(".")
    for key, doc in receivers.items():
        meta = doc.get("metadata") or {}
        ref = (doc.get("spec") or {}).get("secretRef") or {}
        if meta.get("namespace") == namespace and ref.get("name") == name:
            yield key


@dataclass
class ReceiverState:
    """What the Receiver steps hand each other during one reconcile."""

    token: str = ""
    """The token read from spec.secretRef (reconcile_token). Never logged."""


class ReceiverReconciler(StepReconciler[Receiver, ReceiverState]):
    """Reconciles Receivers into a published webhook path."""

    kind: ClassVar[str] = "Receiver"
    watches = (DependencyWatch(kind="Secret", map=receivers_of_secret, source="secrets"),)

    def __init__(self, secrets: SecretReader, recorder: EventSink) -> None:
        self.secrets = secrets
        self.recorder = recorder

    # -- runtime hooks ---------------------------------------------------

    def parse(self, doc: dict[str, Any]) -> Receiver:
        return Receiver.model_validate(doc)

    def interval(self, obj: Receiver) -> float:
        return obj.spec.interval_seconds

    def new_state(self, obj: Receiver) -> ReceiverState:
        return ReceiverState()

    def steps(self) -> tuple[Step[Receiver, ReceiverState], ...]:
        return (self.reconcile_spec, self.reconcile_token, self.reconcile_webhook_path)

    async def on_result(
        self, obj: Receiver, state: ReceiverState, error: ReconcileError | None
    ) -> None:
        """Flux's event after a successful reconcile (failures are the runtime's)."""
        if error is None:
            await self.recorder.event(
                obj,
                Severity.INFO,
                Reason.SUCCEEDED,
                f"Reconciliation finished, next run in {format_duration(self.interval(obj))}",
            )

    # -- steps -----------------------------------------------------------

    async def reconcile_spec(self, obj: Receiver, state: ReceiverState) -> None:
        """Stall on a spec that cannot work: an unsupported type, an invalid resourceFilter."""
        unsupported = UNSUPPORTED_TYPES.get(obj.spec.type)
        if unsupported is not None:
            raise Stalling(f"{TERMINAL_PREFIX}: {unsupported}", Reason.VALIDATION_FAILED)
        try:
            compile_filter(obj.spec.resource_filter)
        except CelError as e:
            raise Stalling(
                f"{TERMINAL_PREFIX}: invalid resourceFilter expression: {e}",
                Reason.INVALID_CEL_EXPRESSION,
            ) from None

    async def reconcile_token(self, obj: Receiver, state: ReceiverState) -> None:
        """Read the token; without one the Receiver has no path (TokenNotFound)."""
        namespace, name = obj.metadata.namespace, obj.spec.secret_ref.name
        try:
            doc = await self.secrets.get_secret(namespace, name)
        except BusError as e:
            raise Generic(str(e), Reason.TOKEN_NOT_FOUND) from e
        problem: str | None = None
        if doc is None:
            problem = (
                f"unable to read token from secret '{namespace}/{name}' error: "
                f'secrets "{name}" not found'
            )
        else:
            try:
                value = Secret.model_validate(doc).decoded().get(TOKEN_KEY)
            except ValueError:
                value = None
            if value is None:
                problem = f"invalid '{namespace}/{name}' secret data: required fields 'token'"
            elif not value.strip():
                # fluxbus: an empty token would make the path guessable and, for
                # github/bitbucket, the signature meaningless
                problem = f"invalid '{namespace}/{name}' secret data: 'token' is empty"
            else:
                state.token = value.decode("utf-8", errors="replace")
        if problem is not None:
            obj.status.webhook_path = None
            raise Generic(problem, Reason.TOKEN_NOT_FOUND)

    async def reconcile_webhook_path(self, obj: Receiver, state: ReceiverState) -> Result:
        """Publish `/hook/<sha256(token + name + namespace)>` in status."""
        path = webhook_path(state.token, obj.metadata.name, obj.metadata.namespace)
        message = f"Receiver initialized for path: {path}"
        if obj.status.webhook_path != path:
            obj.status.webhook_path = path
            log.info(
                "receiver.path_published",
                receiver=object_key(self.kind, obj.metadata.namespace, obj.metadata.name),
            )
        return Result(requeue_after=None, ready_reason=Reason.SUCCEEDED, ready_message=message)
