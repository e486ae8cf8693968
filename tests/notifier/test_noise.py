"""The pure noise-control rules: which events share a dedup key, and what an
on-change Alert sends given what it last sent. Table-driven, no I/O."""

from __future__ import annotations

import pytest

from fluxbus_common.api.notification import Alert
from fluxbus_common.events import Event, ObjectReference, Severity
from fluxbus_notifier.logic.noise import (
    RESOLVED_KEY,
    Failure,
    dedup_key,
    is_on_change,
    on_change,
    on_change_key,
)
from fluxbus_notifier.settings import NotifierSettings


def ev(
    message: str = "m",
    *,
    name: str = "app",
    reason: str = "ReconciliationSucceeded",
    severity: Severity = Severity.INFO,
    **metadata: str,
) -> Event:
    return Event(
        involved_object=ObjectReference(kind="Kustomization", namespace="default", name=name),
        severity=severity,
        message=message,
        reason=reason,
        metadata=metadata,
        reporting_controller="kustomize-controller",
    )


def alert(name: str = "a", **annotations: str) -> Alert:
    return Alert.model_validate(
        {
            "metadata": {"name": name, "namespace": "default", "annotations": annotations},
            "spec": {
                "providerRef": {"name": "p"},
                "eventSources": [{"kind": "Kustomization", "name": "*"}],
            },
        }
    )


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        pytest.param(ev(), ev(), True, id="identical"),
        pytest.param(ev(), ev(summary="x"), True, id="other-metadata-is-ignored"),
        pytest.param(ev(revision="a"), ev(revision="b"), False, id="other-revision"),
        pytest.param(
            ev(**{"kustomize.toolkit.fluxcd.io/revision": "a"}),
            ev(revision="a"),
            True,
            id="group-prefixed-revision-counts-as-the-revision",
        ),
        pytest.param(ev(), ev(reason="Progressing"), False, id="other-reason"),
        pytest.param(ev("a"), ev("b"), False, id="other-message"),
        pytest.param(ev(), ev(name="other"), False, id="other-object"),
    ],
)
def test_dedup_keys_are_equal_exactly_for_identical_events(first: Event, second: Event, same: bool):
    assert (dedup_key(first) == dedup_key(second)) is same
    assert dedup_key(first).startswith("dedup.")


ERR = Severity.ERROR
BROKEN = Failure("HealthCheckFailed", "broken")


@pytest.mark.parametrize(
    ("last", "event", "sent", "remember"),
    [
        pytest.param(None, ev(), None, None, id="success-while-fine-is-not-news"),
        pytest.param(
            None,
            ev("broken", reason="HealthCheckFailed", severity=ERR),
            "broken",
            BROKEN,
            id="first-failure-is-sent",
        ),
        pytest.param(
            BROKEN,
            ev("broken", reason="HealthCheckFailed", severity=ERR),
            None,
            BROKEN,
            id="repeated-failure-is-not",
        ),
        pytest.param(
            BROKEN,
            ev("worse", reason="ApplyFailed", severity=ERR),
            "worse",
            Failure("ApplyFailed", "worse"),
            id="a-different-failure-is",
        ),
        pytest.param(BROKEN, ev("fixed"), "fixed", None, id="recovery-is-sent-once-as-resolved"),
    ],
)
def test_on_change_sends_changes_only(
    last: Failure | None, event: Event, sent: str | None, remember: Failure | None
):
    step = on_change(last, event)
    assert (step.send.message if step.send else None) == sent
    assert step.remember == remember
    assert step.changed is (sent is not None)


def test_a_resolved_message_names_the_failure_it_ends():
    step = on_change(BROKEN, ev("fixed"))
    assert step.send is not None
    assert step.send.metadata[RESOLVED_KEY] == "HealthCheckFailed"


def test_on_change_is_an_annotation_and_its_memory_is_per_alert_and_object():
    assert is_on_change(alert(**{"fluxbus.io/notify": "on-change"}))
    assert not is_on_change(alert())
    assert on_change_key(alert("a"), ev()) != on_change_key(alert("b"), ev())
    assert on_change_key(alert("a"), ev()) != on_change_key(alert("a"), ev(name="other"))
    assert on_change_key(alert("a"), ev("x")) == on_change_key(alert("a"), ev("y"))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, NotifierSettings(), id="defaults"),
        pytest.param(
            {
                "FLUXBUS_NOTIFY_DEDUP_WINDOW": "10m",
                "FLUXBUS_NOTIFY_DELIVERY_TIMEOUT": "30",
                "FLUXBUS_NOTIFY_CONSUMER": "n2",
            },
            NotifierSettings(
                dedup_window=600.0,
                delivery_timeout=30.0,
                consumer="n2",
            ),
            id="from-the-environment",
        ),
    ],
)
def test_settings_come_from_the_environment(env: dict[str, str], expected: NotifierSettings):
    assert NotifierSettings.from_env(env) == expected


def test_a_bad_duration_names_the_variable():
    with pytest.raises(ValueError, match="FLUXBUS_NOTIFY_DEDUP_WINDOW"):
        NotifierSettings.from_env({"FLUXBUS_NOTIFY_DEDUP_WINDOW": "soon"})
