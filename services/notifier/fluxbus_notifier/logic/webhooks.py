"""Receiver webhooks: the path a Receiver listens on (`webhook_path`, defined with
the API model) and, per Receiver type, the
checks notification-controller's receiver server makes on an incoming request
(internal/server/receiver_handlers.go), each ending in one `Verdict`.

- `generic`: nothing to check;
- `generic-hmac`: `X-Signature: <sha1|sha256|sha512>=<hex HMAC of the body>`;
- `github`: `X-Hub-Signature-256` (else `X-Hub-Signature`) over the body, a JSON
  or form body, `X-GitHub-Event` filtered by `spec.events`; `ping` is answered
  without triggering anything (fluxbus: Flux would trigger or refuse it);
- `gitlab`: `X-Gitlab-Token` equal to the token, `X-Gitlab-Event` filtered;
- `bitbucket`: GitHub's signature check, `X-Event-Key` filtered
  (`diagnostics:ping`, Bitbucket Server's "test connection", is a ping);
- `harbor`: `Authorization` equal to the token;
- `dockerhub`, `quay`, `acr`: the body must decode as their JSON payload;
- `nexus`: `X-Nexus-Webhook-Signature` (hex HMAC-SHA1 of the body), then JSON;
- `cdevents`: a valid CDEvent body, the `Ce-Type` header filtered;
- `gcr`: refused (Google's OIDC token validation needs Google's servers).

Every comparison with the token is constant-time (`hmac.compare_digest`).
No message ever contains the token or a signature.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs

from fluxbus_common.api.notification import RECEIVER_WEBHOOK_PATH, webhook_path

__all__ = [
    "HUB_SIGNATURE_ALGORITHMS",
    "UNSUPPORTED_TYPES",
    "WEBHOOK_PATH_PREFIX",
    "Outcome",
    "Verdict",
    "event_allowed",
    "hub_signature",
    "verify",
    "webhook_path",
]

WEBHOOK_PATH_PREFIX = RECEIVER_WEBHOOK_PATH
"""Flux's `ReceiverWebhookPath`."""

HUB_SIGNATURE_ALGORITHMS: dict[str, Callable[[], Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}
"""The `<alg>=` prefixes GitHub-style signatures may carry (go-github's messageMAC)."""

UNSUPPORTED_TYPES: dict[str, str] = {
    "gcr": "receiver type 'gcr' is not supported by fluxbus: it authenticates requests "
    "with Google-signed OIDC tokens, which needs Google's servers",
}
"""Receiver types fluxbus refuses, with the reason (the reconciler stalls on them)."""

PING_EVENTS = {"github": "ping", "bitbucket": "diagnostics:ping"}
"""The event each Git host sends to test a webhook: answered, never triggering."""


class Outcome(StrEnum):
    """What to do with a request."""

    ACCEPTED = "accepted"
    """Authentic and wanted: request the reconciles."""
    PING = "ping"
    """Authentic test delivery from the sender: answer OK, trigger nothing."""
    IGNORED = "ignored"
    """Authentic, but its event type is not in `spec.events`: trigger nothing."""
    UNAUTHORIZED = "unauthorized"
    """Missing or wrong token or signature."""
    BAD_REQUEST = "bad-request"
    """Malformed: a payload that does not decode, an unsupported content type."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one request, why, and the event type it named."""

    outcome: Outcome
    message: str
    event: str = ""


def _accepted(message: str, event: str = "") -> Verdict:
    return Verdict(Outcome.ACCEPTED, message, event)


def _unauthorized(message: str) -> Verdict:
    return Verdict(Outcome.UNAUTHORIZED, message)


def _bad(message: str) -> Verdict:
    return Verdict(Outcome.BAD_REQUEST, message)


def event_allowed(event: str, events: Sequence[str]) -> bool:
    """Return whether `event` passes `spec.events` (empty: every event; case-insensitive)."""
    if not events:
        return True
    wanted = event.casefold()
    return any(e.casefold() == wanted for e in events)


def _same(given: str, expected: str) -> bool:
    """Constant-time string equality (bytes compared, so any text is fine)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def hub_signature(token: str, body: bytes, algorithm: str = "sha256") -> str:
    """Return the `<alg>=<hex HMAC of body keyed by token>` a sender puts in its header."""
    mac = hmac.new(token.encode(), body, HUB_SIGNATURE_ALGORITHMS[algorithm])
    return f"{algorithm}={mac.hexdigest()}"


def _check_hub_signature(signature: str, body: bytes, token: str, header: str) -> str | None:
    """Return why `signature` (`<alg>=<hex>`) does not sign `body` with `token`, None if it does."""
    if not signature:
        return f"missing signature header {header}"
    algorithm, sep, hex_mac = signature.partition("=")
    if not sep:
        return f"cannot parse the {header} signature: expected <algorithm>=<hex>"
    if algorithm not in HUB_SIGNATURE_ALGORITHMS:
        return f"unknown hash type prefix {algorithm!r} in {header}"
    try:
        given = bytes.fromhex(hex_mac)
    except ValueError:
        return f"cannot decode the {header} signature: not hexadecimal"
    expected = hmac.new(token.encode(), body, HUB_SIGNATURE_ALGORITHMS[algorithm]).digest()
    if not hmac.compare_digest(given, expected):
        return f"the {header} signature does not match the payload"
    return None


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _hub_payload(headers: Mapping[str, str], body: bytes) -> str | None:
    """Return why a GitHub-style body is unusable (go-github's content types), None if fine."""
    media = _media_type(headers)
    if media == "application/json":
        return None
    if media == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode(), strict_parsing=False)
        except UnicodeDecodeError:
            return "cannot decode the form payload"
        return None if form.get("payload") else "the form payload has no 'payload' field"
    return f"webhook request has unsupported Content-Type {media!r}"


def _filtered(kind: str, event: str, events: Sequence[str], ping: str | None = None) -> Verdict:
    """The verdict on an authentic request naming `event`."""
    if ping is not None and event == ping:
        return Verdict(Outcome.PING, f"{kind} ping answered", event)
    if not event_allowed(event, events):
        return Verdict(Outcome.IGNORED, f"the {kind} event {event!r} is not in spec.events", event)
    return _accepted(f"handling {kind} event: {event}", event)


def _hub_signed(
    kind: str,
    event_header: str,
    ping: str,
    token: str,
    events: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
) -> Verdict:
    """GitHub and Bitbucket: X-Hub-Signature-256 (or X-Hub-Signature), then the event filter."""
    header = "X-Hub-Signature-256" if headers.get("x-hub-signature-256") else "X-Hub-Signature"
    why = _check_hub_signature(headers.get(header.lower(), ""), body, token, header)
    if why is not None:
        return _unauthorized(f"the {kind} signature header is invalid: {why}")
    problem = _hub_payload(headers, body)
    if problem is not None:
        return _bad(problem)
    return _filtered(kind, headers.get(event_header, ""), events, ping)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _field(doc: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """A JSON field as Go's decoder would take it into a typed struct: absent or null
    is the zero value; a value of another type is an error (ValueError)."""
    value = doc.get(name)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"field {name!r} has the wrong type")
    return value


def _strings(doc: Mapping[str, Any], name: str) -> list[str]:
    value = _field(doc, name, list) or []
    if not all(isinstance(v, str) for v in value):
        raise ValueError(f"field {name!r} must hold strings")
    return list(value)


def _verify_generic(token: str, events: Sequence[str], h: Mapping[str, str], b: bytes) -> Verdict:
    return _accepted("handling generic event")


def _verify_generic_hmac(
    token: str, events: Sequence[str], h: Mapping[str, str], b: bytes
) -> Verdict:
    why = _check_hub_signature(h.get("x-signature", ""), b, token, "X-Signature")
    if why is not None:
        return _unauthorized(f"unable to validate HMAC signature: {why}")
    return _accepted("handling generic-hmac event")


def _verify_github(token: str, events: Sequence[str], h: Mapping[str, str], b: bytes) -> Verdict:
    return _hub_signed("GitHub", "x-github-event", PING_EVENTS["github"], token, events, h, b)


def _verify_bitbucket(token: str, events: Sequence[str], h: Mapping[str, str], b: bytes) -> Verdict:
    return _hub_signed("Bitbucket", "x-event-key", PING_EVENTS["bitbucket"], token, events, h, b)


def _verify_gitlab(token: str, events: Sequence[str], h: Mapping[str, str], b: bytes) -> Verdict:
    if not _same(h.get("x-gitlab-token", ""), token):
        return _unauthorized("the X-Gitlab-Token header value does not match the receiver token")
    return _filtered("GitLab", h.get("x-gitlab-event", ""), events)


def _verify_harbor(token: str, events: Sequence[str], h: Mapping[str, str], b: bytes) -> Verdict:
    if not _same(h.get("authorization", ""), token):
        return _unauthorized(
            "the Harbor Authorization header value does not match the receiver token"
        )
    return _accepted("handling Harbor event")


def _verify_dockerhub(token: str, events: Sequence[str], h: Mapping[str, str], b: bytes) -> Verdict:
    doc = _json_object(b)
    try:
        if doc is None:
            raise ValueError("not a JSON object")
        push = _field(doc, "push_data", dict) or {}
        repo = _field(doc, "repository", dict) or {}
        tag = _field(push, "tag", str) or ""
        url = _field(repo, "repo_url", str) or ""
    except ValueError:
        return _bad("cannot decode DockerHub webhook payload")
    return _accepted(f"handling DockerHub event from {url} for tag {tag}")


def _verify_quay(token: str, events: Sequence[str], h: Mapping[str, str], b: bytes) -> Verdict:
    doc = _json_object(b)
    try:
        if doc is None:
            raise ValueError("not a JSON object")
        url = _field(doc, "docker_url", str) or ""
        _strings(doc, "updated_tags")
    except ValueError as e:
        return _bad(f"cannot decode Quay webhook payload: {e}")
    return _accepted(f"handling Quay event from {url}")


def _verify_acr(token: str, events: Sequence[str], h: Mapping[str, str], b: bytes) -> Verdict:
    doc = _json_object(b)
    try:
        if doc is None:
            raise ValueError("not a JSON object")
        _field(doc, "action", str)
        target = _field(doc, "target", dict) or {}
        repository = _field(target, "repository", str) or ""
        tag = _field(target, "tag", str) or ""
    except ValueError as e:
        return _bad(f"cannot decode ACR webhook payload: {e}")
    return _accepted(f"handling ACR event from {repository} for tag {tag}")


def _verify_nexus(token: str, events: Sequence[str], h: Mapping[str, str], b: bytes) -> Verdict:
    signature = h.get("x-nexus-webhook-signature", "")
    if not signature:
        return _unauthorized("the Nexus signature is missing from header")
    expected = hmac.new(token.encode(), b, hashlib.sha1).hexdigest()
    if not _same(signature, expected):
        return _unauthorized("invalid Nexus signature")
    doc = _json_object(b)
    try:
        if doc is None:
            raise ValueError("not a JSON object")
        _field(doc, "action", str)
        repository = _field(doc, "repositoryName", str) or ""
    except ValueError as e:
        return _bad(f"cannot decode Nexus webhook payload: {e}")
    return _accepted(f"handling Nexus event from {repository}")


CDEVENT_TYPE = re.compile(r"^dev\.cdevents\.[a-z]+\.[a-z]+\.\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
"""`dev.cdevents.<subject>.<predicate>.<semver>`, the CDEvents spec's `context.type`."""


def cdevent_problem(doc: dict[str, Any] | None) -> str | None:
    """Return why a body is not a valid CDEvent (the spec's required fields), None if it is."""
    if doc is None:
        return "not a JSON object"
    context = doc.get("context")
    subject = doc.get("subject")
    if not isinstance(context, dict):
        return "missing object 'context'"
    if not isinstance(subject, dict):
        return "missing object 'subject'"
    for name in ("version", "id", "source", "type", "timestamp"):
        value = context.get(name)
        if not isinstance(value, str) or not value:
            return f"context.{name} is required"
    if not CDEVENT_TYPE.match(context["type"]):
        return f"context.type {context['type']!r} is not a CDEvents type"
    if not isinstance(subject.get("id"), str) or not subject["id"]:
        return "subject.id is required"
    if not isinstance(subject.get("content"), dict):
        return "subject.content is required"
    return None


def _verify_cdevents(token: str, events: Sequence[str], h: Mapping[str, str], b: bytes) -> Verdict:
    problem = cdevent_problem(_json_object(b))
    if problem is not None:
        return _bad(f"unable to validate CDEvent event: {problem}")
    return _filtered("CDEvent", h.get("ce-type", ""), events)


Check = Callable[[str, Sequence[str], Mapping[str, str], bytes], Verdict]

CHECKS: dict[str, Check] = {
    "generic": _verify_generic,
    "generic-hmac": _verify_generic_hmac,
    "github": _verify_github,
    "gitlab": _verify_gitlab,
    "bitbucket": _verify_bitbucket,
    "harbor": _verify_harbor,
    "dockerhub": _verify_dockerhub,
    "quay": _verify_quay,
    "nexus": _verify_nexus,
    "acr": _verify_acr,
    "cdevents": _verify_cdevents,
}
"""One check per supported Receiver type."""


def verify(
    receiver_type: str,
    token: str,
    events: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
) -> Verdict:
    """Check one request against a Receiver of `receiver_type` with `token` and `spec.events`.

    `headers` may use any case (they are matched case-insensitively); `body`
    is the exact bytes received. Returns the Verdict; never raises on bad input.
    """
    check = CHECKS.get(receiver_type)
    if check is None:
        reason = UNSUPPORTED_TYPES.get(receiver_type, f"receiver type {receiver_type!r} unknown")
        return _bad(reason)
    lowered = {k.lower(): v for k, v in headers.items()}
    return check(token, events, lowered, body)
