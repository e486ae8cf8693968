"""Alert matching and metadata enrichment follow notification-controller's event server."""

from __future__ import annotations

from typing import Any

import pytest
from notifier_helpers import make_alert, make_event

from fluxbus_notifier.logic.matching import (
    alert_matches,
    enrich,
    invalid_patterns,
    metadata_conflicts,
    provider_accepts,
)

LABELS = {"team": "app-dev", "tier": "web"}


@pytest.mark.parametrize(
    ("alert_spec", "event_kw", "labels", "expected"),
    [
        pytest.param({}, {}, LABELS, True, id="wildcard-name-in-the-alert-namespace"),
        pytest.param(
            {"eventSources": [{"kind": "Kustomization", "name": "apps"}]},
            {},
            None,
            True,
            id="exact-name",
        ),
        pytest.param(
            {"eventSources": [{"kind": "Kustomization", "name": "infra"}]},
            {},
            None,
            False,
            id="other-name",
        ),
        pytest.param(
            {"eventSources": [{"kind": "GitRepository", "name": "*"}]},
            {},
            None,
            False,
            id="other-kind",
        ),
        pytest.param(
            {}, {"namespace": "apps"}, None, False, id="namespace-defaults-to-the-alert's"
        ),
        pytest.param(
            {"eventSources": [{"kind": "Kustomization", "name": "*", "namespace": "apps"}]},
            {"namespace": "apps"},
            None,
            True,
            id="explicit-other-namespace",
        ),
        pytest.param(
            {
                "eventSources": [
                    {"kind": "GitRepository", "name": "*"},
                    {"kind": "Kustomization", "name": "apps"},
                ]
            },
            {},
            None,
            True,
            id="any-source-matches",
        ),
        pytest.param(
            {
                "eventSources": [
                    {"kind": "Kustomization", "name": "*", "matchLabels": {"team": "app-dev"}}
                ]
            },
            {},
            LABELS,
            True,
            id="match-labels-hit",
        ),
        pytest.param(
            {
                "eventSources": [
                    {"kind": "Kustomization", "name": "*", "matchLabels": {"team": "ops"}}
                ]
            },
            {},
            LABELS,
            False,
            id="match-labels-miss",
        ),
        pytest.param(
            {
                "eventSources": [
                    {"kind": "Kustomization", "name": "*", "matchLabels": {"team": "app-dev"}}
                ]
            },
            {},
            None,
            False,
            id="match-labels-on-an-unreadable-object",
        ),
        pytest.param(
            {"eventSources": [{"kind": "Kustomization", "name": "*", "matchLabels": {}}]},
            {},
            {},
            True,
            id="empty-match-labels-select-everything",
        ),
        pytest.param(
            {"eventSeverity": "info"}, {"severity": "error"}, None, True, id="info-takes-errors"
        ),
        pytest.param({"eventSeverity": "info"}, {}, None, True, id="info-takes-info"),
        pytest.param({"eventSeverity": "error"}, {}, None, False, id="error-drops-info"),
        pytest.param(
            {"eventSeverity": "error"}, {"severity": "error"}, None, True, id="error-takes-errors"
        ),
        pytest.param({"suspend": True}, {}, None, False, id="suspended-alert"),
        pytest.param(
            {"inclusionList": [".*succeeded.*", "^Applied"]}, {}, None, True, id="inclusion-hit"
        ),
        pytest.param({"inclusionList": ["^Health"]}, {}, None, False, id="inclusion-miss"),
        pytest.param(
            {"inclusionList": ["revision"]}, {}, None, True, id="inclusion-matches-anywhere"
        ),
        pytest.param({"exclusionList": ["main@sha1"]}, {}, None, False, id="exclusion-hit"),
        pytest.param({"exclusionList": ["^Health"]}, {}, None, True, id="exclusion-miss"),
        pytest.param(
            {"inclusionList": ["Applied"], "exclusionList": ["main"]},
            {},
            None,
            False,
            id="exclusion-wins",
        ),
        pytest.param(
            {"inclusionList": ["(unclosed"]}, {}, None, False, id="invalid-inclusion-skipped"
        ),
        pytest.param(
            {"exclusionList": ["(unclosed"]}, {}, None, True, id="invalid-exclusion-skipped"
        ),
    ],
)
def test_alert_matches_events_as_flux(
    alert_spec: dict[str, Any],
    event_kw: dict[str, Any],
    labels: dict[str, str] | None,
    expected: bool,
) -> None:
    assert alert_matches(make_alert(**alert_spec), make_event(**event_kw), labels) is expected


def test_invalid_patterns_are_listed_for_a_warning() -> None:
    alert = make_alert(inclusionList=["ok", "(bad"], exclusionList=["[bad"])
    assert invalid_patterns(alert) == ["(bad", "[bad"]


K = "kustomize.toolkit.fluxcd.io/"
E = "event.toolkit.fluxcd.io/"


@pytest.mark.parametrize(
    ("alert_spec", "metadata", "expected"),
    [
        pytest.param({}, {}, {}, id="nothing"),
        pytest.param(
            {},
            {K + "revision": "main@sha1:abc"},
            {"revision": "main@sha1:abc"},
            id="group-prefix-stripped",
        ),
        pytest.param(
            {},
            {"revision": "main@sha1:abc"},
            {"revision": "main@sha1:abc"},
            id="fluxbus-unprefixed-key-kept",
        ),
        pytest.param(
            {},
            {K + "checksum": "x", K + "Digest": "y", K + "token": "z", "token": "t", "digest": "d"},
            {},
            id="checksum-digest-token-dropped",
        ),
        pytest.param(
            {}, {"helm.toolkit.fluxcd.io/revision": "1.0.0"}, {}, id="another-group-dropped"
        ),
        pytest.param(
            {}, {E + "deploymentID": "e076"}, {"deploymentID": "e076"}, id="object-annotation-kept"
        ),
        pytest.param(
            {"eventMetadata": {"env": "prod", "cluster": "c1"}},
            {K + "revision": "r"},
            {"env": "prod", "cluster": "c1", "revision": "r"},
            id="alert-event-metadata-added",
        ),
        pytest.param(
            {"summary": "Cluster addons impacted"},
            {},
            {"summary": "Cluster addons impacted"},
            id="summary-added",
        ),
        pytest.param(
            {"eventMetadata": {"summary": "from metadata"}, "summary": "from summary"},
            {E + "summary": "from annotation"},
            {"summary": "from summary"},
            id="summary-beats-event-metadata-beats-annotations",
        ),
        pytest.param(
            {"eventMetadata": {"revision": "alert"}},
            {K + "revision": "controller"},
            {"revision": "controller"},
            id="controller-metadata-wins",
        ),
    ],
)
def test_enrich_merges_metadata_as_flux(
    alert_spec: dict[str, Any], metadata: dict[str, str], expected: dict[str, str]
) -> None:
    event = make_event(metadata=metadata)
    enriched = enrich(make_alert(**alert_spec), event)
    assert enriched.metadata == expected
    assert enriched.message == event.message
    assert event.metadata == metadata, "the input event is left alone"


def test_metadata_conflicts_name_every_source_lowest_first() -> None:
    alert = make_alert(eventMetadata={"summary": "m", "env": "prod"}, summary="s")
    event = make_event(metadata={E + "summary": "a", K + "env": "c", K + "revision": "r"})
    assert metadata_conflicts(alert, event) == {
        "env": ["Alert object .spec.eventMetadata", "involved object controller metadata"],
        "summary": [
            "involved object annotations",
            "Alert object .spec.eventMetadata",
            "Alert object .spec.summary",
        ],
    }


def test_core_group_objects_keep_only_unprefixed_and_annotation_keys() -> None:
    event = make_event(api_version="v1", metadata={"revision": "r", "v1/x": "y", E + "a": "b"})
    assert enrich(make_alert(), event).metadata == {"revision": "r", "a": "b"}


@pytest.mark.parametrize(
    ("provider_type", "metadata", "expected"),
    [
        pytest.param("slack", {}, True, id="plain-event-to-chat"),
        pytest.param(
            "slack", {K + "commit_status": "update"}, False, id="status-update-not-to-chat"
        ),
        pytest.param("msteams", {"commit_status": "update"}, False, id="fluxbus-key-too"),
        pytest.param("github", {K + "commit_status": "update"}, True, id="status-update-to-github"),
        pytest.param(
            "generic", {K + "commit_status": "update"}, True, id="status-update-to-generic"
        ),
    ],
)
def test_commit_status_updates_go_only_to_git_and_generic_providers(
    provider_type: str, metadata: dict[str, str], expected: bool
) -> None:
    assert provider_accepts(provider_type, make_event(metadata=metadata)) is expected
