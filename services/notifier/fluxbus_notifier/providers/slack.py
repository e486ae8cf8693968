"""`slack`: Flux's attachment message to an incoming webhook, or to the Web API's
`chat.postMessage` with the token as Bearer auth (the JSON answer's `ok` checked).

Adapter (HTTP through `transport`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fluxbus_common.events import Event
from fluxbus_notifier.logic.payloads import slack_payload
from fluxbus_notifier.providers.transport import ProviderHTTP

POST_MESSAGE_PATH = "/api/chat.postMessage"
"""The Web API method: it answers 200 even on errors, so its `ok` field decides."""

RETRYABLE_API_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
"""Slack Web API error codes that may succeed later; any other is a configuration error."""


async def send_slack(http: ProviderHTTP, event: Event) -> None:
    """Post the event to Slack."""
    c = http.config
    headers = {"Authorization": f"Bearer {c.token}"} if c.token else {}
    resp = await http.post_json(
        c.address, slack_payload(event, c.username, c.channel), headers=headers
    )
    if not urlsplit(c.address).path.endswith(POST_MESSAGE_PATH):
        return
    try:
        answer = resp.json()
    except ValueError:
        raise http.fail("unable to unmarshal response body", retryable=True) from None
    if isinstance(answer, dict) and answer.get("ok") is True:
        return
    code = str(answer.get("error", "")) if isinstance(answer, dict) else ""
    raise http.fail(
        f"Slack responded with error: {code}",
        retryable=code in RETRYABLE_API_ERRORS,
        status=resp.status,
    )
