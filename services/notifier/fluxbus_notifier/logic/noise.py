"""Noise control beyond Flux: the dedup window's key and the on-change rule.

- Dedup: identical events (same object, reason, message and revision) inside
  a window are sent once. The key is a hash (NATS keys are short and plain),
  the window itself is the TTL of the bucket the dispatcher claims keys in.
- On-change (Alert annotation `fluxbus.io/notify: on-change`): per Alert and
  object, the first failure is sent, repeats of it are not, a different
  failure is; the first info event after a failure is sent once as the
  "resolved" message; other info events are not sent (nothing changed).

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fluxbus_common import keys
from fluxbus_common.api.notification import Alert
from fluxbus_common.events import Event, Severity

REVISION_KEYS = ("revision", "originRevision", "token")
"""Metadata that tells one event from another with the same message (Flux's
rate limiter keys on these too, bare or under the object's API group)."""
RESOLVED_KEY = "resolved"
"""Metadata key of a "resolved" message: the reason of the failure it ends."""


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()[:40]


def revision_of(event: Event) -> dict[str, str]:
    """The revision-like metadata of an event, by bare key (group prefixes dropped)."""
    out: dict[str, str] = {}
    for key, value in event.metadata.items():
        bare = key.rsplit("/", 1)[-1]
        if bare in REVISION_KEYS:
            out[bare] = value
    return out


def dedup_key(event: Event) -> str:
    """The KV key identical events share: object, reason, message and revision."""
    o = event.involved_object
    return "dedup." + _digest(
        o.kind,
        o.namespace,
        o.name,
        event.reason,
        event.message,
        sorted(revision_of(event).items()),
    )


def is_on_change(alert: Alert) -> bool:
    """Whether the Alert asks for on-change notifications."""
    return alert.metadata.annotations.get(keys.NOTIFY_ANNOTATION) == keys.NOTIFY_ON_CHANGE


def on_change_key(alert: Alert, event: Event) -> str:
    """The KV key of what an on-change Alert remembers about one object."""
    o = event.involved_object
    return "onchange." + _digest(
        alert.metadata.namespace, alert.metadata.name, o.kind, o.namespace, o.name
    )


@dataclass(frozen=True)
class Failure:
    """The failure an on-change Alert last sent for an object."""

    reason: str
    message: str

    def to_doc(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message}

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> Failure | None:
        if not doc or "reason" not in doc:
            return None
        return cls(str(doc["reason"]), str(doc.get("message", "")))


@dataclass(frozen=True)
class OnChange:
    """What an on-change Alert does with one event.

    `send` is the event to send (None: send nothing); `remember` the failure to
    keep from now on (None: the object is fine); `changed` whether the memory
    changes at all.
    """

    send: Event | None
    remember: Failure | None
    changed: bool


def on_change(last: Failure | None, event: Event) -> OnChange:
    """Apply the on-change rule to `event`, given the failure last sent (if any)."""
    if event.severity == Severity.ERROR:
        failure = Failure(event.reason, event.message)
        if failure == last:
            return OnChange(send=None, remember=last, changed=False)
        return OnChange(send=event, remember=failure, changed=True)
    if last is None:
        return OnChange(send=None, remember=None, changed=False)
    resolved = event.model_copy(update={"metadata": {**event.metadata, RESOLVED_KEY: last.reason}})
    return OnChange(send=resolved, remember=None, changed=True)
