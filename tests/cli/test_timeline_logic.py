"""`fluxbus_cli.logic.timeline`: events and status revisions become sync-state bands
and labelled marks (no bus: plain values in, plain values out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fluxbus_cli.logic.timeline import (
    Band,
    MarkKind,
    Notification,
    ObjectRef,
    StatusRevision,
    SyncState,
    Wanted,
    build_timeline,
    classify,
    short_revision,
    source_links,
    state_of_status,
)
from fluxbus_common.events import Event, ObjectReference, Severity

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
REPO = ObjectRef("GitRepository", "flux-system", "podinfo")
APPS = ObjectRef("Kustomization", "flux-system", "apps")
REV_A = "main@sha1:" + "a" * 40
REV_B = "main@sha1:" + "b" * 40
REVISION_KEY = "kustomize.toolkit.fluxcd.io/revision"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(
    obj: ObjectRef,
    seconds: int,
    reason: str,
    message: str = "",
    *,
    error: bool = False,
    metadata: dict[str, str] | None = None,
) -> Event:
    return Event(
        involved_object=ObjectReference(kind=obj.kind, namespace=obj.namespace, name=obj.name),
        severity=Severity.ERROR if error else Severity.INFO,
        timestamp=at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ"),
        reason=reason,
        message=message or reason,
        metadata=metadata or {},
        reporting_controller="test",
    )


def conditions(**by_type: tuple[str, str]) -> dict[str, object]:
    return {
        "conditions": [
            {"type": t, "status": status, "reason": reason}
            for t, (status, reason) in by_type.items()
        ]
    }


@pytest.mark.parametrize(
    ("status", "state"),
    [
        pytest.param(conditions(Ready=("True", "Succeeded")), SyncState.SYNCED, id="ready"),
        pytest.param(
            conditions(Ready=("Unknown", "Progressing"), Reconciling=("True", "Progressing")),
            SyncState.RECONCILING,
            id="reconciling",
        ),
        pytest.param(
            conditions(Ready=("Unknown", "Progressing")), SyncState.RECONCILING, id="ready-unknown"
        ),
        pytest.param(
            conditions(
                Ready=("False", "BuildFailed"), Reconciling=("True", "ProgressingWithRetry")
            ),
            SyncState.FAILED,
            id="failing-while-retrying",
        ),
        pytest.param(
            conditions(Ready=("False", "DependencyNotReady")),
            SyncState.OUT_OF_SYNC,
            id="waiting-on-a-dependency",
        ),
        pytest.param(
            conditions(Ready=("True", "Succeeded"), Stalled=("True", "InvalidPath")),
            SyncState.FAILED,
            id="stalled",
        ),
        pytest.param({"conditions": []}, None, id="no-ready-yet"),
    ],
)
def test_a_status_shows_one_sync_state(status, state):
    assert state_of_status(status) == state


@pytest.mark.parametrize(
    ("ev", "applied_before", "marks"),
    [
        pytest.param(
            event(REPO, 0, "NewArtifact", metadata={"revision": REV_A}),
            None,
            [(MarkKind.NEW_REVISION, "new revision main@sha1:aaaaaaa")],
            id="a-new-artifact-is-a-new-revision",
        ),
        pytest.param(
            event(
                APPS,
                0,
                "ReconciliationSucceeded",
                "Deployment/apps/podinfo configured",
                metadata={REVISION_KEY: REV_A},
            ),
            REV_A,
            [(MarkKind.DRIFT, "drift corrected: Deployment/apps/podinfo configured")],
            id="configured-again-at-the-same-revision-is-drift",
        ),
        pytest.param(
            event(
                APPS,
                0,
                "ReconciliationSucceeded",
                "Deployment/apps/podinfo configured\nService/apps/old deleted",
                metadata={REVISION_KEY: REV_B},
            ),
            REV_A,
            [
                (MarkKind.NEW_REVISION, "applied main@sha1:bbbbbbb"),
                (MarkKind.PRUNED, "pruned Service/apps/old"),
            ],
            id="a-new-revision-applied-and-an-orphan-pruned",
        ),
        pytest.param(
            event(
                ObjectRef("ImagePolicy", "flux-system", "podinfo"),
                0,
                "Succeeded",
                "Latest image tag for 'reg/podinfo' resolved to 1.4.1 (previously reg/podinfo:1.4.0)",
            ),
            None,
            [(MarkKind.IMAGE_BUMPED, "image bumped to 1.4.1")],
            id="a-policy-that-moved-bumps-the-image",
        ),
        pytest.param(
            event(
                ObjectRef("ImagePolicy", "flux-system", "podinfo"),
                0,
                "Succeeded",
                "Latest image tag for 'reg/podinfo' resolved to 1.3.0",
            ),
            None,
            [(MarkKind.EVENT, "image 1.3.0 selected")],
            id="a-first-policy-result-only-selects",
        ),
        pytest.param(
            event(APPS, 0, "BuildFailed", "kustomize build failed: boom", error=True),
            None,
            [(MarkKind.FAILED, "BuildFailed: kustomize build failed: boom")],
            id="an-error-event-is-a-failure",
        ),
        pytest.param(
            event(ObjectRef("Receiver", "flux-system", "github"), 0, "ReconcileRequested", "push"),
            None,
            [(MarkKind.WEBHOOK, "push")],
            id="a-receiver-request-is-a-webhook",
        ),
        pytest.param(
            event(APPS, 0, "Progressing"),
            None,
            [(MarkKind.EVENT, "Progressing")],
            id="anything-else-is-a-plain-event",
        ),
    ],
)
def test_an_event_makes_labelled_marks(ev, applied_before, marks):
    assert classify(ev, applied_before) == marks


def test_revisions_are_shortened_to_seven_hex_digits():
    assert short_revision(REV_A) == "main@sha1:aaaaaaa"
    assert short_revision("v1.0.0") == "v1.0.0"


def test_a_kustomization_is_out_of_sync_from_its_source_new_revision_until_it_applies_it():
    links = source_links(
        [
            {
                "kind": "Kustomization",
                "metadata": {"namespace": "flux-system", "name": "apps"},
                "spec": {"sourceRef": {"kind": "GitRepository", "name": "podinfo"}},
            }
        ]
    )
    assert links == {APPS: REPO}
    events = [
        event(REPO, 0, "NewArtifact", metadata={"revision": REV_A}),
        event(
            APPS,
            10,
            "ReconciliationSucceeded",
            "Deployment/apps/podinfo created",
            metadata={REVISION_KEY: REV_A},
        ),
        event(REPO, 60, "NewArtifact", metadata={"revision": REV_B}),
        event(
            APPS,
            70,
            "ReconciliationSucceeded",
            "Deployment/apps/podinfo configured",
            metadata={REVISION_KEY: REV_B},
        ),
    ]
    tl = build_timeline(events, [], until=at(100), sources=links)
    assert tl.objects == (REPO, APPS)
    assert tl.bands_of(APPS) == [
        Band(APPS, at(0), at(10), SyncState.OUT_OF_SYNC),
        Band(APPS, at(10), at(60), SyncState.SYNCED),
        Band(APPS, at(60), at(70), SyncState.OUT_OF_SYNC),
        Band(APPS, at(70), at(100), SyncState.SYNCED),
    ]
    assert [m.kind for m in tl.marks_of(APPS)] == [MarkKind.NEW_REVISION, MarkKind.NEW_REVISION]


def test_status_revisions_and_events_interleave_by_time_and_equal_states_merge():
    statuses = [
        StatusRevision(APPS, at(5), conditions(Reconciling=("True", "Progressing"))),
        StatusRevision(APPS, at(8), conditions(Ready=("True", "Succeeded"))),
        StatusRevision(APPS, at(30), conditions(Ready=("True", "Succeeded"))),
        StatusRevision(APPS, at(50), None),  # deleted: says nothing about the state
    ]
    events = [
        event(APPS, 40, "HealthCheckFailed", "timeout", error=True),
        event(APPS, 45, "ReconciliationSucceeded", "Deployment/apps/podinfo configured"),
    ]
    tl = build_timeline(events, statuses, until=at(60))
    assert tl.start == at(5)
    assert tl.bands_of(APPS) == [
        Band(APPS, at(5), at(8), SyncState.RECONCILING),
        Band(APPS, at(8), at(40), SyncState.SYNCED),
        Band(APPS, at(40), at(45), SyncState.FAILED),
        Band(APPS, at(45), at(60), SyncState.SYNCED),
    ]


def test_since_clips_bands_and_drops_older_marks_but_keeps_the_state_lanes_start_in():
    events = [
        event(APPS, 0, "BuildFailed", "boom", error=True),
        event(APPS, 100, "ReconciliationSucceeded", "Deployment/apps/podinfo created"),
    ]
    tl = build_timeline(events, [], until=at(200), since=at(50))
    assert tl.bands_of(APPS) == [
        Band(APPS, at(50), at(100), SyncState.FAILED),
        Band(APPS, at(100), at(200), SyncState.SYNCED),
    ]
    assert [m.kind for m in tl.marks] == [MarkKind.NEW_REVISION]


@pytest.mark.parametrize(
    ("wanted", "lanes"),
    [
        pytest.param([], [REPO, ObjectRef("Kustomization", "apps", "apps"), APPS], id="all"),
        pytest.param(
            [Wanted("Kustomization", "apps")],
            [ObjectRef("Kustomization", "apps", "apps"), APPS],
            id="any-namespace",
        ),
        pytest.param([Wanted("Kustomization", "apps", "flux-system")], [APPS], id="one-object"),
        pytest.param([Wanted(namespace="flux-system")], [REPO, APPS], id="one-namespace"),
        pytest.param(
            [Wanted("Kustomization", "apps", "flux-system"), Wanted("GitRepository", "podinfo")],
            [REPO, APPS],
            id="several",
        ),
    ],
)
def test_only_the_objects_wanted_get_a_lane(wanted, lanes):
    other = ObjectRef("Kustomization", "apps", "apps")
    events = [
        event(APPS, 0, "ReconciliationSucceeded"),
        event(other, 1, "ReconciliationSucceeded"),
        event(REPO, 2, "NewArtifact"),
    ]
    assert list(build_timeline(events, [], until=at(10), wanted=wanted).objects) == lanes


def test_a_sent_notification_is_marked_on_the_object_it_was_about():
    sent = Notification(APPS, at(3), "slack", "on-call")
    tl = build_timeline(
        [event(APPS, 0, "BuildFailed", "boom", error=True)], [], [sent], until=at(10)
    )
    assert [(m.kind, m.label, m.at) for m in tl.marks] == [
        (MarkKind.FAILED, "BuildFailed: boom", at(0)),
        (MarkKind.NOTIFIED, "sent to slack", at(3)),
    ]


def test_nothing_known_gives_an_empty_timeline_ending_now():
    tl = build_timeline([], [], until=at(0))
    assert (tl.start, tl.end, tl.objects, tl.bands, tl.marks) == (at(0), at(0), (), (), ())
