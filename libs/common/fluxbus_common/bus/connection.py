"""The NATS connection of the bus: connect (credentials, TLS), create the
buckets, object store and stream of DESIGN.md §2 if they are missing, close.

Who creates them: a connection without credentials (single-server development)
or one opened with `create=True` (the admin's `fluxbus nats init`). A service
with its own least-privilege user (docs/security.md) may not create streams:
it binds to the existing ones and reports a missing bootstrap clearly.

Every other part of the adapter (`kv`, `objects`, `artifacts`, `events`,
`leases`) builds on the handles this class opens. nats-py reconnects forever
after a server restart; calls made while disconnected wait for the reconnect
(bounded by their own timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from typing import Any, Self

import nats.errors
import nats.js.api as jsapi
import nats.js.errors as jserrors
from nats.aio.client import Client as NATSClient
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from fluxbus_common import natsauth, subjects
from fluxbus_common.bus.credentials import auth_options
from fluxbus_common.kvwatch import Epoch
from fluxbus_common.liveness import HEARTBEATS_BUCKET_TTL
from fluxbus_common.ports import BusError
from fluxbus_common.settings import DEFAULT_OUTBOX_LIMIT, BusSettings

KV_HISTORY = 5
"""Revisions kept per key: enough to debug a flapping object, small enough to stay cheap."""
LEASE_BUCKET_MAX_AGE = 24 * 3600.0
"""Lease entries older than a day are garbage-collected by the server."""
EVENTS_MAX_AGE = 7 * 24 * 3600.0
"""Events are kept a week, so a notifier that was down delivers what it missed."""
EVENTS_DUPLICATE_WINDOW = 300.0
"""How long the events stream remembers the ids of the events it stored (NATS'
default is 2 min): an outbox retry comes right after the reconnect that lets it
through, and a publish nats-py buffered during the outage reaches the server at
that same reconnect, so five minutes is ample and stays cheap."""
LOGS_MAX_RECORDS = 200_000
LOGS_MAX_BYTES = 128 * 1024 * 1024
LOGS_MAX_AGE = 3 * 24 * 3600.0
"""The logs stream keeps at most this many records, bytes and seconds (oldest
dropped first): days of a quiet installation, hours of a busy one, never more
than a bounded slice of the NATS server's disk."""
LOGS_MAX_RECORD = 64 * 1024
"""Largest log record the stream accepts (publishers truncate longer ones)."""


def _ssl_context(settings: BusSettings) -> ssl.SSLContext | None:
    """The client TLS context the settings ask for, or None for plain TCP."""
    if not (settings.tls_ca or settings.tls_cert):
        return None
    ctx = ssl.create_default_context(cafile=settings.tls_ca or None)
    if settings.tls_cert and settings.tls_key:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    return ctx


class Connection:
    """A connection to the fluxbus control plane. Use `await Bus.connect(...)`."""

    def __init__(
        self,
        nc: NATSClient,
        js: JetStreamContext,
        name: str,
        epoch: Epoch | None = None,
        request_timeout: float = 5.0,
        outbox_limit: int = DEFAULT_OUTBOX_LIMIT,
    ) -> None:
        self._nc = nc
        self._js = js
        self.name = name
        self._epoch = epoch or Epoch()
        """Moves on every reconnect or reported JetStream error: watches resync."""
        self._request_timeout = request_timeout
        self._outbox_limit = outbox_limit
        """Events kept while NATS is unreachable (`fluxbus_common.bus.outbox`)."""
        self._kv: dict[str, KeyValue] = {}
        """The KV buckets by name, filled by `_ensure`."""
        self._store: ObjectStore | None = None
        """The artifact object store, set by `_ensure`."""
        self._replicas = 1
        """JetStream replicas of the buckets (from the settings, set by `_ensure`)."""

    @classmethod
    async def connect(
        cls, settings: BusSettings, name: str = "fluxbus", *, create: bool | None = None
    ) -> Self:
        """Connect, make sure every bucket/store/stream exists, and return the bus.

        `create`: create what is missing (default: only without credentials; a
        least-privilege user binds to what the admin created).
        Raises BusError when the server cannot be reached within the connect
        timeout, or a bucket is missing and may not be created here.
        """
        opts: dict[str, Any] = {
            "servers": settings.urls,
            "name": name,
            "max_reconnect_attempts": -1,  # reconnect forever
            "reconnect_time_wait": 0.5,
            "connect_timeout": settings.connect_timeout,
            "allow_reconnect": True,
        }
        inbox = settings.inbox_prefix
        if settings.credentials:
            auth, identity = auth_options(settings.credentials)
            opts.update(auth)
            if identity and not inbox:
                inbox = natsauth.inbox_prefix(identity)
        if inbox:
            opts["inbox_prefix"] = inbox
        tls = _ssl_context(settings)
        if tls is not None:
            opts["tls"] = tls

        epoch = Epoch()

        async def _on_error(_: Exception) -> None:
            """nats-py reports connection errors (reconnects are automatic) and
            failures of its own background work, such as re-creating a watch's
            consumer: watches resync, in case theirs was one of them."""
            epoch.bump()

        async def _on_reconnect() -> None:
            epoch.bump()

        opts["error_cb"] = _on_error
        opts["reconnected_cb"] = _on_reconnect
        nc = NATSClient()
        # With unbounded reconnects nats-py retries the *first* connect forever too;
        # give every server one connect timeout, then report it unreachable.
        budget = settings.connect_timeout * max(1, len(settings.urls))
        try:
            async with asyncio.timeout(budget):
                await nc.connect(**opts)
        except (nats.errors.Error, OSError, TimeoutError) as e:
            reason = nc.last_error or e
            with contextlib.suppress(Exception):
                await nc.close()
            raise BusError(
                f"cannot connect to NATS at {settings.redacted_urls}: {reason or 'timed out'}"
            ) from e
        js = nc.jetstream(timeout=settings.request_timeout)
        bus = cls(nc, js, name, epoch, settings.request_timeout, settings.outbox_limit)
        if create is None:
            create = not settings.credentials
        try:
            await (bus._ensure(settings) if create else bus._bind(settings))
        except BaseException:
            await nc.close()
            raise
        return bus

    async def _ensure(self, settings: BusSettings) -> None:
        """Create the buckets, object store and stream if they do not exist yet."""
        replicas = settings.replicas
        self._replicas = replicas
        try:
            for bucket in (
                subjects.OBJECTS_BUCKET,
                subjects.STATUS_BUCKET,
                subjects.SECRETS_BUCKET,
            ):
                self._kv[bucket] = await self._js.create_key_value(
                    bucket=bucket, history=KV_HISTORY, replicas=replicas
                )
            self._kv[subjects.LEASES_BUCKET] = await self._js.create_key_value(
                bucket=subjects.LEASES_BUCKET,
                history=1,
                ttl=LEASE_BUCKET_MAX_AGE,
                replicas=replicas,
            )
            self._kv[subjects.HEARTBEATS_BUCKET] = await self._js.create_key_value(
                bucket=subjects.HEARTBEATS_BUCKET,
                history=1,
                ttl=HEARTBEATS_BUCKET_TTL,
                replicas=replicas,
            )
            for kv in self._kv.values():
                # A direct get may be answered by any replica, also one that was down
                # and has not caught up yet; a read must never go back in time, so
                # reads go through the stream leader.
                kv._direct = False
            self._store = await self._js.create_object_store(
                bucket=subjects.ARTIFACTS_STORE,
                config=jsapi.ObjectStoreConfig(replicas=replicas),
            )
            events = jsapi.StreamConfig(
                name=subjects.EVENTS_STREAM,
                subjects=[subjects.EVENTS_SUBJECTS],
                max_age=EVENTS_MAX_AGE,
                num_replicas=replicas,
                duplicate_window=EVENTS_DUPLICATE_WINDOW,
            )
            try:
                await self._js.add_stream(events)
            except jserrors.BadRequestError:
                # It exists with another configuration (an older fluxbus, other
                # replicas): bring the duplicate window up to date, keep the rest.
                info = await self._js.stream_info(subjects.EVENTS_STREAM)
                if info.config.duplicate_window != EVENTS_DUPLICATE_WINDOW:
                    with contextlib.suppress(jserrors.BadRequestError):
                        await self._js.update_stream(
                            dataclasses.replace(
                                info.config, duplicate_window=EVENTS_DUPLICATE_WINDOW
                            )
                        )
            logs = jsapi.StreamConfig(
                name=subjects.LOGS_STREAM,
                subjects=[subjects.LOGS_SUBJECTS],
                max_msgs=LOGS_MAX_RECORDS,
                max_bytes=LOGS_MAX_BYTES,
                max_age=LOGS_MAX_AGE,
                max_msg_size=LOGS_MAX_RECORD,
                discard=jsapi.DiscardPolicy.OLD,
                num_replicas=replicas,
            )
            with contextlib.suppress(jserrors.BadRequestError):  # exists, perhaps resized
                await self._js.add_stream(logs)
        except nats.errors.Error as e:  # JetStream's errors derive from it too
            raise BusError(f"cannot set up JetStream: {e}") from e

    async def _bind(self, settings: BusSettings) -> None:
        """Open handles on the buckets and store the admin created, without asking
        JetStream to create anything (a least-privilege user may not).

        Only the objects bucket is checked, once: every user may read it, and
        when it is missing nothing was created. Raises BusError then.
        """
        self._replicas = settings.replicas
        for bucket in (
            subjects.OBJECTS_BUCKET,
            subjects.STATUS_BUCKET,
            subjects.SECRETS_BUCKET,
            subjects.LEASES_BUCKET,
            subjects.HEARTBEATS_BUCKET,
        ):
            # direct=False: reads through the stream leader (see `_ensure`)
            self._kv[bucket] = KeyValue(
                name=bucket,
                stream=f"KV_{bucket}",
                pre=f"$KV.{bucket}.",
                js=self._js,
                direct=False,
            )
        self._store = ObjectStore(
            name=subjects.ARTIFACTS_STORE,
            stream=f"OBJ_{subjects.ARTIFACTS_STORE}",
            js=self._js,
        )
        try:
            await self._js.stream_info(f"KV_{subjects.OBJECTS_BUCKET}")
        except jserrors.NotFoundError as e:
            raise BusError(
                "the fluxbus buckets do not exist yet: run `fluxbus nats init` "
                "with the admin credentials first"
            ) from e
        except nats.errors.Error as e:
            raise BusError(f"cannot reach JetStream as this NATS user: {e}") from e

    async def close(self) -> None:
        """Drain the connection: flush what is pending, then close."""
        if self._nc.is_closed:
            return
        with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
            await self._nc.drain()

    @property
    def connected(self) -> bool:
        """Whether the client is connected right now (False while it reconnects)."""
        return self._nc.is_connected

    @property
    def connected_url(self) -> str:
        """The server this client is connected to now ("" while disconnected)."""
        url = self._nc.connected_url
        return f"{url.scheme}://{url.netloc}" if url is not None and self.connected else ""
