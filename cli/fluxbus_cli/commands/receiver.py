"""`fluxbus create receiver`: build a Receiver (and, with `--token` or when the
Secret does not exist yet, its token Secret), store them, print the webhook URL
to configure in the Git host or registry, and wait for the notifier to report
the Receiver Ready (as `flux create receiver` does).

The URL is computed here from the token (`/hook/<sha256(token + name +
namespace)>`, the path the notifier publishes), so it is printed even before
the notifier runs. A token is printed only when this command generated it: the
user must paste it into the sender's webhook settings and cannot read it back.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

from fluxbus_cli import render, store
from fluxbus_cli.errors import CliError
from fluxbus_cli.manifests import check_namespace
from fluxbus_cli.render import Output
from fluxbus_cli.secrets import secret_document
from fluxbus_common import subjects
from fluxbus_common.api import (
    InvalidObject,
    Receiver,
    Secret,
    UnknownKind,
    parse_object,
    resolve_kind,
)
from fluxbus_common.api.meta import CrossNamespaceObjectReference
from fluxbus_common.api.notification import ReceiverType, webhook_path
from fluxbus_common.bus import Bus

TOKEN_KEY = "token"
TOKEN_BYTES = 20
"""A generated token: 20 random bytes as 40 hex characters (what Flux's docs generate)."""
DEFAULT_URL_BASE = "http://localhost:9292"
"""The notifier's receiver server on this machine (FLUXBUS_RECEIVER_ADDR's default port)."""
RECEIVER_TYPES: tuple[str, ...] = get_args(ReceiverType)
RESOURCE_KINDS: tuple[str, ...] = get_args(
    CrossNamespaceObjectReference.model_fields["kind"].annotation
)


@dataclass(frozen=True)
class ReceiverRequest:
    """What the user asked for."""

    name: str
    namespace: str
    type: str
    events: Sequence[str]
    resources: Sequence[str]
    secret_ref: str
    token: str | None
    url_base: str


def split_values(values: Sequence[str]) -> list[str]:
    """Repeatable flags that also take comma-separated values (as Flux's StringSlice)."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _resource(spec: str) -> dict[str, str]:
    kind_name, sep, name = spec.partition("/")
    if not sep or not kind_name or not name:
        raise CliError(f"invalid resource '{spec}', must be in format <kind>/<name>")
    try:
        kind = resolve_kind(kind_name).kind
    except UnknownKind:
        kind = kind_name
    if kind not in RESOURCE_KINDS:
        raise CliError(
            f"invalid resource '{spec}': kind must be one of {', '.join(RESOURCE_KINDS)}"
        )
    return {"kind": kind, "name": name}


def receiver_document(req: ReceiverRequest) -> dict[str, Any]:
    """Return the Receiver manifest; raise CliError for a bad type, resource or name."""
    check_namespace(req.namespace)
    if req.type not in RECEIVER_TYPES:
        raise CliError(f'--type must be one of {", ".join(RECEIVER_TYPES)}, got "{req.type}"')
    if not req.secret_ref:
        raise CliError("--secret-ref is required")
    resources = [_resource(r) for r in split_values(req.resources)]
    if not resources:
        raise CliError("at least one --resource is required")
    spec: dict[str, Any] = {"type": req.type}
    events = split_values(req.events)
    if events:
        spec["events"] = events
    spec["resources"] = resources
    spec["secretRef"] = {"name": req.secret_ref}
    doc = {
        "apiVersion": Receiver.model_fields["api_version"].default,
        "kind": "Receiver",
        "metadata": {"name": req.name, "namespace": req.namespace},
        "spec": spec,
    }
    try:
        parse_object(doc)
    except InvalidObject as e:
        raise CliError(f"invalid receiver: {e}") from None
    return doc


def webhook_url(url_base: str, token: str, name: str, namespace: str) -> str:
    """`<url-base>/hook/<digest>`: the address to paste into the sender."""
    base = url_base.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CliError(f'--url-base must start with http:// or https://, got "{url_base}"')
    return base + webhook_path(token, name, namespace)


def export_receiver(out: Output, req: ReceiverRequest) -> int:
    """Print the Receiver as YAML (the token Secret is never exported)."""
    out.data(render.to_yaml_stream([receiver_document(req)]))
    return 0


async def _stored_token(bus: Bus, namespace: str, name: str) -> str | None:
    doc = await bus.get_secret(namespace, name)
    if doc is None:
        return None
    value = Secret.model_validate(doc).decoded().get(TOKEN_KEY)
    if not value or not value.strip():
        raise CliError(f"secret '{namespace}/{name}' has no '{TOKEN_KEY}': give --token to set one")
    return value.decode("utf-8", errors="replace")


async def create_receiver(
    bus: Bus, out: Output, req: ReceiverRequest, *, wait: bool = True, timeout: float = 60.0
) -> int:
    """Store the token Secret (when given or missing) and the Receiver, print the
    webhook URL, then (with `wait`) wait until the notifier reports it Ready."""
    doc = receiver_document(req)
    token, generated = req.token, False
    if token is None:
        token = await _stored_token(bus, req.namespace, req.secret_ref)
    if token is None:
        token, generated = secrets.token_hex(TOKEN_BYTES), True
    url = webhook_url(req.url_base, token, req.name, req.namespace)
    if req.token is not None or generated:
        data = {TOKEN_KEY: token.encode()}
        secret = parse_object(secret_document(req.secret_ref, req.namespace, data))
        result = await store.put(bus, secret)
        out.data(f"secret/{req.namespace}/{req.secret_ref} {result}")
    receiver = parse_object(doc)
    result = await store.put(bus, receiver)
    out.data(f"receiver/{req.namespace}/{req.name} {result}")
    if generated:
        out.warning("generated a token: set it as the webhook's secret (it is shown only once)")
        out.data(f"token: {token}")
    out.data(f"webhook URL: {url}")
    if not wait:
        return 0
    return await _wait_ready(bus, out, req, url, timeout)


async def _wait_ready(bus: Bus, out: Output, req: ReceiverRequest, url: str, timeout: float) -> int:
    """Wait until the Receiver is Ready with this URL's path; on timeout say why
    (its last Ready message, or that no notifier answered)."""
    key = subjects.object_key("Receiver", req.namespace, req.name)
    path = url[url.index("/hook/") :]
    last: dict[str, Any] = {}

    def ready(status: dict[str, Any]) -> bool:
        last.clear()
        last.update(render.ready_condition({"status": status}) or {})
        return last.get("status") == "True" and status.get("webhookPath") == path

    with out.spinner("waiting for Receiver reconciliation"):
        try:
            async with asyncio.timeout(timeout):
                await store.wait_for_status(bus, key, ready)
        except TimeoutError:
            why = last.get("message") or "is the notifier running?"
            raise CliError(
                f"timed out after {timeout:g}s waiting for Receiver "
                f"'{req.namespace}/{req.name}' to be ready: {why}"
            ) from None
    out.success(f"Receiver {req.name} is ready")
    return 0
