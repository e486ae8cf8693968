"""Settings of the notifier service, read from the environment (FLUXBUS_*).

Pure: reads only the mapping it is given (defaults to os.environ).

FLUXBUS_LOG_LEVEL: log level (default info).
FLUXBUS_NOTIFY_DEDUP_WINDOW: seconds within which identical events are sent
  once (default 300, Flux's rate-limit interval; 0 disables).
FLUXBUS_NOTIFY_DELIVERY_TIMEOUT: seconds one event may spend retrying one
  Provider before the notifier gives up on it (default 180).
FLUXBUS_NOTIFY_RETRY_BASE / FLUXBUS_NOTIFY_RETRY_CAP: first and longest delay
  between two attempts (default 1 s and 30 s, doubling in between).
FLUXBUS_NOTIFY_CONSUMER: the durable consumer's name, shared by the replicas
  (default "notifier").
FLUXBUS_NOTIFY_IN_FLIGHT: events handled at once per replica (default 64).
The Receiver webhook server's (FLUXBUS_RECEIVER_ADDR) are
`fluxbus_notifier.receivers.settings`; the bus and runtime settings are the
shared ones (`fluxbus_common.settings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from fluxbus_common.duration import parse_duration
from fluxbus_common.settings import EnvVar, http_addr_env

DEFAULT_HTTP_ADDR = "127.0.0.1:9793"
"""/healthz /readyz /metrics unless FLUXBUS_HTTP_ADDR says otherwise: this
service's own port (each service has one, so they run side by side on one
host), loopback only outside containers (they set 0.0.0.0 explicitly)."""
DEFAULT_DEDUP_WINDOW = 300.0
"""Flux's notification-controller rate-limits identical events for 5 minutes."""
DEFAULT_DELIVERY_TIMEOUT = 180.0
"""A few minutes of retries ride out an endpoint's restart or a short outage,
while an event for a dead endpoint does not hold its slot for long."""
ACK_WAIT = 30.0
"""Seconds the stream waits for an acknowledgement before it redelivers; the
dispatcher reports progress well within it for the events it still works on."""


NOTIFIER_ENV: tuple[EnvVar, ...] = (
    http_addr_env(DEFAULT_HTTP_ADDR),
    EnvVar(
        "FLUXBUS_NOTIFY_DEDUP_WINDOW",
        f"{DEFAULT_DEDUP_WINDOW:g}",
        "seconds identical events are sent once (0: off)",
    ),
    EnvVar(
        "FLUXBUS_NOTIFY_DELIVERY_TIMEOUT",
        f"{DEFAULT_DELIVERY_TIMEOUT:g}",
        "seconds one event may retry one Provider",
    ),
    EnvVar("FLUXBUS_NOTIFY_RETRY_BASE", "1", "first delay between two attempts (s)"),
    EnvVar("FLUXBUS_NOTIFY_RETRY_CAP", "30", "longest delay between two attempts (s)"),
    EnvVar("FLUXBUS_NOTIFY_CONSUMER", "notifier", "durable consumer shared by the replicas"),
    EnvVar("FLUXBUS_NOTIFY_IN_FLIGHT", "64", "events handled at once per replica"),
)
"""What `fluxbus-notifier --help` lists (with the Receiver server's and the shared settings)."""


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        try:
            return parse_duration(raw)
        except ValueError as e:
            raise ValueError(f"{name}: not a duration: {raw!r}") from e


@dataclass(frozen=True)
class NotifierSettings:
    """What the notifier needs beyond the shared bus and runtime settings."""

    log_level: str = "info"
    dedup_window: float = DEFAULT_DEDUP_WINDOW
    delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT
    retry_base: float = 1.0
    retry_cap: float = 30.0
    consumer: str = "notifier"
    in_flight: int = 64
    ack_wait: float = ACK_WAIT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifierSettings:
        """Read the FLUXBUS_* variables above; raise ValueError naming a bad one."""
        e = os.environ if env is None else env
        d = cls()
        return cls(
            log_level=e.get("FLUXBUS_LOG_LEVEL", d.log_level),
            dedup_window=_seconds(e, "FLUXBUS_NOTIFY_DEDUP_WINDOW", d.dedup_window),
            delivery_timeout=_seconds(e, "FLUXBUS_NOTIFY_DELIVERY_TIMEOUT", d.delivery_timeout),
            retry_base=_seconds(e, "FLUXBUS_NOTIFY_RETRY_BASE", d.retry_base),
            retry_cap=_seconds(e, "FLUXBUS_NOTIFY_RETRY_CAP", d.retry_cap),
            consumer=e.get("FLUXBUS_NOTIFY_CONSUMER") or d.consumer,
            in_flight=int(_seconds(e, "FLUXBUS_NOTIFY_IN_FLIGHT", d.in_flight)),
        )
