"""Every provider sends Flux's payload and headers to a real local endpoint."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import aiohttp
import pytest
from notifier_helpers import make_provider

from fluxbus_common.events import Event
from fluxbus_notifier.logic.provider_config import provider_config
from fluxbus_notifier.providers import SUPPORTED_TYPES, DeliveryError, send
from fluxbus_notifier.testing.endpoints import Endpoint, Reply

EVENT_ID = "FLUXBUS_EVENTS:42"
SHA = "5394cb7f48332b2de7c17dd8b8384bbc84b7e738"


def event(severity: str = "info", **overrides: Any) -> Event:
    """An enriched event as the dispatcher hands it over (metadata already merged)."""
    doc: dict[str, Any] = {
        "involvedObject": {
            "kind": "Kustomization",
            "namespace": "apps",
            "name": "webapp",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "uid": "7d0cdc51-ddcf-4743-b223-83ca5c699632",
        },
        "severity": severity,
        "timestamp": "2022-10-28T07:26:19Z",
        "message": "service/apps/webapp validation error: <spec.type> & more",
        "reason": "ValidationFailed" if severity == "error" else "ReconciliationSucceeded",
        "metadata": {"revision": f"main@sha1:{SHA}", "summary": "Cluster addons impacted"},
        "reportingController": "kustomize-controller",
        "reportingInstance": "kustomize-controller-7c7b47f5f-8bhrp",
    }
    doc.update(overrides)
    return Event.model_validate(doc)


async def deliver(
    session: aiohttp.ClientSession,
    type_: str,
    address: str,
    ev: Event,
    secret: dict[str, bytes] | None = None,
    **spec: Any,
) -> None:
    config = provider_config(make_provider(type_, address, **spec), secret, None)
    await send(session, config, ev, event_id=EVENT_ID)


def test_the_registry_lists_the_supported_types() -> None:
    assert SUPPORTED_TYPES == {
        "generic",
        "generic-hmac",
        "slack",
        "discord",
        "msteams",
        "googlechat",
        "github",
        "gitlab",
        "alertmanager",
    }


FLUX_EVENT_JSON = {
    "involvedObject": {
        "kind": "Kustomization",
        "namespace": "apps",
        "name": "webapp",
        "uid": "7d0cdc51-ddcf-4743-b223-83ca5c699632",
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
    },
    "severity": "error",
    "timestamp": "2022-10-28T07:26:19Z",
    "message": "service/apps/webapp validation error: <spec.type> & more",
    "reason": "ValidationFailed",
    "metadata": {"revision": f"main@sha1:{SHA}", "summary": "Cluster addons impacted"},
    "reportingController": "kustomize-controller",
    "reportingInstance": "kustomize-controller-7c7b47f5f-8bhrp",
}


async def test_generic_posts_flux_event_json_with_gotk_component(
    endpoint: Endpoint, session: aiohttp.ClientSession
) -> None:
    secret = {"headers": b"X-Team: web\nAuthorization: Bearer hdr\n"}
    await deliver(session, "generic", endpoint.url_for("/hook"), event("error"), secret)
    (req,) = endpoint.requests
    assert (req.method, req.path) == ("POST", "/hook")
    assert req.json() == FLUX_EVENT_JSON
    assert list(req.json()) == list(FLUX_EVENT_JSON), "Go's field order"
    assert b"\\u003cspec.type\\u003e \\u0026 more" in req.body, "Go's HTML-safe escaping"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Gotk-Component"] == "kustomize-controller"
    assert req.headers["X-Fluxbus-Event-Id"] == EVENT_ID
    assert req.headers["X-Team"] == "web"
    assert req.headers["Authorization"] == "Bearer hdr"


async def test_generic_hmac_signs_the_exact_body_with_the_token(
    endpoint: Endpoint, session: aiohttp.ClientSession
) -> None:
    secret = {"token": b"hmac-key", "headers": b"X-Signature: forged\n"}
    await deliver(session, "generic-hmac", endpoint.url_for("/"), event(), secret)
    (req,) = endpoint.requests
    want = "sha256=" + hmac.new(b"hmac-key", req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Signature"] == want
    assert req.headers["Gotk-Component"] == "kustomize-controller"
    assert req.json()["reason"] == "ReconciliationSucceeded"


def slack_attachment(color: str, fallback: bool = True) -> dict[str, Any]:
    return {
        "fallback": "kustomization/webapp.apps: service/apps/webapp validation error: <spec.type> & more"
        if fallback
        else "",
        "color": color,
        "author_name": "kustomization/webapp.apps",
        "text": "service/apps/webapp validation error: <spec.type> & more",
        "mrkdwn_in": ["text"],
        "fields": [
            {"title": "revision", "value": f"main@sha1:{SHA}", "short": False},
            {"title": "summary", "value": "Cluster addons impacted", "short": False},
        ],
    }


@pytest.mark.parametrize(
    ("severity", "color"), [pytest.param("info", "good"), pytest.param("error", "danger")]
)
async def test_slack_webhook_gets_flux_attachment(
    endpoint: Endpoint, session: aiohttp.ClientSession, severity: str, color: str
) -> None:
    await deliver(
        session, "slack", endpoint.url_for("/services/T0/B0/x"), event(severity), channel="ops"
    )
    (req,) = endpoint.requests
    assert req.json() == {
        "channel": "ops",
        "username": "kustomize-controller",
        "icon_url": "",
        "icon_emoji": "",
        "attachments": [slack_attachment(color)],
    }
    assert "Authorization" not in req.headers
    assert req.headers["X-Fluxbus-Event-Id"] == EVENT_ID


async def test_slack_bot_token_posts_with_bearer_and_checks_ok(
    endpoint: Endpoint, session: aiohttp.ClientSession
) -> None:
    api = endpoint.url_for("/api/chat.postMessage")
    endpoint.reply(Reply(json_body={"ok": True}), times=1)
    await deliver(session, "slack", api, event(), {"token": b"xoxb-1"}, username="flux")
    (req,) = endpoint.requests
    assert req.headers["Authorization"] == "Bearer xoxb-1"
    assert req.json()["username"] == "flux"

    endpoint.reply(Reply(json_body={"ok": False, "error": "channel_not_found"}), times=1)
    with pytest.raises(DeliveryError) as raised:
        await deliver(session, "slack", api, event(), {"token": b"xoxb-1"})
    assert "Slack responded with error: channel_not_found" in str(raised.value)
    assert not raised.value.retryable

    endpoint.reply(Reply(json_body={"ok": False, "error": "ratelimited"}), times=1)
    with pytest.raises(DeliveryError) as raised:
        await deliver(session, "slack", api, event(), {"token": b"xoxb-1"})
    assert raised.value.retryable


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/webhooks/1/tok", id="plain"),
        pytest.param("/api/webhooks/1/tok/slack", id="suffixed"),
    ],
)
async def test_discord_gets_slack_payload_on_the_slack_path(
    endpoint: Endpoint, session: aiohttp.ClientSession, path: str
) -> None:
    await deliver(session, "discord", endpoint.url_for(path), event("error"), channel="ignored")
    (req,) = endpoint.requests
    assert req.path == "/api/webhooks/1/tok/slack"
    assert req.json() == {
        "channel": "",
        "username": "kustomize-controller",
        "icon_url": "",
        "icon_emoji": "",
        "attachments": [slack_attachment("danger", fallback=False)],
    }


async def test_msteams_gets_an_adaptive_card(
    endpoint: Endpoint, session: aiohttp.ClientSession
) -> None:
    await deliver(session, "msteams", endpoint.url_for("/workflows/1"), event("error"))
    (req,) = endpoint.requests
    assert req.json() == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "Container",
                            "items": [
                                {
                                    "type": "TextBlock",
                                    "text": "kustomization/webapp.apps",
                                    "size": "large",
                                    "weight": "bolder",
                                    "wrap": True,
                                },
                                {
                                    "type": "TextBlock",
                                    "text": "service/apps/webapp validation error: <spec.type> & more",
                                    "color": "attention",
                                    "wrap": True,
                                },
                                {
                                    "type": "FactSet",
                                    "facts": [
                                        {"title": "summary", "value": "Cluster addons impacted"},
                                        {"title": "revision", "value": f"main@sha1:{SHA}"},
                                    ],
                                },
                            ],
                        }
                    ],
                    "msteams": {"width": "Full"},
                },
            }
        ],
    }


def test_msteams_legacy_connector_gets_a_message_card() -> None:
    from fluxbus_notifier.logic.payloads import msteams_payload

    payload = msteams_payload(event("error"), "https://org.webhook.office.com/webhookb2/x")
    assert payload == {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "FF0000",
        "summary": "kustomization/webapp.apps",
        "sections": [
            {
                "activityTitle": "service/apps/webapp validation error: <spec.type> & more",
                "activitySubtitle": "kustomization/webapp.apps",
                "facts": [
                    {"name": "revision", "value": f"main@sha1:{SHA}"},
                    {"name": "summary", "value": "Cluster addons impacted"},
                ],
            }
        ],
    }


async def test_googlechat_gets_a_card(endpoint: Endpoint, session: aiohttp.ClientSession) -> None:
    await deliver(session, "googlechat", endpoint.url_for("/v1/spaces/x/messages"), event("error"))
    (req,) = endpoint.requests
    kv = {"contentMultiline": False, "bottomLabel": None, "icon": None}
    assert req.json() == {
        "cards": [
            {
                "header": {
                    "title": "kustomization/webapp.apps",
                    "subtitle": "kustomize-controller",
                    "imageUrl": None,
                    "imageStyle": None,
                },
                "sections": [
                    {
                        "header": "",
                        "widgets": [
                            {
                                "textParagraph": {
                                    "text": '<font color="#ff0000">service/apps/webapp validation error: <spec.type> & more</font>'
                                },
                                "keyValue": None,
                            }
                        ],
                    },
                    {
                        "header": "",
                        "widgets": [
                            {
                                "textParagraph": None,
                                "keyValue": {
                                    "topLabel": "revision",
                                    "content": f"main@sha1:{SHA}",
                                    **kv,
                                },
                            },
                            {
                                "textParagraph": None,
                                "keyValue": {
                                    "topLabel": "summary",
                                    "content": "Cluster addons impacted",
                                    **kv,
                                },
                            },
                        ],
                    },
                ],
            }
        ]
    }


@pytest.mark.parametrize(
    ("secret", "authorization"),
    [
        pytest.param({"token": b"am-token"}, "Bearer am-token", id="bearer"),
        pytest.param(
            {"token": b"am-token", "username": b"u", "password": b"p"},
            "Basic dTpw",
            id="basic-wins",
        ),
        pytest.param({}, None, id="anonymous"),
    ],
)
async def test_alertmanager_gets_one_firing_alert(
    endpoint: Endpoint,
    session: aiohttp.ClientSession,
    secret: dict[str, bytes],
    authorization: str | None,
) -> None:
    await deliver(session, "alertmanager", endpoint.url_for("/api/v2/alerts"), event(), secret)
    (req,) = endpoint.requests
    assert req.headers.get("Authorization") == authorization
    assert req.json() == [
        {
            "status": "firing",
            "labels": {
                "revision": f"main@sha1:{SHA}",
                "alertname": "FluxKustomizationReconciliationsucceeded",
                "severity": "info",
                "reason": "ReconciliationSucceeded",
                "kind": "Kustomization",
                "name": "webapp",
                "namespace": "apps",
                "reportingcontroller": "kustomize-controller",
            },
            "annotations": {
                "message": "service/apps/webapp validation error: <spec.type> & more",
                "summary": "Cluster addons impacted",
            },
            "startsAt": "2022-10-28T07:26:19Z",
            "endsAt": "0001-01-01T00:00:00Z",
        }
    ]


GH_STATUSES = f"/api/v3/repos/org/repo/commits/{SHA}/statuses"
GH_CREATE = f"/api/v3/repos/org/repo/statuses/{SHA}"
CONTEXT = "kustomization/webapp/0c9c2e41"


@pytest.mark.parametrize(
    ("severity", "revision", "state", "description"),
    [
        pytest.param(
            "info", f"main@sha1:{SHA}", "success", "reconciliation succeeded", id="branch-revision"
        ),
        pytest.param("error", f"sha1:{SHA}", "failure", "validation failed", id="digest-revision"),
        pytest.param(
            "info", f"main/{SHA}", "success", "reconciliation succeeded", id="legacy-revision"
        ),
        pytest.param("info", SHA, "success", "reconciliation succeeded", id="bare-sha"),
    ],
)
async def test_github_sets_a_commit_status(
    endpoint: Endpoint,
    session: aiohttp.ClientSession,
    severity: str,
    revision: str,
    state: str,
    description: str,
) -> None:
    endpoint.reply(Reply(json_body=[]), method="GET")
    ev = event(severity, metadata={"revision": revision})
    await deliver(session, "github", endpoint.url_for("/org/repo.git"), ev, {"token": b"ghp_1"})
    listed, created = endpoint.requests
    assert (listed.method, listed.path, listed.query) == ("GET", GH_STATUSES, {"per_page": "50"})
    assert (created.method, created.path) == ("POST", GH_CREATE)
    assert created.json() == {"state": state, "description": description, "context": CONTEXT}
    for req in (listed, created):
        assert req.headers["Authorization"] == "Bearer ghp_1"
        assert req.headers["Accept"] == "application/vnd.github.v3+json"
        assert req.headers["X-Fluxbus-Event-Id"] == EVENT_ID


async def test_github_skips_a_status_it_already_set(
    endpoint: Endpoint, session: aiohttp.ClientSession
) -> None:
    endpoint.reply(
        Reply(
            json_body=[
                {"context": CONTEXT, "state": "success", "description": "reconciliation succeeded"},
                {"context": CONTEXT, "state": "failure", "description": "older"},
            ]
        ),
        method="GET",
    )
    await deliver(
        session, "github", endpoint.url_for("/org/repo"), event(), {"token": b"ghp_secret"}
    )
    assert [r.method for r in endpoint.requests] == ["GET"]


@pytest.mark.parametrize(
    "ev",
    [
        pytest.param(event(metadata={}), id="no-revision"),
        pytest.param(event(reason="Progressing"), id="progressing"),
    ],
)
@pytest.mark.parametrize("type_", ["github", "gitlab"])
async def test_commit_status_providers_skip_events_without_a_revision(
    endpoint: Endpoint, session: aiohttp.ClientSession, ev: Event, type_: str
) -> None:
    await deliver(session, type_, endpoint.url_for("/org/repo"), ev, {"token": b"ghp_secret"})
    assert endpoint.requests == []


async def test_github_rejects_a_revision_without_sha1(
    endpoint: Endpoint, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(DeliveryError) as raised:
        await deliver(
            session,
            "github",
            endpoint.url_for("/org/repo"),
            event(metadata={"revision": "v1.0.0"}),
            {"token": b"ghp_secret"},
        )
    assert not raised.value.retryable
    assert "failed to extract commit hash from 'v1.0.0' revision" in str(raised.value)


GL_PROJECT = "/api/v4/projects/group%2Fsub%2Frepo"


async def test_gitlab_sets_a_commit_status(
    endpoint: Endpoint, session: aiohttp.ClientSession
) -> None:
    endpoint.reply(Reply(json_body=[]), method="GET")
    ev = event("error", metadata={"revision": f"main@sha1:{SHA}"})
    await deliver(
        session, "gitlab", endpoint.url_for("/group/sub/repo.git"), ev, {"token": b"glpat"}
    )
    listed, created = endpoint.requests
    assert (listed.path, listed.query) == (
        f"{GL_PROJECT}/repository/commits/{SHA}/statuses",
        {"name": CONTEXT},
    )
    assert created.path == f"{GL_PROJECT}/statuses/{SHA}"
    assert created.json() == {
        "state": "failed",
        "name": CONTEXT,
        "description": "validation failed",
    }
    assert created.headers["PRIVATE-TOKEN"] == "glpat"


async def test_gitlab_skips_a_status_it_already_set(
    endpoint: Endpoint, session: aiohttp.ClientSession
) -> None:
    existing = {
        "sha": SHA,
        "status": "success",
        "description": "reconciliation succeeded",
        "name": CONTEXT,
    }
    endpoint.reply(Reply(json_body=[existing]), method="GET")
    await deliver(
        session, "gitlab", endpoint.url_for("/group/sub/repo"), event(), {"password": b"pw"}
    )
    assert [r.method for r in endpoint.requests] == ["GET"]
    assert endpoint.requests[0].headers["PRIVATE-TOKEN"] == "pw"
