"""Events in Flux's schema (fluxcd/pkg/runtime/events.Event), so Flux tooling
and webhook receivers understand them. Frozen bus messages.

Pure: no I/O.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from fluxbus_common.conditions import now_rfc3339


class Severity(StrEnum):
    INFO = "info"
    ERROR = "error"
    TRACE = "trace"


class ObjectReference(BaseModel):
    """Kubernetes `corev1.ObjectReference` subset Flux sends."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, frozen=True
    )

    kind: str
    namespace: str
    name: str
    api_version: str | None = None
    uid: str | None = None
    resource_version: str | None = None


class Event(BaseModel):
    """One event about one object."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, frozen=True
    )

    involved_object: ObjectReference
    severity: Severity
    timestamp: str = Field(default_factory=now_rfc3339)
    message: str
    reason: str
    metadata: dict[str, str] = Field(default_factory=dict)
    reporting_controller: str
    reporting_instance: str = ""


class EventSink(Protocol):
    """Where reconcilers send events (`fluxbus_common.runtime.EventRecorder`, or a test double)."""

    async def event(
        self,
        obj: Any,
        severity: Severity,
        reason: str,
        message: str,
        metadata: dict[str, str] | None = None,
    ) -> None: ...
