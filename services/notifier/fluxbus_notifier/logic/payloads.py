"""The request bodies notification-controller sends, built from an (enriched) event.

Pure: no I/O.

One builder per provider family, each the shape of Flux's `internal/notifier`:

- `event_json`: the Event as Flux's Go structs marshal it (generic, generic-hmac);
  `go_json` encodes like Go's `json.Marshal` (compact, `<`, `>`, `&`, U+2028 and
  U+2029 escaped), so an HMAC over the body is what a Go receiver recomputes;
- `slack_payload` / `discord_payload`: one attachment, `color` `good`/`danger`,
  `author_name` `<kind>/<name>.<namespace>` (kind lower-cased), the message as
  text, one field per metadata key, `username` defaulting to the reporting
  controller; `discord_url` appends Discord's Slack-compatible `/slack`;
- `msteams_payload`: an Adaptive Card (1.4), or the legacy MessageCard when the
  webhook host ends in `.webhook.office.com` (Office 365 connectors);
- `googlechat_payload`: a card with the object as title, the controller as
  subtitle, the message (red for errors) and one key/value widget per key;
- `alertmanager_payload`: one firing alert, metadata as labels, `summary` moved to
  annotations.

Go iterates maps in random order; fluxbus sorts metadata keys so that a payload
is stable (what Teams' Adaptive Card does on purpose, everywhere).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fluxbus_common.events import Event

__all__ = [
    "alertmanager_payload",
    "discord_payload",
    "discord_url",
    "event_json",
    "go_json",
    "googlechat_payload",
    "msteams_is_legacy_connector",
    "msteams_payload",
    "object_title",
    "slack_payload",
]

MSTEAMS_ADAPTIVE_CARD_VERSION = "1.4"
"""The highest Adaptive Card schema version Teams renders (Flux pins the same)."""

_LEGACY_TEAMS_HOST_SUFFIX = ".webhook.office.com"

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_ESCAPE_RX = re.compile("[<>&\u2028\u2029]")


def go_json(value: Any) -> bytes:
    """`value` encoded as Go's `json.Marshal` would (compact, HTML-safe escapes)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return _GO_ESCAPE_RX.sub(lambda m: _GO_ESCAPES[m.group(0)], text).encode("utf-8")


def event_json(event: Event) -> dict[str, Any]:
    """The Event in Flux's JSON shape and field order (empty optional fields left out)."""
    obj = event.involved_object
    involved: dict[str, Any] = {"kind": obj.kind, "namespace": obj.namespace, "name": obj.name}
    if obj.uid:
        involved["uid"] = obj.uid
    if obj.api_version:
        involved["apiVersion"] = obj.api_version
    if obj.resource_version:
        involved["resourceVersion"] = obj.resource_version
    body: dict[str, Any] = {
        "involvedObject": involved,
        "severity": str(event.severity),
        "timestamp": event.timestamp,
        "message": event.message,
        "reason": event.reason,
    }
    if event.metadata:
        body["metadata"] = dict(event.metadata)
    body["reportingController"] = event.reporting_controller
    if event.reporting_instance:
        body["reportingInstance"] = event.reporting_instance
    return body


def object_title(event: Event) -> str:
    """`<kind>/<name>.<namespace>` with the kind lower-cased, as every chat notifier titles."""
    obj = event.involved_object
    return f"{obj.kind.lower()}/{obj.name}.{obj.namespace}"


def _is_error(event: Event) -> bool:
    return str(event.severity) == "error"


def _fields(event: Event) -> list[dict[str, Any]]:
    return [{"title": k, "value": v, "short": False} for k, v in sorted(event.metadata.items())]


def slack_payload(event: Event, username: str | None, channel: str | None) -> dict[str, Any]:
    """Flux's Slack message (incoming webhook or chat.postMessage)."""
    author = object_title(event)
    return {
        "channel": channel or "",
        "username": username or event.reporting_controller,
        "icon_url": "",
        "icon_emoji": "",
        "attachments": [
            {
                "fallback": f"{author}: {event.message.split(chr(10))[0]}",
                "color": "danger" if _is_error(event) else "good",
                "author_name": author,
                "text": event.message,
                "mrkdwn_in": ["text"],
                "fields": _fields(event),
            }
        ],
    }


def discord_payload(event: Event, username: str | None) -> dict[str, Any]:
    """Flux's Discord message: Slack's shape without channel or fallback."""
    return {
        "channel": "",
        "username": username or event.reporting_controller,
        "icon_url": "",
        "icon_emoji": "",
        "attachments": [
            {
                "fallback": "",
                "color": "danger" if _is_error(event) else "good",
                "author_name": object_title(event),
                "text": event.message,
                "mrkdwn_in": ["text"],
                "fields": _fields(event),
            }
        ],
    }


def discord_url(address: str) -> str:
    """The webhook address with Discord's Slack-compatible `/slack` suffix (added once)."""
    if address.endswith("/slack"):
        return address
    parts = urlsplit(address)
    path = parts.path.rstrip("/") + "/slack"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def msteams_is_legacy_connector(address: str) -> bool:
    """Whether the address is a deprecated Office 365 connector (MessageCard format)."""
    host = (urlsplit(address).hostname or "").lower()
    return host.endswith(_LEGACY_TEAMS_HOST_SUFFIX)


def _teams_message_card(event: Event, title: str) -> dict[str, Any]:
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "FF0000" if _is_error(event) else "0076D7",
        "summary": title,
        "sections": [
            {
                "activityTitle": event.message,
                "activitySubtitle": title,
                "facts": [{"name": k, "value": v} for k, v in sorted(event.metadata.items())],
            }
        ],
    }


def _text_block(text: str, **style: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "TextBlock"}
    if text:
        block["text"] = text
    block.update(style)
    return block


def _teams_adaptive_card(event: Event, title: str) -> dict[str, Any]:
    facts = []
    if "summary" in event.metadata:
        facts.append({"title": "summary", "value": event.metadata["summary"]})
    facts += [{"title": k, "value": v} for k, v in sorted(event.metadata.items()) if k != "summary"]
    message = (
        _text_block(event.message, color="attention", wrap=True)
        if _is_error(event)
        else _text_block(event.message, wrap=True)
    )
    fact_set: dict[str, Any] = {"type": "FactSet"}
    if facts:
        fact_set["facts"] = facts
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": MSTEAMS_ADAPTIVE_CARD_VERSION,
                    "body": [
                        {
                            "type": "Container",
                            "items": [
                                _text_block(title, size="large", weight="bolder", wrap=True),
                                message,
                                fact_set,
                            ],
                        }
                    ],
                    "msteams": {"width": "Full"},
                },
            }
        ],
    }


def msteams_payload(event: Event, address: str) -> dict[str, Any]:
    """Flux's Teams message: an Adaptive Card, or a MessageCard for legacy connectors."""
    title = object_title(event)
    if msteams_is_legacy_connector(address):
        return _teams_message_card(event, title)
    return _teams_adaptive_card(event, title)


def googlechat_payload(event: Event) -> dict[str, Any]:
    """Flux's Google Chat card."""
    text = event.message
    if _is_error(event):
        text = f'<font color="#ff0000">{event.message}</font>'
    sections: list[dict[str, Any]] = [
        {"header": "", "widgets": [{"textParagraph": {"text": text}, "keyValue": None}]}
    ]
    if event.metadata:
        sections.append(
            {
                "header": "",
                "widgets": [
                    {
                        "textParagraph": None,
                        "keyValue": {
                            "topLabel": k,
                            "content": v,
                            "contentMultiline": False,
                            "bottomLabel": None,
                            "icon": None,
                        },
                    }
                    for k, v in sorted(event.metadata.items())
                ],
            }
        )
    header = {
        "title": object_title(event),
        "subtitle": event.reporting_controller,
        "imageUrl": None,
        "imageStyle": None,
    }
    return {"cards": [{"header": header, "sections": sections}]}


_WORD_RX = re.compile(r"[^\W_]+")


def _go_title(text: str) -> str:
    """golang.org/x/text `cases.Title`: each word's first letter upper, the rest lower."""
    return _WORD_RX.sub(lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), text)


def _rfc3339_utc(timestamp: str) -> str:
    try:
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


GO_ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time.Time in RFC 3339: Flux sends it as `endsAt` (Alertmanager then uses
its resolve_timeout)."""


def alertmanager_payload(event: Event) -> list[dict[str, Any]]:
    """Flux's Alertmanager alert list (one firing alert)."""
    labels = dict(event.metadata)
    annotations = {"message": event.message}
    if "summary" in labels:
        annotations["summary"] = labels.pop("summary")
    obj = event.involved_object
    labels.update(
        {
            "alertname": f"Flux{obj.kind}{_go_title(event.reason)}",
            "severity": str(event.severity),
            "reason": event.reason,
            "kind": obj.kind,
            "name": obj.name,
            "namespace": obj.namespace,
            "reportingcontroller": event.reporting_controller,
        }
    )
    return [
        {
            "status": "firing",
            "labels": labels,
            "annotations": annotations,
            "startsAt": _rfc3339_utc(event.timestamp),
            "endsAt": GO_ZERO_TIME,
        }
    ]
