"""The pure Receiver checks: the webhook path as Flux computes it, and every
Receiver type's verdict on good and bad tokens, signatures, payloads and events."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from fluxbus_common.api.meta import CrossNamespaceObjectReference
from fluxbus_notifier.logic.receiver_targets import (
    TargetError,
    compile_filter,
    filter_accepts,
    request_variables,
    select,
    selector_of,
)
from fluxbus_notifier.logic.webhooks import Outcome, event_allowed, hub_signature, verify

TOKEN = "tok3n"
BODY = b'{"ref":"refs/heads/main"}'
JSON = {"Content-Type": "application/json"}


def test_the_webhook_path_is_the_sha256_of_token_name_and_namespace_as_flux_computes_it():
    from fluxbus_notifier.logic.webhooks import webhook_path

    expected = hashlib.sha256(b"tok3n" + b"github-receiver" + b"flux-system").hexdigest()
    assert webhook_path(TOKEN, "github-receiver", "flux-system") == f"/hook/{expected}"
    assert webhook_path("other", "github-receiver", "flux-system") != f"/hook/{expected}"


def sig(alg: str, body: bytes = BODY, token: str = TOKEN) -> str:
    return f"{alg}={hmac.new(token.encode(), body, getattr(hashlib, alg)).hexdigest()}"


def github(event: str = "push", signature: str | None = None, **more: str) -> dict[str, str]:
    return {
        **JSON,
        "X-GitHub-Event": event,
        "X-Hub-Signature-256": signature if signature is not None else sig("sha256"),
        **more,
    }


CDEVENT = {
    "context": {
        "version": "0.4.1",
        "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
        "source": "/event/source/123",
        "type": "dev.cdevents.change.merged.0.2.0",
        "timestamp": "2023-03-20T14:27:05.315384Z",
    },
    "subject": {
        "id": "mySubject123",
        "source": "/event/source/123",
        "type": "change",
        "content": {"repository": {"id": "cdevents/service"}},
    },
}


CASES = [
    # generic
    pytest.param("generic", [], {}, b"", Outcome.ACCEPTED, id="generic-accepts-anything"),
    # generic-hmac
    *[
        pytest.param(
            "generic-hmac",
            [],
            {"X-Signature": sig(alg)},
            BODY,
            Outcome.ACCEPTED,
            id=f"generic-hmac-{alg}-signature",
        )
        for alg in ("sha1", "sha256", "sha512")
    ],
    pytest.param(
        "generic-hmac", [], {}, BODY, Outcome.UNAUTHORIZED, id="generic-hmac-missing-signature"
    ),
    pytest.param(
        "generic-hmac",
        [],
        {"X-Signature": sig("sha256", token="wrong")},
        BODY,
        Outcome.UNAUTHORIZED,
        id="generic-hmac-wrong-key",
    ),
    pytest.param(
        "generic-hmac",
        [],
        {"X-Signature": "md5=00ff"},
        BODY,
        Outcome.UNAUTHORIZED,
        id="generic-hmac-unknown-algorithm",
    ),
    pytest.param(
        "generic-hmac",
        [],
        {"X-Signature": "sha256=zz"},
        BODY,
        Outcome.UNAUTHORIZED,
        id="generic-hmac-not-hex",
    ),
    pytest.param(
        "generic-hmac",
        [],
        {"X-Signature": sig("sha256")},
        BODY + b" ",
        Outcome.UNAUTHORIZED,
        id="generic-hmac-body-changed",
    ),
    # github
    pytest.param("github", [], github(), BODY, Outcome.ACCEPTED, id="github-sha256"),
    pytest.param(
        "github",
        [],
        {**JSON, "X-GitHub-Event": "push", "X-Hub-Signature": sig("sha1")},
        BODY,
        Outcome.ACCEPTED,
        id="github-legacy-sha1-header",
    ),
    pytest.param("github", ["Push"], github(), BODY, Outcome.ACCEPTED, id="github-event-any-case"),
    pytest.param(
        "github", ["push"], github("issues"), BODY, Outcome.IGNORED, id="github-event-filtered"
    ),
    pytest.param("github", ["push"], github("ping"), BODY, Outcome.PING, id="github-ping"),
    pytest.param(
        "github",
        [],
        github("ping", signature=sig("sha256", token="x")),
        BODY,
        Outcome.UNAUTHORIZED,
        id="github-ping-badly-signed",
    ),
    pytest.param(
        "github",
        [],
        github(signature=""),
        BODY,
        Outcome.UNAUTHORIZED,
        id="github-unsigned",
    ),
    pytest.param(
        "github",
        [],
        github(signature=sig("sha256", token="wrong")),
        BODY,
        Outcome.UNAUTHORIZED,
        id="github-wrong-secret",
    ),
    pytest.param(
        "github",
        [],
        github(**{"Content-Type": "text/plain"}),
        BODY,
        Outcome.BAD_REQUEST,
        id="github-unsupported-content-type",
    ),
    pytest.param(
        "github",
        [],
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": sig("sha256", b"payload=%7B%7D"),
        },
        b"payload=%7B%7D",
        Outcome.ACCEPTED,
        id="github-form-payload",
    ),
    # gitlab
    pytest.param(
        "gitlab",
        ["Push Hook"],
        {"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Push Hook"},
        BODY,
        Outcome.ACCEPTED,
        id="gitlab-token",
    ),
    pytest.param(
        "gitlab",
        [],
        {"X-Gitlab-Token": "nope", "X-Gitlab-Event": "Push Hook"},
        BODY,
        Outcome.UNAUTHORIZED,
        id="gitlab-wrong-token",
    ),
    pytest.param("gitlab", [], {}, BODY, Outcome.UNAUTHORIZED, id="gitlab-no-token"),
    pytest.param(
        "gitlab",
        ["Push Hook"],
        {"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Note Hook"},
        BODY,
        Outcome.IGNORED,
        id="gitlab-event-filtered",
    ),
    # bitbucket
    pytest.param(
        "bitbucket",
        ["repo:refs_changed"],
        {**JSON, "X-Event-Key": "repo:refs_changed", "X-Hub-Signature": sig("sha256")},
        BODY,
        Outcome.ACCEPTED,
        id="bitbucket-signed",
    ),
    pytest.param(
        "bitbucket",
        [],
        {**JSON, "X-Event-Key": "repo:refs_changed", "X-Hub-Signature": sig("sha256", token="x")},
        BODY,
        Outcome.UNAUTHORIZED,
        id="bitbucket-wrong-secret",
    ),
    pytest.param(
        "bitbucket",
        ["repo:push"],
        {**JSON, "X-Event-Key": "repo:refs_changed", "X-Hub-Signature": sig("sha256")},
        BODY,
        Outcome.IGNORED,
        id="bitbucket-event-filtered",
    ),
    pytest.param(
        "bitbucket",
        ["repo:push"],
        {**JSON, "X-Event-Key": "diagnostics:ping", "X-Hub-Signature": sig("sha256")},
        BODY,
        Outcome.PING,
        id="bitbucket-test-connection",
    ),
    # harbor
    pytest.param("harbor", [], {"Authorization": TOKEN}, BODY, Outcome.ACCEPTED, id="harbor"),
    pytest.param(
        "harbor",
        [],
        {"Authorization": f"Bearer {TOKEN}"},
        BODY,
        Outcome.UNAUTHORIZED,
        id="harbor-wrong-header",
    ),
    # dockerhub / quay / acr: payload shape only
    pytest.param(
        "dockerhub",
        [],
        {},
        b'{"push_data":{"tag":"v1"},"repository":{"repo_url":"https://hub.docker.com/r/a/b"}}',
        Outcome.ACCEPTED,
        id="dockerhub",
    ),
    pytest.param("dockerhub", [], {}, b"not json", Outcome.BAD_REQUEST, id="dockerhub-not-json"),
    pytest.param(
        "dockerhub", [], {}, b'{"push_data":"v1"}', Outcome.BAD_REQUEST, id="dockerhub-wrong-shape"
    ),
    pytest.param(
        "quay",
        [],
        {},
        b'{"docker_url":"quay.io/a/b","updated_tags":["v1"]}',
        Outcome.ACCEPTED,
        id="quay",
    ),
    pytest.param(
        "quay", [], {}, b'{"updated_tags":"v1"}', Outcome.BAD_REQUEST, id="quay-wrong-shape"
    ),
    pytest.param(
        "acr",
        [],
        {},
        b'{"action":"push","target":{"repository":"a/b","tag":"v1"}}',
        Outcome.ACCEPTED,
        id="acr",
    ),
    pytest.param("acr", [], {}, b"[]", Outcome.BAD_REQUEST, id="acr-not-an-object"),
    # nexus
    pytest.param(
        "nexus",
        [],
        {"X-Nexus-Webhook-Signature": sig("sha1").split("=", 1)[1]},
        BODY,
        Outcome.ACCEPTED,
        id="nexus",
    ),
    pytest.param(
        "nexus",
        [],
        {"X-Nexus-Webhook-Signature": "00"},
        BODY,
        Outcome.UNAUTHORIZED,
        id="nexus-wrong-signature",
    ),
    # cdevents
    pytest.param(
        "cdevents",
        ["dev.cdevents.change.merged"],
        {"Ce-Type": "dev.cdevents.change.merged"},
        json.dumps(CDEVENT).encode(),
        Outcome.ACCEPTED,
        id="cdevents",
    ),
    pytest.param(
        "cdevents",
        ["dev.cdevents.change.merged"],
        {"Ce-Type": "dev.cdevents.change.abandoned"},
        json.dumps(CDEVENT).encode(),
        Outcome.IGNORED,
        id="cdevents-type-filtered",
    ),
    pytest.param(
        "cdevents",
        [],
        {"Ce-Type": "dev.cdevents.change.merged"},
        json.dumps({**CDEVENT, "context": {**CDEVENT["context"], "type": "merged"}}).encode(),
        Outcome.BAD_REQUEST,
        id="cdevents-invalid-event",
    ),
    # refused
    pytest.param("gcr", [], {}, BODY, Outcome.BAD_REQUEST, id="gcr-unsupported"),
]


@pytest.mark.parametrize(("type_", "events", "headers", "body", "outcome"), CASES)
def test_each_receiver_type_decides_on_its_own_evidence(
    type_: str, events: list[str], headers: dict[str, str], body: bytes, outcome: Outcome
):
    verdict = verify(type_, TOKEN, events, headers, body)
    assert verdict.outcome is outcome, verdict.message
    assert TOKEN not in verdict.message


def test_header_names_match_in_any_case():
    headers = {k.lower(): v for k, v in github().items()}
    assert verify("github", TOKEN, ["push"], headers, BODY).outcome is Outcome.ACCEPTED


def test_the_signature_helper_matches_what_a_sender_computes():
    assert hub_signature(TOKEN, BODY) == sig("sha256")
    assert hub_signature(TOKEN, BODY, "sha1") == sig("sha1")


@pytest.mark.parametrize(
    ("event", "events", "allowed"),
    [
        pytest.param("push", [], True, id="no-filter"),
        pytest.param("PUSH", ["push"], True, id="case-insensitive"),
        pytest.param("issues", ["push", "ping"], False, id="not-listed"),
        pytest.param("", ["push"], False, id="no-event-header"),
    ],
)
def test_events_filter_like_flux(event: str, events: list[str], allowed: bool):
    assert event_allowed(event, events) is allowed


def ref(**fields: Any) -> CrossNamespaceObjectReference:
    return CrossNamespaceObjectReference.model_validate({"kind": "GitRepository", **fields})


def doc(name: str, namespace: str = "flux-system", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
    }


DOCS = [doc("a", app="web"), doc("b", app="api"), doc("c", app="web", tier="x"), doc("d", "other")]


@pytest.mark.parametrize(
    ("fields", "keys"),
    [
        pytest.param({"name": "a"}, ["gitrepository.flux-system.a"], id="by-name"),
        pytest.param(
            {"name": "*", "matchLabels": {"app": "web"}},
            ["gitrepository.flux-system.a", "gitrepository.flux-system.c"],
            id="wildcard-with-labels",
        ),
        pytest.param(
            {"name": "*", "matchLabels": {}},
            [
                "gitrepository.flux-system.a",
                "gitrepository.flux-system.b",
                "gitrepository.flux-system.c",
            ],
            id="wildcard-empty-labels-takes-the-namespace",
        ),
        pytest.param(
            {"name": "*", "namespace": "other", "matchLabels": {}},
            ["gitrepository.other.d"],
            id="wildcard-other-namespace",
        ),
    ],
)
def test_resources_select_by_name_or_labels_in_the_receivers_namespace_by_default(
    fields: dict[str, Any], keys: list[str]
):
    assert select(selector_of(ref(**fields), "flux-system"), DOCS) == keys


def test_a_wildcard_without_match_labels_is_refused_as_in_flux():
    with pytest.raises(TargetError, match="matchLabels"):
        selector_of(ref(name="*"), "flux-system")


def test_the_resource_filter_sees_the_object_as_res_and_the_body_as_req():
    program = compile_filter("req.tag.contains(res.metadata.name)")
    req = request_variables("application/json", b'{"tag":"registry/a:1.0"}')
    assert filter_accepts(program, doc("a"), req)
    assert not filter_accepts(program, doc("b"), req)
    assert filter_accepts(None, doc("b"), req)
    assert request_variables("text/plain", b"tag") == {}
    with pytest.raises(TargetError):
        request_variables("application/json", b"{not json")
