"""Service settings from the environment (12-factor). Nothing assumes localhost
except the documented default NATS URL.

Pure: reads only the mapping it is given (defaults to os.environ).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from fluxbus_common.liveness import HEARTBEAT_INTERVAL
from fluxbus_common.redact import redact_text

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_OUTBOX_LIMIT = 1000
"""Events kept while NATS is unreachable: a few minutes of a busy cluster's
events (a 1000-object rollout emits about one per object) in well under 1 MiB."""
DEFAULT_HTTP_ADDR = "127.0.0.1:0"
"""/healthz /readyz /metrics of a runtime built without a service's own default:
loopback only, any free port. Each service passes its fixed port to
`RuntimeSettings.from_env` (the table is in the README)."""


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as e:
        raise ValueError(f"{name}: not a number: {raw!r}") from e


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(_float(env, name, default))


@dataclass(frozen=True)
class BusSettings:
    """How to reach NATS: FLUXBUS_NATS_URL (comma-separated for a cluster),
    FLUXBUS_NATS_CREDS (credentials file: NATS .creds, nkey seed or `user:password`),
    FLUXBUS_NATS_INBOX_PREFIX (reply inboxes; default `_INBOX_<user>` with credentials),
    FLUXBUS_NATS_TLS_CA / _CERT / _KEY,
    FLUXBUS_NATS_REPLICAS (JetStream replicas of the buckets, 3 on a cluster),
    FLUXBUS_EVENTS_OUTBOX (events kept while NATS is unreachable, default 1000)."""

    url: str = DEFAULT_NATS_URL
    credentials: str | None = None
    inbox_prefix: str | None = None
    """Reply-inbox prefix; None: `_INBOX_<user>` with credentials (what the
    user's permissions allow, docs/security.md), nats-py's `_INBOX` without."""
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    replicas: int = 1
    connect_timeout: float = 5.0
    request_timeout: float = 5.0
    outbox_limit: int = DEFAULT_OUTBOX_LIMIT
    """Events kept in memory while NATS is unreachable (`fluxbus_common.bus.outbox`)."""

    @property
    def urls(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]

    @property
    def redacted_urls(self) -> str:
        """The URLs with any user:password removed, safe to log."""
        return ",".join(redact_text(u) for u in self.urls)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BusSettings:
        e = os.environ if env is None else env
        return cls(
            url=e.get("FLUXBUS_NATS_URL") or DEFAULT_NATS_URL,
            credentials=e.get("FLUXBUS_NATS_CREDS") or None,
            inbox_prefix=e.get("FLUXBUS_NATS_INBOX_PREFIX") or None,
            tls_ca=e.get("FLUXBUS_NATS_TLS_CA") or None,
            tls_cert=e.get("FLUXBUS_NATS_TLS_CERT") or None,
            tls_key=e.get("FLUXBUS_NATS_TLS_KEY") or None,
            replicas=_int(e, "FLUXBUS_NATS_REPLICAS", 1),
            outbox_limit=_int(e, "FLUXBUS_EVENTS_OUTBOX", DEFAULT_OUTBOX_LIMIT),
        )


@dataclass(frozen=True)
class RuntimeSettings:
    """How a service's controller runtime behaves.

    FLUXBUS_WORKERS: concurrent reconciles per kind (default 4).
    FLUXBUS_SHARDS: how many shards the keys of a kind are split into; each
      replica holds the leases of a fair share (1 = active/standby).
    FLUXBUS_LEASE_TTL: seconds a lease lives without renewal (default 15).
    FLUXBUS_INSTANCE: this replica's name (default hostname-pid).
    FLUXBUS_HTTP_ADDR: host:port of /healthz /readyz /metrics ("" disables); the
      default is the service's own loopback port (`default_http_addr` of
      `from_env`, e.g. 127.0.0.1:9790 for source), so several services run on
      one host; containers set 0.0.0.0:<port> explicitly.
    FLUXBUS_HEARTBEAT_INTERVAL: seconds between two heartbeats (default 5); an
      instance missing three counts as gone (`fluxbus check`).
    """

    workers: int = 4
    shards: int = 1
    lease_ttl: float = 15.0
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    http_addr: str = DEFAULT_HTTP_ADDR
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    heartbeat_interval: float = HEARTBEAT_INTERVAL

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, default_http_addr: str = DEFAULT_HTTP_ADDR
    ) -> RuntimeSettings:
        """Read the FLUXBUS_* variables; `default_http_addr` is the calling
        service's address when FLUXBUS_HTTP_ADDR is unset."""
        e = os.environ if env is None else env
        default = cls(http_addr=default_http_addr)
        return cls(
            workers=_int(e, "FLUXBUS_WORKERS", default.workers),
            shards=_int(e, "FLUXBUS_SHARDS", default.shards),
            lease_ttl=_float(e, "FLUXBUS_LEASE_TTL", default.lease_ttl),
            instance=e.get("FLUXBUS_INSTANCE") or default.instance,
            http_addr=e.get("FLUXBUS_HTTP_ADDR", default.http_addr),
            backoff_base=_float(e, "FLUXBUS_BACKOFF_BASE", default.backoff_base),
            backoff_cap=_float(e, "FLUXBUS_BACKOFF_CAP", default.backoff_cap),
            heartbeat_interval=_float(e, "FLUXBUS_HEARTBEAT_INTERVAL", default.heartbeat_interval),
        )


@dataclass(frozen=True)
class EnvVar:
    """One setting a service reads from the environment, as `--help` lists it."""

    name: str
    default: str
    help: str


COMMON_ENV: tuple[EnvVar, ...] = (
    EnvVar("FLUXBUS_LOG_LEVEL", "info", "debug, info, warning or error"),
    EnvVar("FLUXBUS_NATS_URL", DEFAULT_NATS_URL, "NATS server URL(s), comma-separated"),
    EnvVar("FLUXBUS_NATS_CREDS", "", "NATS credentials file"),
    EnvVar("FLUXBUS_NATS_TLS_CA", "", "CA bundle that signs the NATS server's certificate"),
    EnvVar("FLUXBUS_NATS_TLS_CERT", "", "client certificate for NATS (mutual TLS)"),
    EnvVar("FLUXBUS_NATS_TLS_KEY", "", "key of the client certificate"),
    EnvVar("FLUXBUS_NATS_REPLICAS", "1", "JetStream replicas of the buckets (3 on a cluster)"),
    EnvVar(
        "FLUXBUS_EVENTS_OUTBOX", str(DEFAULT_OUTBOX_LIMIT), "events kept while NATS is unreachable"
    ),
    EnvVar("FLUXBUS_WORKERS", str(RuntimeSettings.workers), "concurrent reconciles per kind"),
    EnvVar(
        "FLUXBUS_SHARDS", str(RuntimeSettings.shards), "shards the objects of a kind are split into"
    ),
    EnvVar("FLUXBUS_LEASE_TTL", f"{RuntimeSettings.lease_ttl:g}", "seconds a shard lease lives"),
    EnvVar("FLUXBUS_INSTANCE", "<hostname>-<pid>", "this replica's name"),
    EnvVar("FLUXBUS_BACKOFF_BASE", f"{RuntimeSettings.backoff_base:g}", "first retry delay (s)"),
    EnvVar("FLUXBUS_BACKOFF_CAP", f"{RuntimeSettings.backoff_cap:g}", "longest retry delay (s)"),
    EnvVar(
        "FLUXBUS_HEARTBEAT_INTERVAL",
        f"{HEARTBEAT_INTERVAL:g}",
        "seconds between two heartbeats (fluxbus check)",
    ),
)
"""The settings every service reads (bus, runtime, logging); FLUXBUS_HTTP_ADDR,
whose default differs per service, is each service's `http_addr_env`."""


def http_addr_env(default: str) -> EnvVar:
    """FLUXBUS_HTTP_ADDR as `--help` lists it for a service listening on `default`."""
    return EnvVar(
        "FLUXBUS_HTTP_ADDR", default, 'host:port of /healthz /readyz /metrics ("" disables)'
    )
