"""The Receiver webhook server (notification-controller's receiver server):
`/hook/<digest>` → the Receiver whose `status.webhookPath` it is → the type's
checks → `reconcile.fluxcd.io/requestedAt` on every selected object.

Adapter: the only module of the Receivers that imports aiohttp.

Receivers are found in O(1) through an in-memory index kept current by two KV
watches (objects and status of kind Receiver). Answers:

| case | status |
|---|---|
| body over the limit (checked first, as Flux) | 413 |
| no Receiver publishes the path, or its token no longer hashes to it | 404 |
| Receiver suspended, not Ready, or its token unreadable | 503 |
| missing or wrong token / signature | 401 |
| malformed payload, unsupported content type or type | 400 |
| a ping, or an event not in `spec.events` (fluxbus: Flux answers 400) | 200, nothing requested |
| accepted: every selected object annotated | 200 |
| accepted, but a named object is missing or a write failed | 500 |

Each handled request is one log line (receiver, type, event, outcome, status)
and, once the Receiver is known, one event on it. Neither the token nor the
webhook path is ever logged (the path alone lets anyone call a generic
Receiver); aiohttp's access log is off for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from fluxbus_common import subjects
from fluxbus_common.api import Receiver, Secret
from fluxbus_common.cel import CelError, Program
from fluxbus_common.conditions import ConditionType, Reason
from fluxbus_common.events import EventSink, Severity
from fluxbus_common.httpserver import serve_app
from fluxbus_common.ports import BusError, KVChange
from fluxbus_common.reconcile_requests import request_reconcile, request_token
from fluxbus_common.tasks import cancel_and_wait, raise_if_cancelling
from fluxbus_notifier.logic.receiver_targets import (
    TargetError,
    TargetSelector,
    compile_filter,
    filter_accepts,
    request_variables,
    select,
    selector_of,
)
from fluxbus_notifier.logic.webhooks import (
    WEBHOOK_PATH_PREFIX,
    Outcome,
    Verdict,
    verify,
    webhook_path,
)
from fluxbus_notifier.receivers.ports import ReceiverStore
from fluxbus_notifier.receivers.reconciler import TOKEN_KEY
from fluxbus_notifier.receivers.settings import ADDR_ENV, DEFAULT_RECEIVER_ADDR, MAX_BODY_BYTES

log = structlog.get_logger("fluxbus.notifier.receiver_server")

KIND = "Receiver"
RECONCILE_REQUESTED = "ReconcileRequested"
"""Reason of the event a handled webhook leaves on its Receiver."""
STATUS_OF: dict[Outcome, int] = {
    Outcome.ACCEPTED: 200,
    Outcome.PING: 200,
    Outcome.IGNORED: 200,
    Outcome.UNAUTHORIZED: 401,
    Outcome.BAD_REQUEST: 400,
}
FILTER_CACHE_SIZE = 256
"""Compiled resourceFilter programs kept (compiling CEL is slow; expressions are few)."""


@dataclass(frozen=True)
class Found:
    """A Receiver the index knows for a path: its stored document and status."""

    key: str
    doc: dict[str, Any]
    status: dict[str, Any]

    @property
    def ready(self) -> bool:
        for cond in self.status.get("conditions") or []:
            if isinstance(cond, dict) and cond.get("type") == ConditionType.READY:
                return bool(cond.get("status") == "True")
        return False

    @property
    def suspended(self) -> bool:
        return bool((self.doc.get("spec") or {}).get("suspend"))


class ReceiverIndex:
    """Receivers by `status.webhookPath`, fed by KV watch changes."""

    def __init__(self) -> None:
        self._docs: dict[str, dict[str, Any]] = {}
        self._status: dict[str, dict[str, Any]] = {}
        self._paths: dict[str, str] = {}
        """webhookPath → Receiver key."""
        self._path_of: dict[str, str] = {}
        """Receiver key → the webhookPath it is indexed under."""

    def on_object(self, change: KVChange) -> None:
        if change.value is None:
            self._docs.pop(change.key, None)
        else:
            self._docs[change.key] = change.value

    def on_status(self, change: KVChange) -> None:
        key = change.key
        old = self._path_of.pop(key, None)
        if old is not None and self._paths.get(old) == key:
            del self._paths[old]
        if change.value is None:
            self._status.pop(key, None)
            return
        self._status[key] = change.value
        path = change.value.get("webhookPath")
        if isinstance(path, str) and path:
            self._paths[path] = key
            self._path_of[key] = path

    def paths(self) -> set[str]:
        """Every webhook path currently published."""
        return set(self._paths)

    def lookup(self, path: str) -> Found | None:
        """Return the Receiver publishing `path` (its object still stored), or None."""
        key = self._paths.get(path)
        if key is None or key not in self._docs:
            return None
        return Found(key, self._docs[key], self._status.get(key, {}))


def _reply(status: int, text: str = "") -> web.Response:
    return web.Response(status=status, text=text)


class ReceiverServer:
    """Serves `/hook/<digest>` for every Receiver in the store.

    `await start()` (returns the bound port) and `await stop()`, or
    `async with ReceiverServer(...)`, or `await run()` as a background task
    (stops when cancelled). `recorder` receives the events about Receivers.
    """

    def __init__(
        self,
        store: ReceiverStore,
        addr: str = DEFAULT_RECEIVER_ADDR,
        *,
        max_body: int = MAX_BODY_BYTES,
        recorder: EventSink | None = None,
    ) -> None:
        self.store = store
        self.addr = addr
        self.max_body = max_body
        self.recorder = recorder
        self.index = ReceiverIndex()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._filters: dict[str, Program | None] = {}

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> int:
        """Read every Receiver, then listen; return the bound port."""
        synced = {"objects": asyncio.Event(), "status": asyncio.Event()}
        self._tasks = [
            asyncio.create_task(
                self._follow(subjects.OBJECTS_BUCKET, self.index.on_object, synced["objects"]),
                name="receiver-index-objects",
            ),
            asyncio.create_task(
                self._follow(subjects.STATUS_BUCKET, self.index.on_status, synced["status"]),
                name="receiver-index-status",
            ),
        ]
        try:
            await self._wait_synced(list(synced.values()))
            app = web.Application(client_max_size=self.max_body)
            app.router.add_route("*", WEBHOOK_PATH_PREFIX + "{digest}", self._handle)
            self._runner, self.port = await serve_app(app, self.addr, setting=ADDR_ENV)
        except BaseException:
            await cancel_and_wait(*self._tasks)
            self._tasks = []
            raise
        log.info("receiver_server.started", port=self.port)
        return self.port

    async def _wait_synced(self, events: list[asyncio.Event]) -> None:
        """Wait for the initial listings; a watch task that dies first raises its error."""
        waiters = [asyncio.create_task(e.wait(), name="receiver-index-synced") for e in events]
        try:
            pending: set[asyncio.Future[Any]] = {*waiters, *self._tasks}
            while not all(e.is_set() for e in events):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task in self._tasks:
                        task.result()  # raises the watch's error
                        raise RuntimeError("the Receiver watch ended")
        finally:
            await cancel_and_wait(*waiters)

    async def stop(self) -> None:
        """Stop listening and watching (idempotent)."""
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                await runner.cleanup()
        finally:
            tasks, self._tasks = self._tasks, []
            await cancel_and_wait(*tasks)
        if runner is not None:
            log.info("receiver_server.stopped")

    async def run(self) -> None:
        """Serve until cancelled (for `run_service(background=...)`)."""
        await self.start()
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            await self.stop()

    async def __aenter__(self) -> ReceiverServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _follow(self, bucket: str, apply: Any, synced: asyncio.Event) -> None:
        changes: AsyncIterator[KVChange] = self.store.kv_watch(
            bucket, subjects.kind_filter(KIND), mark_initial=True
        )
        async for change in changes:
            raise_if_cancelling()  # nats-py may have swallowed it
            if not change.key:
                synced.set()
                continue
            apply(change)

    # -- requests --------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > self.max_body:
            return self._too_large()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        path = WEBHOOK_PATH_PREFIX + request.match_info["digest"]
        found = self.index.lookup(path)
        if found is None:
            log.info("receiver.unknown_path", status=404)
            return _reply(404)
        try:
            receiver = Receiver.model_validate({**found.doc, "status": found.status})
        except ValueError:
            log.warning("receiver.invalid", receiver=found.key, status=503)
            return _reply(503, "receiver is not ready")
        bound = structlog.contextvars.bound_contextvars(
            kind=KIND, namespace=receiver.metadata.namespace, name=receiver.metadata.name
        )
        with bound:
            return await self._handle_receiver(request, receiver, found, path, body)

    def _too_large(self) -> web.Response:
        log.warning("receiver.body_too_large", limit=self.max_body, status=413)
        return _reply(413, f"request body exceeds the maximum size of {self.max_body} bytes")

    async def _handle_receiver(
        self, request: web.Request, receiver: Receiver, found: Found, path: str, body: bytes
    ) -> web.Response:
        if found.suspended or not found.ready:
            why = "suspended" if found.suspended else "not ready"
            log.warning("receiver.unavailable", reason=why, status=503)
            return _reply(503, f"receiver is {why}")
        token = await self._token(receiver)
        if token is None:
            log.warning("receiver.token_unavailable", status=503)
            return _reply(503, "receiver token unavailable")
        if webhook_path(token, receiver.metadata.name, receiver.metadata.namespace) != path:
            log.info("receiver.stale_path", status=404)  # the token was rotated
            return _reply(404)
        verdict = verify(receiver.spec.type, token, receiver.spec.events, request.headers, body)
        if verdict.outcome is not Outcome.ACCEPTED:
            status = STATUS_OF[verdict.outcome]
            self._log(receiver, verdict, status)
            return _reply(status, verdict.message)
        requested, errors = await self._request_reconciles(receiver, request, body)
        status = 500 if errors else 200
        self._log(receiver, verdict, status, requested=len(requested), errors=errors or None)
        await self._event(receiver, verdict, requested, errors)
        return _reply(status, "; ".join(errors))

    async def _token(self, receiver: Receiver) -> str | None:
        try:
            doc = await self.store.get_secret(
                receiver.metadata.namespace, receiver.spec.secret_ref.name
            )
            value = None if doc is None else Secret.model_validate(doc).decoded().get(TOKEN_KEY)
        except (BusError, ValueError):
            return None
        if not value or not value.strip():
            return None
        return value.decode("utf-8", errors="replace")

    def _filter(self, expression: str | None) -> Program | None:
        if not expression:
            return None
        if expression not in self._filters:
            if len(self._filters) >= FILTER_CACHE_SIZE:
                self._filters.clear()
            self._filters[expression] = compile_filter(expression)
        return self._filters[expression]

    async def _request_reconciles(
        self, receiver: Receiver, request: web.Request, body: bytes
    ) -> tuple[list[str], list[str]]:
        """Annotate every selected object; return (the objects requested, as
        `Kind/namespace/name`, and the errors)."""
        errors: list[str] = []
        requested: list[str] = []
        try:
            program = self._filter(receiver.spec.resource_filter)
            req = request_variables(request.content_type, body) if program is not None else None
        except (CelError, TargetError) as e:
            return [], [f"unable to create resource filter: {e}"]
        token = request_token()
        for ref in receiver.spec.resources:
            try:
                selector = selector_of(ref, receiver.metadata.namespace)
                for key, doc in await self._selected(selector):
                    if not filter_accepts(program, doc, req):
                        continue
                    if await request_reconcile(self.store, key, token) is not None:
                        requested.append(_describe(key, doc))
            except TargetError as e:
                errors.append(str(e))
            except BusError as e:
                errors.append(f"unable to request reconciliation of {ref.kind}/{ref.name}: {e}")
        return requested, errors

    async def _selected(self, selector: TargetSelector) -> list[tuple[str, dict[str, Any]]]:
        """The stored objects a selector names; a named one that is missing is an error."""
        if selector.key is not None:
            entry = await self.store.get_object(selector.key)
            if entry is None:
                raise TargetError(f"unable to read {selector.describe()}: not found")
            return [(selector.key, entry.value)]
        docs = {e.key: e.value for e in await self.store.list_objects(selector.kind.lower())}
        keys = select(selector, docs.values())
        if not keys:
            log.info("receiver.no_match", selector=selector.describe())
        return [(k, docs[k]) for k in keys]

    def _log(self, receiver: Receiver, verdict: Verdict, status: int, **extra: Any) -> None:
        log.info(
            "receiver.request",
            type=receiver.spec.type,
            webhook_event=verdict.event or None,
            outcome=str(verdict.outcome),
            message=verdict.message,
            status=status,
            **extra,
        )

    async def _event(
        self, receiver: Receiver, verdict: Verdict, requested: list[str], errors: list[str]
    ) -> None:
        if self.recorder is None:
            return
        names = ", ".join(requested) or "none"
        message = f"{verdict.message}; reconciliation requested for: {names}"
        if errors:
            message += f"; errors: {'; '.join(errors)}"
        severity = Severity.ERROR if errors else Severity.INFO
        reason = Reason.FAILED if errors else RECONCILE_REQUESTED
        await self.recorder.event(receiver, severity, reason, message)


def _describe(key: str, doc: Mapping[str, Any]) -> str:
    """`GitRepository/flux-system/podinfo` of a stored object."""
    _, namespace, name = subjects.split_object_key(key)
    return f"{doc.get('kind', '')}/{namespace}/{name}"


async def serve_receivers(
    store: ReceiverStore,
    addr: str = DEFAULT_RECEIVER_ADDR,
    *,
    stop: asyncio.Event,
    max_body: int = MAX_BODY_BYTES,
    recorder: EventSink | None = None,
) -> None:
    """Serve the Receivers' webhooks until `stop` is set (or the task is cancelled)."""
    server = ReceiverServer(store, addr, max_body=max_body, recorder=recorder)
    await server.start()
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(BusError):
            await server.stop()


__all__ = ["Found", "ReceiverIndex", "ReceiverServer", "serve_receivers"]
